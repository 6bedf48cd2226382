"""Shared helpers: Lab<->RGB in torch, metrics, checkpoints, the --name=value parser, image grids."""
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# CIE Lab <-> sRGB, batched on any device. Same constants as scikit-image (D65, 2 degree observer).

_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = (0.95047, 1.0, 1.08883)


def _mix(x, matrix):
    """Apply a 3x3 matrix over the channel dim of [N,3,H,W]."""
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum('ij,njhw->nihw', m, x)


def rgb_to_lab(rgb):
    """sRGB in [0,1], [N,3,H,W] -> Lab [N,3,H,W] with L in [0,100], a,b roughly in [-110,110]."""
    rgb = rgb.float()
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0).pow(2.4), rgb / 12.92)
    xyz = _mix(linear, _RGB_TO_XYZ)
    white = torch.tensor(_WHITE_D65, device=rgb.device).view(1, 3, 1, 1)
    t = xyz / white
    f = torch.where(t > 0.008856, t.clamp_min(1e-12).pow(1 / 3), 7.787 * t + 16 / 116)
    L = 116 * f[:, 1:2] - 16
    a = 500 * (f[:, 0:1] - f[:, 1:2])
    b = 200 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat([L, a, b], 1)


def lab_to_rgb(lab, clip=True):
    """Lab [N,3,H,W] -> sRGB [N,3,H,W], clipped to [0,1] like scikit-image's lab2rgb (clip=False leaves it unclipped)."""
    lab = lab.float()
    L, a, b = lab[:, 0:1], lab[:, 1:2], lab[:, 2:3]
    fy = (L + 16) / 116
    fx = fy + a / 500
    fz = (fy - b / 200).clamp_min(0)
    f = torch.cat([fx, fy, fz], 1)
    t = torch.where(f > 0.2068966, f.pow(3), (f - 16 / 116) / 7.787)
    white = torch.tensor(_WHITE_D65, device=lab.device).view(1, 3, 1, 1)
    linear = _mix(t * white, _XYZ_TO_RGB)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0).pow(1 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0, 1) if clip else rgb


def normalize_lab(lab):
    """Lab -> (L/50-1 [N,1,H,W], ab/110 [N,2,H,W]), the pix2pix scaling the networks see."""
    return lab[:, :1] / 50 - 1, lab[:, 1:] / 110


def denormalize_lab(L, ab):
    """Inverse of normalize_lab: network-scale L and ab -> Lab [N,3,H,W]."""
    return torch.cat([(L.float() + 1) * 50, ab.float() * 110], 1)


def colorized_rgb(L, ab):
    """Network-scale L and ab -> RGB on 0-255 as float [N,3,H,W]."""
    return lab_to_rgb(denormalize_lab(L, ab)) * 255


# ----------------------------------------------------------------------------------------------
# Metrics. Each returns one value per image, [N], so callers can sum over batches.

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
    return (10 * torch.log10(255.0 ** 2 / mse.clamp_min(255.0 ** 2 * 1e-10)))


def _gaussian_window(size=11, sigma=1.5, device=None):
    """Normalized 1-D Gaussian of `size` taps."""
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def ssim(rgb_fake, rgb_real):
    """Per-image SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, valid region, per RGB channel, then averaged.

    Same as skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=...)."""
    x, y = rgb_fake.float(), rgb_real.float()
    C = x.shape[1]
    w = _gaussian_window(device=x.device)
    kh = w.view(1, 1, -1, 1).repeat(C, 1, 1, 1)
    kw = w.view(1, 1, 1, -1).repeat(C, 1, 1, 1)
    blur = lambda t: F.conv2d(F.conv2d(t, kh, groups=C), kw, groups=C)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1)


def colorfulness(rgb):
    """Hasler & Suesstrunk (2003) colourfulness per image on RGB 0-255: rg = R-G, yb = (R+G)/2 - B (no abs)."""
    R, G, B = rgb.float().unbind(1)
    rg = (R - G).flatten(1)
    yb = (0.5 * (R + G) - B).flatten(1)
    std = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return std + 0.3 * mean


def image_metrics(L, ab_fake, lab_real, rgb_real):
    """All per-image metrics [N] for a colorization; L and ab_fake at network scale, lab_real in Lab, rgb_real 0-255."""
    rgb_fake = colorized_rgb(L, ab_fake)
    lab_fake = denormalize_lab(L, ab_fake)
    return {
        'mae': mae_rgb(rgb_fake, rgb_real),
        'acc_2': pixel_accuracy(lab_fake, lab_real, 2),
        'acc_5': pixel_accuracy(lab_fake, lab_real, 5),
        'psnr': psnr(rgb_fake, rgb_real),
        'ssim': ssim(rgb_fake, rgb_real),
        'colorfulness': colorfulness(rgb_fake),
    }


