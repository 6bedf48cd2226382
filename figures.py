"""Redraw the README's colorization figures with a generator (the shipped photo model by default).

    python3 figures.py                   # images/colorize_examples.png and images/saturation.png

Examples: scikit-image's sample photos (a face, an animal, an outdoor scene), turned gray and colorized at full
size through colorize.py's pipeline, each shown gray | colorized | original.
"""
import os
import sys

import numpy as np
from PIL import Image
from skimage import data as skdata

import colorize_gan.script  # noqa: F401  (before the library loads PyTorch: one-line errors and a quiet Ctrl-C)
from colorize_gan.checkpoint import PHOTO_GENERATOR, load_generator
from colorize_gan.photo import colorize
from colorize_gan.plots import save_png
from colorize_gan.utils import UserError, check_out_dir, configure

# -----------------------------------------------------------------------------
checkpoint = ''  # the generator to draw with; '' = pretrained/photo_generator.safetensors
out_dir = 'images'  # where the two figures go (the README's copies live here)
height = 240  # px of each panel
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:])
if not 16 <= height <= 2048:  # three rows of three panels: 2048 px rows already make a 100 MB figure
    raise UserError(f"--height={height} must be between 16 and 2048 (px of each panel)")
if not out_dir:
    raise UserError("--out_dir is empty; pass the folder the two figures go to (default images)")
check_out_dir(out_dir)
G, description = load_generator(checkpoint or PHOTO_GENERATOR)
print(f"drawing with {description}")


def gray_of(rgb):
    """The photo as 8-bit gray (its luminance, as PIL computes it), repeated to 3 channels for display."""
    return np.repeat(np.asarray(Image.fromarray(rgb).convert('L'))[..., None], 3, 2)


def panel(image):
    """An HxWx3 uint8 image scaled to `height` px tall."""
    im = Image.fromarray(image)
    return np.asarray(im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS))


def row(images, gap=6):
    """Panels side by side on white."""
    parts = []
    for image in images:
        parts += [panel(image), np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], 1)


def stack(rows, gap=6):
    """Rows one above the other, padded on the right to the widest."""
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    out = []
    for r in padded:
        out += [r, np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], 0)


photos = {'face': skdata.astronaut(), 'animal': skdata.chelsea(), 'outdoor scene': skdata.rocket()}
rows = [row([gray_of(rgb), colorize(G, gray_of(rgb)[..., 0]), rgb]) for rgb in photos.values()]
save_png(os.path.join(out_dir, 'colorize_examples.png'), stack(rows))
cat = gray_of(skdata.chelsea())[..., 0]
save_png(os.path.join(out_dir, 'saturation.png'), row([colorize(G, cat, saturation=s) for s in (0.8, 1.0, 1.3)]))
print(f"wrote {os.path.join(out_dir, 'colorize_examples.png')} (gray | colorized | original: "
      f"{', '.join(photos)}) and {os.path.join(out_dir, 'saturation.png')} (saturation 0.8 | 1.0 | 1.3)")
