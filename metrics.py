"""Colorization metrics, one value per image (MAE, pixel accuracy, PSNR, SSIM, colorfulness), and evaluation loops."""
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from color import colorized_rgb, denormalize_lab, rgb_to_lab, rgb_uint8_to_network
from photo import colorize, read_image

METRIC_NAMES = ('mae', 'acc_2', 'acc_5', 'psnr', 'ssim', 'colorfulness')


def mae_rgb(rgb_fake, rgb_real):
    """Mean absolute error per image on RGB 0-255 (the metric of record)."""
    return (rgb_fake.float() - rgb_real.float()).abs().flatten(1).mean(1)


def pixel_accuracy(lab_fake, lab_real, eps):
    """Share of pixels whose rounded L is within eps and rounded a, b within 2.2*eps (Nazeri et al.'s code)."""
    diff = (lab_fake.round() - lab_real.round()).abs()
    ok = (diff[:, 0] <= eps) & (diff[:, 1] <= 2.2 * eps) & (diff[:, 2] <= 2.2 * eps)
    return ok.float().flatten(1).mean(1)


def psnr(rgb_fake, rgb_real):
    """Per-image PSNR in dB on RGB 0-255 (identical images capped at 100 dB)."""
    mse = (rgb_fake.float() - rgb_real.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0 ** 2 / mse.clamp_min(255.0 ** 2 * 1e-10))


def _gaussian_window(size=11, sigma=1.5, device=None):
    """Normalized 1-D Gaussian of `size` taps."""
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def ssim(rgb_fake, rgb_real):
    """Per-image SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, valid region, per RGB channel, averaged.

    Same as skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=...)."""
    x, y = rgb_fake.float(), rgb_real.float()
    C = x.shape[1]
    w = _gaussian_window(device=x.device)
    kh = w.view(1, 1, -1, 1).repeat(C, 1, 1, 1)
    kw = w.view(1, 1, 1, -1).repeat(C, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kh, groups=C), kw, groups=C)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1)


def colorfulness(rgb):
    """Hasler & Suesstrunk (2003) colorfulness per image on RGB 0-255: rg = R-G, yb = (R+G)/2 - B (no abs)."""
    R, G, B = rgb.float().unbind(1)
    rg = (R - G).flatten(1)
    yb = (0.5 * (R + G) - B).flatten(1)
    std = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return std + 0.3 * mean


def all_metrics(rgb_fake, rgb_real, lab_fake, lab_real):
    """Every metric per image [N], from both images in RGB 0-255 and in Lab."""
    return {
        'mae': mae_rgb(rgb_fake, rgb_real),
        'acc_2': pixel_accuracy(lab_fake, lab_real, 2),
        'acc_5': pixel_accuracy(lab_fake, lab_real, 5),
        'psnr': psnr(rgb_fake, rgb_real),
        'ssim': ssim(rgb_fake, rgb_real),
        'colorfulness': colorfulness(rgb_fake),
    }


def image_metrics(L, ab_fake, lab_real, rgb_real):
    """All per-image metrics [N] for a colorization; L and ab_fake at network scale, lab_real in Lab, rgb_real 0-255."""
    return all_metrics(colorized_rgb(L, ab_fake), rgb_real, denormalize_lab(L, ab_fake), lab_real)


@torch.inference_mode()
def evaluate(G, split, batch_size=500, autocast=nullcontext, baseline=True):
    """Run G over an ImageSplit in batches; returns (mean metrics of G, mean metrics of the grayscale
    output or None when baseline=False, mean colorfulness of the real images). Lab is made per batch on G's device."""
    keys = ('model', 'gray') if baseline else ('model',)
    sums = {key: dict.fromkeys(METRIC_NAMES, 0.0) for key in keys}
    colorfulness_real = 0.0
    device = next(G.parameters()).device
    for i in range(0, len(split), batch_size):
        rgb_real = split.images(torch.arange(i, min(i + batch_size, len(split)))).to(device)  # [B,3,H,W] uint8
        L, ab_real = rgb_uint8_to_network(rgb_real)
        lab_real = denormalize_lab(L, ab_real)
        with autocast():
            ab_fake = G(L).float()
        for key, ab in zip(keys, (ab_fake, torch.zeros_like(ab_fake))):
            for metric, values in image_metrics(L, ab, lab_real, rgb_real).items():
                sums[key][metric] += values.sum().item()
        colorfulness_real += colorfulness(rgb_real).sum().item()
    n = len(split)
    means = {key: {k: v / n for k, v in sums[key].items()} for key in keys}
    return means['model'], means.get('gray'), colorfulness_real / n


def _photo_tensor(image):
    """uint8 HxWx3 array -> float [1,3,H,W] on 0-255 (a copy: decoded images are often read-only)."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()


def evaluate_photos(G, paths, device='cpu', size=0, saturation=1.0):
    """Colorize each photo at its full size through colorize.py's pipeline (photo.colorize) and score it against the
    original; same return as evaluate(), the grayscale output being the same pipeline with no chroma."""
    sums = {key: dict.fromkeys(METRIC_NAMES, 0.0) for key in ('model', 'gray')}
    colorfulness_real = 0.0
    for path in paths:
        real = read_image(path)
        if real.ndim != 3 or real.dtype.name != 'uint8':
            raise SystemExit(f"error: '{path}' is not an 8-bit colour image; full-resolution evaluation needs the "
                             "colour originals")
        rgb_real = _photo_tensor(real)
        lab_real = rgb_to_lab(rgb_real / 255)
        for key, s in (('model', saturation), ('gray', 0.0)):
            rgb_fake = _photo_tensor(colorize(G, real, size, device, s))
            for metric, value in all_metrics(rgb_fake, rgb_real, rgb_to_lab(rgb_fake / 255), lab_real).items():
                sums[key][metric] += value.item()
        colorfulness_real += colorfulness(rgb_real).item()
    n = len(paths)
    means = {key: {k: v / n for k, v in sums[key].items()} for key in sums}
    return means['model'], means['gray'], colorfulness_real / n


def colorfulness_ratios(history):
    """Per-epoch validation colorfulness relative to the real images', or None for histories logged before the ratio."""
    if not all('val_colorfulness_real' in h for h in history):
        return None
    return [h['val_colorfulness'] / h['val_colorfulness_real'] for h in history]
