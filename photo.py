"""People's photos: reading any image file, and colorizing it at full resolution with a generator."""

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from utils import lab_to_rgb

# sRGB value (0-255) -> linear light, and the luminance weights of linear RGB (scikit-image's D65 matrix, row Y)
_V = np.arange(256) / 255
_LINEAR = np.where(_V > 0.04045, ((_V + 0.055) / 1.055) ** 2.4, _V / 12.92).astype(np.float32)
_Y_WEIGHTS = (0.212671, 0.715160, 0.072169)
_WEIGHTED_LINEAR = [w * _LINEAR for w in _Y_WEIGHTS]
ROWS_PER_CHUNK = 64  # full-resolution work runs in bands of rows: bounded memory, and each band stays in cache


def read_image(path):
    """Decode an image file with EXIF orientation applied: HxW (grayscale) or HxWx3 (colour) numpy array.

    8-bit images come back as uint8; 16-bit and float images as float32 in [0,1]. Palette images are
    expanded and transparent ones composited over white. Raises OSError/ValueError if the file is unreadable."""
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith('I;16') or im.mode in ('I', 'F'):
            arr = np.asarray(im, dtype=np.float32)
            scale = 65535.0 if im.mode.startswith('I;16') or arr.max() > 255 else (1.0 if im.mode == 'F' else 255.0)
            return (arr / scale).clip(0, 1)
        if im.mode == 'P' and 'transparency' not in im.info:
            im = im.convert('RGB')
        elif im.mode in ('P', 'PA', 'LA', 'RGBA') or 'transparency' in im.info:
            rgba = np.asarray(im.convert('RGBA'), dtype=np.float32) / 255
            alpha = rgba[..., 3:]
            return np.round((rgba[..., :3] * alpha + (1 - alpha)) * 255).astype(np.uint8)
        if im.mode in ('L', '1'):
            return np.asarray(im.convert('L'))
        return np.asarray(im.convert('RGB'))


def has_colour(image):
    """True if an HxWx3 image is not gray (some pixel has R, G and B unequal)."""
    if image.ndim == 2:
        return False
    return bool((image[..., 0] != image[..., 1]).any() or (image[..., 1] != image[..., 2]).any())


def luminance(image):
    """CIE L (0-100) as float32 [H,W] of an HxW or HxWx3 image (uint8, or float in [0,1]); same formula as rgb_to_lab."""
    if image.ndim == 3 and not has_colour(image):
        image = image[..., 0]  # a gray photo stored as RGB: one channel says it all
    if image.dtype == np.uint8:
        if image.ndim == 2:
            return torch.from_numpy(np.take(_L_OF_GRAY, image))
        Y = torch.from_numpy(np.take(_WEIGHTED_LINEAR[0], image[..., 0]))
        for c in (1, 2):
            Y += torch.from_numpy(np.take(_WEIGHTED_LINEAR[c], image[..., c]))
    else:
        t = torch.from_numpy(np.array(image, dtype=np.float32))
        linear = torch.where(t > 0.04045, ((t + 0.055) / 1.055).pow(2.4), t / 12.92)
        Y = linear if t.dim() == 2 else linear @ torch.tensor(_Y_WEIGHTS)
    return _lightness(Y)


def _lightness(Y):
    """Relative luminance Y (white = 1) -> CIE L on 0-100."""
    f = torch.where(Y > 0.008856, Y.clamp_min(1e-12).pow(1 / 3), 7.787 * Y + 16 / 116)
    return 116 * f - 16


_L_OF_GRAY = _lightness(torch.from_numpy(_LINEAR)).numpy()


def working_size(height, width, size, multiple):
    """The model's input size for a photo: short side `size`, long side keeping the aspect ratio, both multiples of `multiple`."""
    scale = size / min(height, width)
    snap = lambda v: max(multiple, int(round(v * scale / multiple)) * multiple)  # noqa: E731
    return snap(height), snap(width)


def _bicubic_matrix(n_in, n_out, device):
    """[n_out, n_in] matrix that resizes a 1-D signal exactly as F.interpolate(mode='bicubic', align_corners=False)."""
    eye = torch.eye(n_in, device=device).view(1, n_in, n_in, 1)  # channel i holds the unit impulse at i
    return F.interpolate(eye, size=(n_out, 1), mode='bicubic', align_corners=False)[0, :, :, 0].T


@torch.inference_mode()
def colorize(G, image, size=0, device='cpu'):
    """Colorize a photo at full resolution: uint8 HxWx3 RGB whose L is the input's luminance.

    G predicts ab at `size` (0 = the size it was trained at) from the downscaled L. The ab map is resized
    bicubically onto the full-resolution L as two matrix products (rows, then columns), in bands of rows,
    so memory stays a few bytes per pixel beyond the input and output."""
    H, W = image.shape[:2]
    L = luminance(image)  # [H,W], 0-100
    multiple = 2 ** (len(G.down) - 1)  # the U-Net halves its input this many times
    h, w = working_size(H, W, size or G.config['image_size'], multiple)
    L_small = F.interpolate(L[None, None].to(device), size=(h, w), mode='area')  # [1,1,h,w]
    ab_small = G(L_small / 50 - 1).float()[0] * 110  # [2,h,w], Lab units
    ab_cols = ab_small @ _bicubic_matrix(w, W, ab_small.device).T  # [2,h,W]: columns already at full width
    rows = _bicubic_matrix(h, H, ab_small.device)  # [H,h]
    out = torch.empty(H, W, 3, dtype=torch.uint8)
    for top in range(0, H, ROWS_PER_CHUNK):
        bottom = min(H, top + ROWS_PER_CHUNK)
        ab = rows[top:bottom] @ ab_cols  # [2,band,W]
        rgb = lab_to_rgb_keep_L(L[top:bottom].to(device), ab)  # [3,band,W]
        out[top:bottom] = (rgb * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu()
    return out.numpy()


def lab_to_rgb_keep_L(L, ab, steps=7):
    """L [H,W] and ab [2,H,W] -> sRGB [3,H,W] in [0,1]. Out-of-gamut colours lose chroma, never lightness.

    Clipping R, G, B separately would shift L; instead each such pixel's ab is scaled towards gray (which is
    always in gamut) by bisection until its colour fits."""
    rgb = lab_to_rgb(torch.cat([L[None], ab])[None], clip=False)[0]
    outside = ((rgb < 0) | (rgb > 1)).any(0)  # [H,W]
    if outside.any():
        L_out, ab_out = L[outside], ab[:, outside]  # [n], [2,n]
        lo, hi = torch.zeros_like(L_out), torch.ones_like(L_out)  # chroma scales known to fit / not to fit
        for _ in range(steps):
            mid = (lo + hi) / 2
            trial = lab_to_rgb(torch.cat([L_out[None], ab_out * mid])[None, :, None], clip=False)[0, :, 0]
            fits = ((trial >= 0) & (trial <= 1)).all(0)
            lo, hi = torch.where(fits, mid, lo), torch.where(fits, hi, mid)
        lab_fit = torch.cat([L_out[None], ab_out * lo])[None, :, None]  # [1,3,1,n]
        rgb[:, outside] = lab_to_rgb(lab_fit)[0, :, 0]
    return rgb.clamp(0, 1)
