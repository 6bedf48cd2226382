"""People's photos: colorizing one at full resolution with a generator."""
import torch
import torch.nn.functional as F

from color import denormalize_lab, lab_to_rgb_keep_L, luminance, normalize_lab
from hints import hint_map

ROWS_PER_CHUNK = 64  # full-resolution work runs in bands of rows: bounded memory, and each band stays in cache


MAX_ASPECT = 8  # the working resolution's long side is at most this many times the model's size


def working_size(height, width, size, multiple):
    """The model's input size (h, w) for a photo of height x width px: short side `size`, long side keeping the
    aspect ratio up to MAX_ASPECT x size (a thin strip is squeezed along its length, so the work depends on the
    pixel count, never on the aspect ratio), both rounded to multiples of `multiple` (at least one multiple)."""
    scale = size / min(height, width)
    limit = MAX_ASPECT * size
    snap = lambda v: max(multiple, int(round(min(v * scale, limit) / multiple)) * multiple)  # noqa: E731
    return snap(height), snap(width)


def _bicubic_matrix(n_in, n_out, device):
    """[n_out, n_in] matrix that resizes a 1-D signal exactly as F.interpolate(mode='bicubic', align_corners=False)."""
    eye = torch.eye(n_in, device=device).view(1, n_in, n_in, 1)  # channel i holds the unit impulse at i
    return F.interpolate(eye, size=(n_out, 1), mode='bicubic', align_corners=False)[0, :, :, 0].T


@torch.inference_mode()
def colorize(G, image, size=0, device='cpu', saturation=1.0, hints=None):
    """Colorize a photo at full resolution: uint8 HxWx3 RGB whose L is the input's luminance.

    G predicts ab at `size` (0 = the size it was trained at) from the downscaled L; `saturation` scales that
    chroma before the gamut mapping (0 gives gray, above 1 more vivid colour, L kept either way). `hints`, for a
    generator with hint input, is a list of hints.make_hint dicts in this photo's pixels (colours people know);
    ValueError if G has no hint input or a hint lies outside the photo. The ab map is resized bicubically onto the
    full-resolution L as two matrix products (rows, then columns), in bands of rows, so memory stays a few bytes
    per pixel beyond the input and output."""
    H, W = image.shape[:2]
    L = luminance(image)  # [H,W], 0-100
    h, w = working_size(H, W, size or G.config['image_size'], G.multiple)
    L_small = F.interpolate(L[None, None].to(device), size=(h, w), mode='area')  # [1,1,h,w]
    L_net = normalize_lab(L_small)[0]
    if saturation == 0:  # gray output (the baselines use it): no need to run G
        ab_small = torch.zeros(2, h, w, device=L_net.device)
    else:
        hint_input = hint_map(hints, H, W, h, w, L_net.device) if hints else None
        ab_small = denormalize_lab(L_net, G(L_net, hint_input).float())[0, 1:] * saturation  # [2,h,w], Lab units
    ab_cols = ab_small @ _bicubic_matrix(w, W, ab_small.device).T  # [2,h,W]: columns already at full width
    rows = _bicubic_matrix(h, H, ab_small.device)  # [H,h]
    out = torch.empty(H, W, 3, dtype=torch.uint8)
    for top in range(0, H, ROWS_PER_CHUNK):
        bottom = min(H, top + ROWS_PER_CHUNK)
        ab = rows[top:bottom] @ ab_cols  # [2,band,W]
        rgb = lab_to_rgb_keep_L(L[top:bottom].to(device), ab)  # [3,band,W]
        out[top:bottom] = (rgb * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu()
    return out.numpy()