@torch.inference_mode()
def evaluate(G, split, batch_size=500, autocast=None, baseline=True):
    """Run G over a LabSplit in batches; returns (mean metrics of G, mean metrics of the grayscale output or None
    when baseline=False, mean colourfulness of the real images)."""
    keys = ('model', 'gray') if baseline else ('model',)
    sums = {key: dict.fromkeys(METRIC_NAMES, 0.0) for key in keys}
    colorfulness_real = 0.0
    for i in range(0, len(split), batch_size):
        L, ab_real, rgb_real = split.L[i:i + batch_size], split.ab[i:i + batch_size], split.rgb[i:i + batch_size].float()
        lab_real = denormalize_lab(L, ab_real)
        with autocast or torch.autocast('cpu', enabled=False):
            ab_fake = G(L).float()
        for key, ab in zip(keys, (ab_fake, torch.zeros_like(ab_fake))):
            for metric, values in image_metrics(L, ab, lab_real, rgb_real).items():
                sums[key][metric] += values.sum().item()
        colorfulness_real += colorfulness(rgb_real).sum().item()
    n = len(split)
    means = {key: {k: v / n for k, v in sums[key].items()} for key in keys}
    return means['model'], means.get('gray'), colorfulness_real / n


@torch.inference_mode()
def sample_grid(generators, split, k=16, autocast=None):
    """Grid of grayscale | each generator's colorization | original for k images spread evenly over the split."""
    idx = torch.linspace(0, len(split) - 1, min(k, len(split))).round().long().to(split.L.device)
    L = split.L[idx]
    with autocast or torch.autocast('cpu', enabled=False):
        abs_ = [G(L).float() for G in generators]
    return comparison_grid(L, abs_, split.rgb[idx])


def lr_factor(epoch, epochs, decay_epochs):
    """pix2pix's schedule: 1 for the first epochs - decay_epochs epochs (0-based `epoch`), then linearly down to
    1/(decay_epochs + 1) in the last one, so no epoch trains at a learning rate of exactly 0."""
    return 1.0 - max(0, epoch + 1 - (epochs - decay_epochs)) / (decay_epochs + 1)


# ----------------------------------------------------------------------------------------------
# Files: atomic writes and checkpoints.

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write_fn, mode='wb'):
    """Call write_fn(file) on a temp file beside `path`, then rename it over `path`, so readers never see half a file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path, state):
    """torch.save a dict of tensors/plain values atomically."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path, map_location='cpu'):
    """torch.load with weights_only=True: tensors and plain containers only, never arbitrary objects."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise SystemExit(f"error: checkpoint '{path}' does not exist; pass --checkpoint=PATH to a generator checkpoint")
    except Exception as e:  # truncated, not a checkpoint, or holds pickled objects
        raise SystemExit(f"error: cannot load checkpoint '{path}' ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                         "pass a file written by train.py or a .safetensors file from pretrained/")


def save_png(path, image):
    """Write an HxWx3 uint8 array as PNG atomically."""
    from PIL import Image
    atomic_write(path, lambda f: Image.fromarray(image).save(f, format='PNG'))


def image_grid(columns, scale=2, groups=1, gap=2):
    """Columns of [N,3,H,W] 0-255 images -> HxWx3 uint8 grid: one row per image, rows split into `groups` side-by-side blocks."""
    cols = [c.detach().float().clamp(0, 255).round().to(torch.uint8).cpu() for c in columns]
    n, _, h, w = cols[0].shape
    rows_per_group = math.ceil(n / groups)
    cell_h, cell_w = h * scale + gap, w * scale + gap
    group_w = len(cols) * cell_w + 2 * gap
    canvas = np.full((rows_per_group * cell_h + gap, groups * group_w, 3), 255, np.uint8)
    for i in range(n):
        g, r = divmod(i, rows_per_group)
        for j, col in enumerate(cols):
            tile = col[i].repeat_interleave(scale, 1).repeat_interleave(scale, 2).permute(1, 2, 0).numpy()
            y, x = gap + r * cell_h, g * group_w + gap + j * cell_w
            canvas[y:y + h * scale, x:x + w * scale] = tile
    return canvas


def colorfulness_ratios(history):
    """Per-epoch validation colourfulness relative to the real images', or None for histories logged before the ratio."""
    if not all('val_colorfulness_real' in h for h in history):
        return None
    return [h['val_colorfulness'] / h['val_colorfulness_real'] for h in history]


def best_epoch(history, min_colour):
    """train.py's best.pt rule: the epoch with the lowest validation MAE among those whose validation colourfulness
    is at least min_colour of the real images' (any epoch when min_colour is 0); None if no epoch qualifies."""
    ratios = colorfulness_ratios(history) or [0.0] * len(history)  # histories from before the ratio was logged
    eligible = [(h['val_mae'], h['epoch']) for h, ratio in zip(history, ratios) if ratio >= min_colour]
    return min(eligible)[1] if eligible else None


