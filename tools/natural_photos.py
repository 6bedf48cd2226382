"""Build a test folder of natural colour photos that are not in CIFAR-10, to check that a model generalizes.

    python3 tools/natural_photos.py             # data/natural/test/<photo>/NNN.png, full/test/*.png and gray/*.jpg
    python3 eval.py --data_dir=data/natural                                   # the crops, at the model's size
    python3 eval.py --data_dir=data/natural/full --full_resolution=True       # whole photos, as colorize.py does
    python3 colorize.py data/natural/gray --out_dir=colorized --side_by_side

The photos are the colour photographs that ship inside the installed packages: scikit-image's samples
(astronaut, cat, coffee, rocket, motorcycle), and matplotlib's grace_hopper and scikit-learn's china and flower
when those packages are installed. From each scikit-image photo, square crops of random position and size (a quarter
of the short side up to all of it) are downscaled to image_size (eval.py resizes them again to each model's own
size), like the small pictures of whole scenes and objects the models train on. Every photo is also saved whole at
full size, in colour under full/test/ (the originals that --full_resolution scores against) and in grayscale under
gray/ (inputs to try colorize.py on).

A rerun into the same folder rewrites the crops and photos, removes its own crops beyond the new counts (the names it
writes, 000.png on; train/ goes with --train_crops=0) and the temporary files a killed run left, and keeps every other
file; a file or folder in the way of one it writes is named in one line before anything changes.
"""
import os
import re
import sys

import numpy as np
from PIL import Image
from skimage import data as skdata

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from colorize_gan.utils import UserError, atomic_write, configure, remove_stale_temps  # noqa: E402

# -----------------------------------------------------------------------------
out_dir = 'data/natural'  # gets test/ and train/<photo>/NNN.png, full/test/<photo>.png and gray/<photo>.jpg
crops = 100  # test crops per photo; 0 = none (the whole photos only)
train_crops = 80  # other random crops per photo, a tiny train/ split (the quick start trains on it); 0 = none
image_size = 64  # px of the crops (16 to 512)
seed = 0  # of the crops' positions and sizes: the same seed gives the same crops
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:])
if crops < 0 or train_crops < 0:
    raise UserError(f"--crops={crops} --train_crops={train_crops}: pass 0 (none) or a number of crops per photo")
if not 16 <= image_size <= 512:
    raise UserError(f"--image_size={image_size}: pass 16 to 512 px (64 by default; eval.py resizes to each model's; "
                    "the photos are 300-700 px on their short side)")
if seed < 0:
    raise UserError(f"--seed={seed}: pass 0 or a positive whole number")
if not out_dir.strip():
    raise UserError("--out_dir is empty; name the folder to write in, e.g. --out_dir=data/natural")
out_dir = os.path.normpath(out_dir)
if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise UserError(f"--out_dir='{out_dir}' is a file; name a folder (it is made if missing)")
photos = {'astronaut': skdata.astronaut(), 'cat': skdata.chelsea(), 'coffee': skdata.coffee(),
          'rocket': skdata.rocket(), 'motorcycle': skdata.stereo_motorcycle()[0]}


def other_package_photos():
    """{name: uint8 HxWx3} of the colour photos other installed packages ship (matplotlib, scikit-learn); those
    whose package is missing are left out."""
    found = {}
    try:
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data('grace_hopper.jpg') as f:
            found['grace_hopper'] = np.asarray(Image.open(f).convert('RGB'))
    except (ImportError, OSError, ValueError):
        pass
    try:
        from sklearn.datasets import load_sample_images
        for path, rgb in zip(load_sample_images().filenames, load_sample_images().images):
            found[os.path.splitext(os.path.basename(path))[0]] = rgb
    except ImportError:
        pass
    return found




def crop_name(i):
    """The file name of crop i: 000.png, 001.png, ..., 999.png, 1000.png, ..."""
    return f'{i:03d}.png'


def is_crop_name(name):
    """Whether `name` is one this script gives a crop (crop_name(i) for some i: '0050.png' is not)."""
    numbered = re.fullmatch(r'\d{3,}\.png', name)
    return bool(numbered) and name == crop_name(int(name[:-4]))


def write_file(path, save, durable=True):
    """atomic_write of one output; a folder where the file goes is refused in one line, never replaced."""
    if os.path.isdir(path):
        raise UserError(f"'{path}' is a folder where this script writes a file; move it away and rerun")
    atomic_write(path, save, durable=durable)


