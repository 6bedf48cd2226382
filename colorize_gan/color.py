"""The only copy of the colour maths: CIE Lab <-> sRGB in torch, the networks' Lab scaling, gamut mapping keeping L."""
import numpy as np
import torch

# scikit-image's constants (D65 white, 2 degree observer), so our Lab matches skimage.color.rgb2lab
RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                           [0.212671, 0.715160, 0.072169],
                           [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
XYZ_TO_RGB = torch.linalg.inv(RGB_TO_XYZ)
WHITE_D65 = (0.95047, 1.0, 1.08883)
L_SCALE, AB_SCALE = 50.0, 110.0  # pix2pix: the networks see L/50 - 1 and ab/110, both in about [-1, 1]


def srgb_to_linear(v):
    """sRGB values in [0,1] -> linear light (the sRGB transfer curve)."""
    return torch.where(v > 0.04045, ((v + 0.055) / 1.055).clamp_min(0).pow(2.4), v / 12.92)


def linear_to_srgb(v):
    """Linear light -> sRGB values (unclipped)."""
    return torch.where(v > 0.0031308, 1.055 * v.clamp_min(0).pow(1 / 2.4) - 0.055, 12.92 * v)


def _lab_f(t):
    """CIE's cube root with its linear toe, applied to XYZ relative to white."""
    return torch.where(t > 0.008856, t.clamp_min(1e-12).pow(1 / 3), 7.787 * t + 16 / 116)


def _mix(x, matrix):
    """Apply a 3x3 matrix over the channel dim of [N,3,H,W]."""
    return torch.einsum('ij,njhw->nihw', matrix.to(device=x.device, dtype=x.dtype), x)


def rgb_to_lab(rgb):
    """sRGB in [0,1], [N,3,H,W] -> Lab [N,3,H,W] with L in [0,100], a,b roughly in [-110,110]."""
    xyz = _mix(srgb_to_linear(rgb.float()), RGB_TO_XYZ)
    f = _lab_f(xyz / torch.tensor(WHITE_D65, device=rgb.device).view(1, 3, 1, 1))
    return torch.cat([116 * f[:, 1:2] - 16, 500 * (f[:, 0:1] - f[:, 1:2]), 200 * (f[:, 1:2] - f[:, 2:3])], 1)


def lab_to_rgb(lab, clip=True, linear=False):
    """Lab [N,3,H,W] -> sRGB [N,3,H,W], clipped to [0,1] like scikit-image's lab2rgb (or unclipped); linear=True
    stops before the sRGB transfer curve (linear light, unclipped), which is inside [0,1] exactly where sRGB is."""
    lab = lab.float()
    fy = (lab[:, 0:1] + 16) / 116
    f = torch.cat([fy + lab[:, 1:2] / 500, fy, (fy - lab[:, 2:3] / 200).clamp_min(0)], 1)
    t = torch.where(f > 0.2068966, f.pow(3), (f - 16 / 116) / 7.787)
    rgb = _mix(t * torch.tensor(WHITE_D65, device=lab.device).view(1, 3, 1, 1), XYZ_TO_RGB)
    if linear:
        return rgb
    rgb = linear_to_srgb(rgb)
    return rgb.clamp(0, 1) if clip else rgb


def normalize_lab(lab):
    """Lab [N,C,H,W] -> (L/50-1 [N,1,H,W], ab/110 [N,C-1,H,W]): the scaling the networks see (C=1 gives L alone)."""
    return lab[:, :1] / L_SCALE - 1, lab[:, 1:] / AB_SCALE


def denormalize_lab(L, ab):
    """Inverse of normalize_lab: network-scale L and ab -> Lab [N,3,H,W]."""
    return torch.cat([(L.float() + 1) * L_SCALE, ab.float() * AB_SCALE], 1)


def rgb_uint8_to_network(rgb):
    """uint8 RGB [N,3,H,W] on any device -> network-scale (L [N,1,H,W], ab [N,2,H,W]) in float32."""
    return normalize_lab(rgb_to_lab(rgb.float() / 255))


def colorized_rgb(L, ab):
    """Network-scale L and ab -> RGB on 0-255 as float [N,3,H,W]."""
    return lab_to_rgb(denormalize_lab(L, ab)) * 255


# -----------------------------------------------------------------------------
# lightness of people's photos, straight from 8-bit values through lookup tables

_LINEAR_OF_UINT8 = srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255).float()
_Y_WEIGHTS = RGB_TO_XYZ[1].float()  # the luminance row of the matrix
_WEIGHTED_LINEAR = [(w * _LINEAR_OF_UINT8).numpy() for w in _Y_WEIGHTS]


def _lightness(Y):
    """Relative luminance Y (white = 1) -> CIE L on 0-100."""
    return 116 * _lab_f(Y) - 16


_L_OF_GRAY = _lightness(_LINEAR_OF_UINT8).numpy()


def is_gray(image):
    """True if an HxW image, or an HxWx3 one whose R, G and B are equal everywhere."""
    return image.ndim == 2 or not ((image[..., 0] != image[..., 1]).any() or (image[..., 1] != image[..., 2]).any())


def luminance(image):
    """CIE L (0-100) as float32 [H,W] of an HxW or HxWx3 image (uint8, or float in [0,1]); the same L as rgb_to_lab."""
    if image.ndim == 3 and is_gray(image):
        image = image[..., 0]  # a gray photo stored as RGB: one channel says it all
    if image.dtype == np.uint8:
        if image.ndim == 2:
            return torch.from_numpy(np.take(_L_OF_GRAY, image))
        Y = torch.from_numpy(np.take(_WEIGHTED_LINEAR[0], image[..., 0]))
        for c in (1, 2):
            Y += torch.from_numpy(np.take(_WEIGHTED_LINEAR[c], image[..., c]))
    else:
        linear = srgb_to_linear(torch.from_numpy(np.array(image, dtype=np.float32)))
        Y = linear if linear.dim() == 2 else linear @ _Y_WEIGHTS
    return _lightness(Y)


def lab_to_rgb_keep_L(L, ab, steps=7):
    """L [H,W] and ab [2,H,W] -> sRGB [3,H,W] in [0,1]. Out-of-gamut colours lose chroma, never lightness.

    Clipping R, G, B separately would shift L; instead each such pixel's ab is scaled towards gray (which is
    always in gamut) by bisection until its colour fits (tested in linear light: the same test without the transfer
    curve's powers)."""
    rgb = lab_to_rgb(torch.cat([L[None], ab])[None], clip=False)[0]
    outside = ((rgb < 0) | (rgb > 1)).any(0)  # [H,W]
    if outside.any():
        L_out, ab_out = L[outside], ab[:, outside]  # [n], [2,n]
        lo, hi = torch.zeros_like(L_out), torch.ones_like(L_out)  # chroma scales known to fit / not to fit
        for _ in range(steps):
            mid = (lo + hi) / 2
            trial = lab_to_rgb(torch.cat([L_out[None], ab_out * mid])[None, :, None], linear=True)[0, :, 0]
            fits = ((trial >= 0) & (trial <= 1)).all(0)
            lo, hi = torch.where(fits, mid, lo), torch.where(fits, hi, mid)
        rgb[:, outside] = lab_to_rgb(torch.cat([L_out[None], ab_out * lo])[None, :, None])[0, :, 0]
    return rgb.clamp(0, 1)