def plot_history(path, history):
    """Plot per-epoch losses and validation MAE from train.py's history list to a PNG, atomically."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    epochs = [h['epoch'] for h in history]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for key in ('loss_D', 'loss_G_adv'):
        axes[0].plot(epochs, [h[key] for h in history], label=key)
    axes[0].set_title('adversarial losses')
    axes[1].plot(epochs, [h['loss_G_l1'] for h in history], label='loss_G_l1')
    axes[1].set_title('L1 loss (ab/110 scale)')
    axes[2].plot(epochs, [h['val_mae'] for h in history], label='G (EMA if on)')
    axes[2].plot(epochs, [h['val_mae_raw'] for h in history], label='G raw', alpha=0.6)
    axes[2].plot(epochs, [h['val_mae_gray'] for h in history], 'k--', label='grayscale output')
    axes[2].set_title('validation MAE (RGB 0-255)')
    ratios = colorfulness_ratios(history)
    if ratios:
        axes[3].plot(epochs, ratios, label='G (EMA if on)')
        axes[3].axhline(1.0, color='k', ls='--', label='real images')
    axes[3].set_title('validation colourfulness / real')
    for ax in axes:
        ax.set_xlabel('epoch')
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=90))
    plt.close(fig)


def comparison_grid(L, ab_columns, rgb_real, scale=2, groups=2):
    """Grid of grayscale | one column per ab prediction | original, from network-scale L and ab, as HxWx3 uint8."""
    gray = colorized_rgb(L, torch.zeros_like(L).expand(-1, 2, -1, -1))
    return image_grid([gray, *(colorized_rgb(L, ab) for ab in ab_columns), rgb_real], scale=scale, groups=groups)


# ----------------------------------------------------------------------------------------------
# Command line: nanoGPT-style --name=value overrides of a script's config.

def _coerce(name, text, default):
    """Parse `text` into the type of `default`; an int is fine where a float is expected."""
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low in ('1', 'true', 'yes', 'on'):
                return True
            if low in ('0', 'false', 'no', 'off'):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = 'true/false' if isinstance(default, bool) else type(default).__name__
        raise SystemExit(f"error: --{name}={text!r} is not a valid {kind}; e.g. --{name}={default}")
    return text


def parse_overrides(argv, config, positional=False, flags=()):
    """Parse `--name=value` (or `--name value`) against `config` {name: default}; returns {name: typed value}.

    Unknown names exit with the list of valid ones. With positional=True, bare arguments are returned
    in the extra list instead of rejected. Names in `flags` are booleans that may also be given bare (`--json`)."""
    out, extra = {}, []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ('-h', '--help'):
            width = max(len(k) for k in config)
            print('options (--name=value):\n' + '\n'.join(f'  --{k:<{width}} default: {v!r}' for k, v in config.items()))
            raise SystemExit(0)
        if not arg.startswith('--'):
            if positional:
                extra.append(arg)
                continue
            raise SystemExit(f"error: unexpected argument {arg!r}; options take the form --name=value")
        name, eq, value = arg[2:].partition('=')
        if name not in config:
            raise SystemExit(f"error: unknown option --{name}; valid options: " + ', '.join('--' + k for k in config))
        if not eq:
            if isinstance(config[name], bool) and (name in flags or not args or args[0].startswith('--')):
                value = 'true'
            elif args:
                value = args.pop(0)
            else:
                raise SystemExit(f"error: --{name} needs a value, e.g. --{name}={config[name]}")
        out[name] = _coerce(name, value, config[name])
    return (out, extra) if positional else out


def configure(namespace, argv, **kwargs):
    """Apply --name=value overrides to a script's config globals (its lowercase bool/int/float/str names); return the config."""
    names = [k for k, v in namespace.items()
             if k.islower() and not k.startswith('_') and type(v) in (bool, int, float, str)]
    result = parse_overrides(argv, {k: namespace[k] for k in names}, **kwargs)
    overrides, extra = result if kwargs.get('positional') else (result, None)
    namespace.update(overrides)
    config = {k: namespace[k] for k in names}
    return (config, extra) if kwargs.get('positional') else config


def resolve_device(name):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device; asking for CUDA without one is an error, not a fallback."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda'):
        if not torch.cuda.is_available():
            raise SystemExit(f"error: --device={name} but no CUDA device is available; use --device=cpu or --device=auto")
        return torch.device(name)
    if name == 'cpu':
        return torch.device('cpu')
    raise SystemExit(f"error: unknown --device={name}; use auto, cpu or cuda")


def print_json(obj):
    """Print one JSON object on its own line."""
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()
