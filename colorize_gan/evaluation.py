"""Evaluation loops: a generator over a split of small images, or over whole photos through colorize.py's pipeline,
each beside the grayscale output (L kept, ab = 0)."""
from contextlib import nullcontext

import numpy as np
import torch

from .color import AB_SCALE, denormalize_lab, is_gray, rgb_to_lab, rgb_uint8_to_network
from .hints import HINT_SPREAD, MODEL_HINT_RADIUS, sample_hints, simulated_photo_hints, spread_hints
from .images import describe_failure, read_image
from .metrics import METRIC_NAMES, all_metrics, colorfulness, image_metrics
from .photo import colorize
from .utils import UserError


@torch.inference_mode()
def evaluate(G, split, batch_size=500, autocast=nullcontext, baseline=True, names=METRIC_NAMES, hints=0, seed=0,
             hint_spread=HINT_SPREAD):
    """Run G over an ImageSplit in batches; returns (mean metrics of G, mean metrics of the grayscale
    output or None when baseline=False, mean colorfulness of the real images). Lab is made per batch on G's device;
    `names` picks the metrics (train.py's validation skips the slower ones). hints > 0 gives a hint generator that
    many simulated user hints per image (hints.sample_hints from the real colours, drawn from `seed`), each seen by
    G and spread as colorize.py does people's (G sees at most 2 x MODEL_HINT_RADIUS px of a patch's side;
    hints.spread_hints over `hint_spread` x the side; 0 = G's own use of whole patches)."""
    hint_rng = torch.Generator(device=next(G.parameters()).device).manual_seed(seed) if hints else None
    keys = ('model', 'gray') if baseline else ('model',)
    sums = {key: dict.fromkeys(names, 0.0) for key in keys}
    colorfulness_real = 0.0
    device = next(G.parameters()).device
    for i in range(0, len(split), batch_size):
        rgb_real = split.images(torch.arange(i, min(i + batch_size, len(split)))).to(device)  # [B,3,H,W] uint8
        L, ab_real = rgb_uint8_to_network(rgb_real)
        lab_real = denormalize_lab(L, ab_real)
        hint_map = seen = None
        if hints:  # with a spread G sees each hint cut to its centre (as colorize does), the spread holds all of it
            hint_map, seen = sample_hints(ab_real, hint_rng, count=hints, model_side=2 * MODEL_HINT_RADIUS)
            if not hint_spread:  # G's own use alone: whole patches
                seen = hint_map
        with autocast():
            ab_fake = (G(L, seen) if hints else G(L)).float()  # a generator without hint input takes L alone
        if hints:
            lab = denormalize_lab(L, ab_fake)
            ab_fake = spread_hints(lab[:, :1], lab[:, 1:], hint_map, hint_spread) / AB_SCALE
        for key, ab in zip(keys, (ab_fake, torch.zeros_like(ab_fake))):
            for metric, values in image_metrics(L, ab, lab_real, rgb_real, names).items():
                sums[key][metric] += values.sum().item()
        colorfulness_real += colorfulness(rgb_real).sum().item()
    n = len(split)
    means = {key: {k: v / n for k, v in sums[key].items()} for key in keys}
    return means['model'], means.get('gray'), colorfulness_real / n


def _photo_tensor(image):
    """uint8 HxWx3 array -> float [1,3,H,W] on 0-255 (a copy: decoded images are often read-only)."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()


MIN_PHOTO_SIDE = 11  # px: SSIM's Gaussian window


def evaluate_photos(G, paths, device='cpu', size=0, saturation=1.0, upsample='bicubic', hints=0, seed=0,
                    hint_spread=HINT_SPREAD):
    """Colorize each photo at its full size through colorize.py's pipeline (photo.colorize) and score it against the
    original; same return as evaluate(), the grayscale output being the same pipeline with no chroma. The model's
    metrics also hold 'better_than_gray', the share of photos whose MAE is below the grayscale output's, and
    'worst_vs_gray' = (path, the largest per-photo ratio of the model's MAE to the grayscale output's). hints > 0
    gives a hint generator that many simulated user hints per photo (hints.simulated_photo_hints from the real
    colours, photo i's drawn from seed + i), spread over `hint_spread` x the short side as colorize.py does. Files
    that are unreadable, not colour photos or under MIN_PHOTO_SIDE px are left out and listed, as (path, reason),
    in the model's 'skipped'; UserError when none is left."""
    sums = {key: dict.fromkeys(METRIC_NAMES, 0.0) for key in ('model', 'gray')}
    colorfulness_real, better, worst, skipped = 0.0, 0, (None, 0.0), []
    for i, path in enumerate(paths):
        try:
            real = read_image(path)
        except Exception as e:
            skipped.append((path, f'unreadable: {describe_failure(e)}'))
            continue
        if real.ndim != 3 or real.dtype.name != 'uint8' or is_gray(real):
            skipped.append((path, 'not an 8-bit colour photo'))
            continue
        if min(real.shape[:2]) < MIN_PHOTO_SIDE:
            skipped.append((path, f'smaller than {MIN_PHOTO_SIDE} px (the SSIM window)'))
            continue
        rgb_real = _photo_tensor(real)
        lab_real = rgb_to_lab(rgb_real / 255)
        photo_mae = {}
        given = simulated_photo_hints(real, hints, np.random.default_rng(seed + i),
                                      min(real.shape[:2]) / (size or G.config['image_size'])) if hints else None
        for key, s in (('model', saturation), ('gray', 0.0)):
            rgb_fake = _photo_tensor(colorize(G, real, size, device, s, given if key == 'model' else None,
                                              upsample=upsample, hint_spread=hint_spread))
            for metric, value in all_metrics(rgb_fake, rgb_real, rgb_to_lab(rgb_fake / 255), lab_real).items():
                sums[key][metric] += value.item()
                if metric == 'mae':
                    photo_mae[key] = value.item()
        better += photo_mae['model'] < photo_mae['gray']
        ratio = photo_mae['model'] / max(photo_mae['gray'], 1e-9)
        worst = (path, ratio) if ratio > worst[1] else worst
        colorfulness_real += colorfulness(rgb_real).item()
    n = len(paths) - len(skipped)
    if not n:
        raise UserError(f"none of the {len(paths)} image files is a colour photo to score ('{skipped[0][0]}': "
                        f"{skipped[0][1]}); pass a folder of colour originals")
    means = {key: {k: v / n for k, v in sums[key].items()} for key in sums}
    means['model']['better_than_gray'] = better / n
    means['model']['worst_vs_gray'] = worst
    means['model']['skipped'] = skipped
    return means['model'], means['gray'], colorfulness_real / n
