"""Figures: image grids of colorizations and the training curves (one plotter for train.py and compare.py)."""
import math
from contextlib import nullcontext

import numpy as np
import torch
from PIL import Image

from .color import colorized_rgb, rgb_uint8_to_network
from .metrics import colorfulness_ratios
from .utils import atomic_write


def save_png(path, image):
    """Write an HxWx3 uint8 array as PNG atomically."""
    atomic_write(path, lambda f: Image.fromarray(image).save(f, format='PNG'))


def image_grid(columns, scale=2, groups=1, gap=2):
    """Columns of [N,3,H,W] 0-255 images -> HxWx3 uint8 grid: a row per image, rows in `groups` side-by-side blocks."""
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


def comparison_grid(L, ab_columns, rgb_real, scale=2, groups=2):
    """Grid of grayscale | one column per ab prediction | original, from network-scale L and ab, as HxWx3 uint8."""
    gray = colorized_rgb(L, torch.zeros_like(L).expand(-1, 2, -1, -1))
    return image_grid([gray, *(colorized_rgb(L, ab) for ab in ab_columns), rgb_real], scale=scale, groups=groups)


@torch.inference_mode()
def sample_grid(generators, split, k=16, autocast=nullcontext):
    """Grid of grayscale | each generator's colorization | original for k images spread evenly over the split."""
    idx = torch.linspace(0, len(split) - 1, min(k, len(split))).round().long()
    device = next(generators[0].parameters()).device
    rgb = split.images(idx).to(device)
    L = rgb_uint8_to_network(rgb)[0]
    with autocast():
        ab_columns = [G(L).float() for G in generators]
    return comparison_grid(L, ab_columns, rgb)


def plot_curves(path, histories):
    """Per-epoch curves of one or more runs ({label: train.py history}) to a PNG, atomically: the adversarial and L1
    losses, validation MAE (EMA and raw G, and the grayscale output) and validation colorfulness relative to real;
    returns the matplotlib Figure (a notebook can show it)."""
    # a Figure of its own, never pyplot: no window, no backend switched under a notebook that imports this; imported
    # here, not at the top: half a second that eval.py and a run's other processes never need
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    fig = Figure(figsize=(17, 3.6))
    axes = fig.subplots(1, 4)
    # the grayscale output's validation MAE, one line per validation set (runs on the same images share one; equal to
    # 0.01 of a level, as the same images give on another device): black when there is one, else in its first run's
    # colour, labelled with every run that shares it
    grays = {}
    for label, history in histories.items():
        if history:
            grays.setdefault(round(history[0]['val_mae_gray'], 2), []).append(label)
    colors = {}
    all_epochs = sorted({h['epoch'] for history in histories.values() for h in history})
    for label, history in histories.items():
        epochs = [h['epoch'] for h in history]
        line = dict(marker='o', ms=3) if len(epochs) == 1 else {}  # one epoch is a point, not a line: mark it
        color = colors[label] = axes[0].plot(epochs, [h['loss_D'] for h in history], label=f'{label} loss_D',
                                             **line)[0].get_color()
        line_G = dict(line, marker='x') if line else {}  # G's point apart from D's
        axes[0].plot(epochs, [h['loss_G_adv'] for h in history], ':', color=color, label=f'{label} loss_G_adv',
                     **line_G)
        axes[1].plot(epochs, [h['loss_G_l1'] for h in history], color=color, label=label, **line)
        axes[2].plot(epochs, [h['val_mae'] for h in history], 'o-', ms=3, color=color, label=f'{label} (EMA if on)')
        axes[2].plot(epochs, [h['val_mae_raw'] for h in history], color=color, alpha=0.35, label=f'{label} raw G',
                     **line)
        ratios = colorfulness_ratios(history)
        if ratios:
            axes[3].plot(epochs, ratios, 'o-', ms=3, color=color, label=label)
    for value, labels in grays.items():
        one = len(grays) == 1
        axes[2].axhline(value, color='k' if one else colors[labels[0]], ls='--',
                        label='grayscale output' if one else f"{', '.join(labels)} grayscale output")
    axes[3].axhline(1.0, color='k', ls='--', label='real images')
    titles = ('adversarial losses (dotted: G)', 'L1 loss (ab/110 scale)', 'validation MAE (RGB 0-255)',
              'validation colorfulness / real')
    for ax, title in zip(axes, titles):
        ax.set_title(title, y=1.0)  # placed, not fitted around the ticks: a quarter of the drawing's time
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.5
        if len(all_epochs) == 1:  # one epoch: its own tick, not 0.95 ... 1.05 around it
            ax.set_xlim(all_epochs[0] - 0.5, all_epochs[0] + 0.5)
            ax.set_xticks(all_epochs)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.035, right=0.995, bottom=0.14, top=0.91, wspace=0.2)  # fixed: tight_layout costs a draw
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=90))
    return fig
