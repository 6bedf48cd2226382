"""Colorization metrics, one value per image: MAE, CIEDE2000, pixel accuracy, PSNR, SSIM, colorfulness; and the
flicker of a colorized video: warping error and colour distribution consistency (CDC)."""
import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import deltaE_ciede2000

from .color import colorized_rgb, denormalize_lab

METRIC_NAMES = ('mae', 'ciede2000', 'acc_2', 'acc_5', 'psnr', 'ssim', 'colorfulness')


def mae_rgb(rgb_fake, rgb_real):
    """Mean absolute error per image on RGB 0-255 (the metric of record)."""
    return (rgb_fake.float() - rgb_real.float()).abs().flatten(1).mean(1)


def ciede2000(lab_fake, lab_real):
    """Mean CIEDE2000 colour difference per image [N] between Lab images [N,3,H,W] (L 0-100, a and b in CIE units):
    scikit-image's deltaE_ciede2000 (Sharma, Wu and Dalal 2005) per pixel, averaged over the pixels. Runs on the CPU
    in float64, in chunks of about a million pixels."""
    fake = lab_fake.detach().double().cpu().movedim(1, -1).numpy()  # [N,H,W,3]
    real = lab_real.detach().double().cpu().movedim(1, -1).numpy()
    step = max(1, 2 ** 20 // max(1, fake[0, ..., 0].size))
    out = [deltaE_ciede2000(real[i:i + step], fake[i:i + step], channel_axis=-1).reshape(len(real[i:i + step]), -1)
           .mean(1) for i in range(0, len(real), step)]
    return torch.from_numpy(np.concatenate(out)).float().to(lab_fake.device)


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


def all_metrics(rgb_fake, rgb_real, lab_fake, lab_real, names=METRIC_NAMES):
    """The metrics in `names` (default: all, METRIC_NAMES) per image [N], from both images in RGB 0-255 and in Lab."""
    compute = {
        'mae': lambda: mae_rgb(rgb_fake, rgb_real),
        'ciede2000': lambda: ciede2000(lab_fake, lab_real),
        'acc_2': lambda: pixel_accuracy(lab_fake, lab_real, 2),
        'acc_5': lambda: pixel_accuracy(lab_fake, lab_real, 5),
        'psnr': lambda: psnr(rgb_fake, rgb_real),
        'ssim': lambda: ssim(rgb_fake, rgb_real),
        'colorfulness': lambda: colorfulness(rgb_fake),
    }
    return {name: compute[name]() for name in names}


def image_metrics(L, ab_fake, lab_real, rgb_real, names=METRIC_NAMES):
    """Per-image metrics [N] for a colorization; L and ab_fake at network scale, lab_real in Lab, rgb_real 0-255."""
    return all_metrics(colorized_rgb(L, ab_fake), rgb_real, denormalize_lab(L, ab_fake), lab_real, names)


def colorfulness_ratios(history):
    """Per-epoch validation colorfulness relative to the real images', or None for histories logged before the ratio."""
    if not all('val_colorfulness_real' in h for h in history):
        return None
    return [h['val_colorfulness'] / h['val_colorfulness_real'] for h in history]


# -----------------------------------------------------------------------------
# flicker of colorized video

def warp_back(x, flow):
    """Frame t+1 moved back onto frame t: x [C,H,W] (frame t+1) sampled at flow [2,H,W] (for each pixel of frame t,
    its (x, y) position in frame t+1, px), bilinear, exact at whole-pixel positions. Returns (warped [C,H,W], valid
    [H,W] bool: the position lies inside frame t+1, False where content leaves the frame or is uncovered)."""
    C, H, W = x.shape
    gx, gy = flow[0], flow[1]
    grid = torch.stack([2 * gx / max(W - 1, 1) - 1, 2 * gy / max(H - 1, 1) - 1], -1)[None].to(x.device, torch.float32)
    warped = F.grid_sample(x[None].float(), grid, mode='bilinear', padding_mode='border', align_corners=True)[0]
    eps = 1e-4
    valid = (gx >= -eps) & (gx <= W - 1 + eps) & (gy >= -eps) & (gy <= H - 1 + eps)
    return warped, valid.to(x.device)


def warping_error(ab_t, ab_next, flow, block=8):
    """Motion-compensated colour flicker between two frames, in ab units: the mean Euclidean distance between frame t's
    ab [2,H,W] and frame t+1's ab moved back onto frame t along `flow` (warp_back), over block x block means of the
    pixels where the motion is known (blocks with any occluded or uncovered pixel left out; block=1 per pixel).
    The warping error of Lai et al., "Learning Blind Video Temporal Consistency" (ECCV 2018), eq. 9, on ab rather than
    RGB so that it measures colour only; the block means make it about colour regions rather than the codec's
    chroma noise. NaN if no block is whole."""
    warped, valid = warp_back(ab_next, flow)
    pool = lambda v: F.avg_pool2d(v[None].float(), block)[0]  # noqa: E731
    whole = pool(valid[None])[0] > 1 - 1e-6  # [H/block, W/block]
    distance = (pool(ab_t.float()) - pool(warped)).norm(dim=0)
    return distance[whole].mean().item() if whole.any() else float('nan')


def color_histograms(rgb):
    """Per-channel colour histograms of a uint8 HxWx3 RGB frame: [3,256] float64, each row summing to 1."""
    rgb = torch.as_tensor(np.asarray(rgb)).reshape(-1, 3).long()
    return torch.stack([torch.bincount(rgb[:, c], minlength=256) for c in range(3)]).double() / len(rgb)


def js_divergence(p, q):
    """Jensen-Shannon divergence (natural log, 0 to ln 2) between distributions along the last dim of p and q."""
    m = (p + q) / 2
    kl = lambda a, b: torch.where(a > 0, a * (a / b.clamp_min(1e-300)).log(), torch.zeros_like(a)).sum(-1)  # noqa
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def color_distribution_consistency(histograms, gaps=(1, 2, 4)):
    """CDC of a clip from its frames' color_histograms [T,3,256]: the Jensen-Shannon divergence of each RGB channel's
    histogram between frames `gap` apart, averaged over the frame pairs and the channels, then over the gaps 1, 2
    and 4 (Liu et al., "Temporally Consistent Video Colorization with Deep Feature Propagation and Self-regularization
    Learning", arXiv 2110.04562, 2021, as in their eval_results.py; also the NTIRE 2023 video colorization challenge's
    CDC). Lower is steadier; a still clip gives 0. Gaps as long as the clip are left out."""
    h = torch.as_tensor(histograms)
    per_gap = [js_divergence(h[:-gap], h[gap:]).mean().item() for gap in gaps if gap < len(h)]
    return float(np.mean(per_gap)) if per_gap else float('nan')