def write_crops(im, folder, n, rng):
    """n square crops of random position and size (a quarter of the short side up to all of it), as image_size PNGs
    000.png, 001.png, ...; crops of an earlier run beyond n (files of this script's names, not links or folders), and
    temporary files a killed run left, are removed, so the folder holds what this run says it wrote. Returns how many
    old crops went."""
    w, h = im.size
    for i in range(n):
        side = int(rng.integers(min(w, h) // 4, min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = im.crop((x, y, x + side, y + side)).resize((image_size, image_size), Image.Resampling.LANCZOS)
        # compress_level=1: the same pixels, written 3x faster; durable=False: a lost crop is remade by a rerun
        write_file(os.path.join(folder, crop_name(i)), lambda f: crop.save(f, format='PNG', compress_level=1),
                   durable=False)
    remove_stale_temps(folder, is_crop_name)
    removed = 0
    for old in os.listdir(folder) if os.path.isdir(folder) else []:
        path = os.path.join(folder, old)
        if is_crop_name(old) and int(old[:-4]) >= n and os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)
            removed += 1
    for empty in (folder, os.path.dirname(folder)):  # with n = 0 no empty test/<photo>/ or train/ is left behind
        if n == 0 and os.path.isdir(empty) and not os.listdir(empty):
            os.rmdir(empty)
    return removed


def check_outputs(wholes):
    """Every folder this run makes and every file it writes, checked before anything is written or removed: a file
    where a folder goes, or a folder where a file goes, is one line naming it."""
    folders = [os.path.join(out_dir, split, name) for split, n in (('test', crops), ('train', train_crops)) if n
               for name in photos] + [os.path.join(out_dir, 'full', 'test'), os.path.join(out_dir, 'gray')]
    for folder in folders:
        for above in (folder, os.path.dirname(folder)):
            if os.path.exists(above) and not os.path.isdir(above):
                raise UserError(f"'{above}' is a file where this script makes a folder; move it away and rerun")
    files = [os.path.join(out_dir, split, name, crop_name(i)) for split, n in (('test', crops), ('train', train_crops))
             for name in photos for i in range(n)]
    files += [os.path.join(out_dir, 'full', 'test', f'{name}.png') for name in wholes]
    files += [os.path.join(out_dir, 'gray', f'{name}.jpg') for name in wholes]
    for path in files:
        if os.path.isdir(path):
            raise UserError(f"'{path}' is a folder where this script writes a file; move it away and rerun")


rng, train_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)  # train crops never move test crops
removed = 0
wholes = {**photos, **other_package_photos()}
check_outputs(wholes)
try:
    for name, rgb in photos.items():
        im = Image.fromarray(rgb)
        removed += write_crops(im, os.path.join(out_dir, 'test', name), crops, rng)
        removed += write_crops(im, os.path.join(out_dir, 'train', name), train_crops, train_rng)
    for name, rgb in wholes.items():
        im = Image.fromarray(rgb)
        write_file(os.path.join(out_dir, 'full', 'test', f'{name}.png'), lambda f: im.save(f, format='PNG'))
        gray = im.convert('L')
        write_file(os.path.join(out_dir, 'gray', f'{name}.jpg'), lambda f: gray.save(f, format='JPEG', quality=95))
    for folder, extension in (('full/test', '.png'), ('gray', '.jpg')):
        remove_stale_temps(os.path.join(out_dir, folder), {name + extension for name in wholes}.__contains__)
except OSError as e:  # a read-only disk, a full one, a file where a folder goes
    raise UserError(f"cannot write in --out_dir='{out_dir}' ({e.strerror or e}: '{e.filename}'); pass a folder you can "
                    "write to") from None
written = [f"{count * len(photos)} {split} crops of {len(photos)} photos to {out_dir}/{split}/"
           for split, count in (('test', crops), ('train', train_crops)) if count]
wholes_written = (f"{len(wholes)} whole photos ({', '.join(wholes)}) to {out_dir}/full/test/ and in grayscale to "
                  f"{out_dir}/gray/")
print(f"wrote {', '.join(written + [wholes_written])}"
      + (f"; removed {removed} crop{'s' * (removed != 1)} of an earlier run with more" if removed else ''))
