"""Build a test folder of natural colour photos that are not in CIFAR-10, to check that a model generalizes.

    python3 natural_photos.py                  # writes data/natural/test/<photo>/NNN.png and data/natural/gray/*.jpg
    python3 eval.py --data_dir=data/natural
    python3 colorize.py data/natural/gray --out_dir=colorized --side_by_side

The photos are scikit-image's bundled samples (astronaut, cat, coffee, rocket, motorcycle). From each, square
crops of random position and size (a quarter of the short side up to all of it) are downscaled to
image_size, like CIFAR-10's 32x32 pictures of whole scenes and objects. The whole photos are also saved
in grayscale, at full size, as inputs to try colorize.py on.
"""
import os
import sys

import numpy as np
from PIL import Image
from skimage import data as skdata

from checkpoint import atomic_write
from utils import configure

# -----------------------------------------------------------------------------
out_dir = 'data/natural'  # the folder gets test/<photo>/NNN.png
crops = 100  # crops per photo
image_size = 32  # px
seed = 0
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:])
photos = {'astronaut': skdata.astronaut(), 'cat': skdata.chelsea(), 'coffee': skdata.coffee(),
          'rocket': skdata.rocket(), 'motorcycle': skdata.stereo_motorcycle()[0]}
rng = np.random.default_rng(seed)
for name, rgb in photos.items():
    im = Image.fromarray(rgb)
    w, h = im.size
    folder = os.path.join(out_dir, 'test', name)
    for i in range(crops):
        side = int(rng.integers(min(w, h) // 4, min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crop = im.crop((x, y, x + side, y + side)).resize((image_size, image_size), Image.Resampling.LANCZOS)
        atomic_write(os.path.join(folder, f'{i:03d}.png'), lambda f: crop.save(f, format='PNG'))
    gray = im.convert('L')
    atomic_write(os.path.join(out_dir, 'gray', f'{name}.jpg'), lambda f: gray.save(f, format='JPEG', quality=95))
print(f"wrote {crops * len(photos)} crops of {len(photos)} photos to {out_dir}/test/ "
      f"and the grayscale photos to {out_dir}/gray/")
