"""Colorize your own photos at their full resolution.

    python3 colorize.py old_photo.jpg --out_dir=colorized
    python3 colorize.py album/ 'scans/*.png' --out_dir colorized --side_by_side --image_format=jpg --saturation=1.2

Inputs are files, folders (searched recursively) and globs. Outputs keep each input's width, height and
luminance and are written under out_dir with the input's name; inputs are never modified.
"""
import glob
import os
import sys
import time

import numpy as np
from PIL import Image

from checkpoint import PHOTO_GENERATOR, load_generator
from color import is_gray
from images import IMAGE_EXTENSIONS, list_images, read_image
from photo import colorize
from utils import atomic_write, configure, resolve_device

# -----------------------------------------------------------------------------
out_dir = 'colorized'  # outputs go here, mirroring the input names
checkpoint = ''  # a checkpoint, run folder or export; '' = pretrained/photo_generator.safetensors
device = 'auto'  # auto | cpu | cuda
size = 0  # px, short side of the model's working resolution; 0 = the size the model was trained at
saturation = 1.0  # scales the predicted chroma before gamut mapping: 0 = gray, 1 = as predicted, 1.3 = vivid
image_format = 'png'  # png | jpg
quality = 95  # JPEG quality, with --image_format=jpg
side_by_side = False  # write input | colorized next to each other
# -----------------------------------------------------------------------------
config, inputs = configure(globals(), sys.argv[1:], positional=True, flags=('side_by_side',))
if image_format not in ('png', 'jpg'):
    sys.exit(f"error: --image_format={image_format} is not supported; use --image_format=png or --image_format=jpg")
if saturation < 0:
    sys.exit(f"error: --saturation={saturation} must be >= 0 (0 = gray, 1 = as predicted, above 1 = more vivid)")
if size < 0:
    sys.exit(f"error: --size={size} must be 0 (the model's own size) or a positive number of pixels")
if not inputs:
    sys.exit("error: no inputs; usage: python3 colorize.py PHOTO|FOLDER|GLOB [...] --out_dir=DIR")


def expand(arg):
    """(files, base) for one command-line input: a file, a folder (recursive) or a glob; base anchors output names."""
    if os.path.isdir(arg):
        files, _ = list_images(arg)
        return files, os.path.dirname(os.path.normpath(arg)) or '.'
    if os.path.isfile(arg):
        return [arg], os.path.dirname(arg) or '.'
    if glob.has_magic(arg):
        files = sorted(f for f in glob.glob(arg, recursive=True) if os.path.isfile(f))
        return [f for f in files if f.lower().endswith(IMAGE_EXTENSIONS)], None
    return None, None


jobs, failed = [], []  # jobs: (input path, output path)
taken, seen = set(), set()
for arg in inputs:
    files, base = expand(arg)
    if files is None:
        print(f"error: '{arg}' does not exist", file=sys.stderr)
        failed.append(arg)
        continue
    if not files:
        print(f"error: '{arg}' holds no image files ({', '.join(IMAGE_EXTENSIONS)})", file=sys.stderr)
        failed.append(arg)
        continue
    for path in files:
        if os.path.realpath(path) in seen:  # named twice, e.g. by a folder and a glob
            continue
        seen.add(os.path.realpath(path))
        rel = os.path.relpath(path, base) if base is not None else os.path.basename(path)
        if rel.startswith('..'):
            rel = os.path.basename(path)
        stem, ext = os.path.splitext(rel)
        out = os.path.join(out_dir, f'{stem}.{image_format}')
        if out in taken:  # photo.jpg and photo.png in one folder
            out = os.path.join(out_dir, f'{stem}_{ext.lstrip(".").lower()}.{image_format}')
        taken.add(out)
        jobs.append((path, out))

dev = resolve_device(device)
G, description = load_generator(checkpoint or PHOTO_GENERATOR, dev) if jobs else (None, '')
if jobs:
    print(f"model: {description}")
input_paths = {os.path.realpath(p) for p, _ in jobs}
written, colored = 0, 0
t_model = t_io = 0.0
for path, out in jobs:
    if os.path.realpath(out) in input_paths:
        print(f"error: '{path}': its output '{out}' would overwrite an input; choose another --out_dir",
              file=sys.stderr)
        failed.append(path)
        continue
    t0 = time.time()
    try:
        if os.path.getsize(path) == 0:
            raise ValueError('the file is empty')
        image = read_image(path)
        if image.size == 0:
            raise ValueError('image has no pixels')
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: '{path}' is not a readable image ({reason[:100]})", file=sys.stderr)
        failed.append(path)
        continue
    t1 = time.time()
    if not is_gray(image):
        colored += 1
        if colored == 1:
            print("note: colour inputs are colorized from their luminance only; their own colours are discarded")
    result = colorize(G, image, size, dev, saturation)  # HxWx3 uint8
    t2 = time.time()
    if side_by_side:
        shown = image if image.dtype == np.uint8 else (image * 255 + 0.5).astype(np.uint8)
        shown = np.repeat(shown[..., None], 3, 2) if shown.ndim == 2 else shown
        result = np.concatenate([shown, result], 1)
    pil = Image.fromarray(result)
    save_kwargs = {'format': 'JPEG', 'quality': quality} if image_format == 'jpg' else {'format': 'PNG'}
    atomic_write(out, lambda f: pil.save(f, **save_kwargs))
    t3 = time.time()
    t_model += t2 - t1
    t_io += (t1 - t0) + (t3 - t2)
    written += 1
    print(f"{path} -> {out} ({image.shape[1]}x{image.shape[0]}, colorize {t2 - t1:.2f}s, "
          f"decode+encode {t1 - t0 + t3 - t2:.2f}s)")

print(f"wrote {written}, failed {len(failed)}" + (f" ({', '.join(failed)})" if failed else '') +
      (f"; outputs in {out_dir}/; {t_model:.1f}s colorizing, {t_io:.1f}s decode+encode" if written else ''))
sys.exit(1 if failed or not written else 0)
