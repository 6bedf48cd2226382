"""Turn CIFAR-10's python tarball, downloaded elsewhere, into the image folder the scripts read (for machines offline).

    python3 tools/cifar10_folder.py --tarball=path/to/cifar-10-python.tar.gz   # -> data/cifar10/{train,test}/<class>/

torchvision checks the tarball's MD5 and reads it; the images are written as lossless PNG. (Simply copying the
tarball into data/ also works: the default --data_dir=data then finds it there instead of downloading it.)
"""
import os
import shutil
import sys
import tempfile

from PIL import Image
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from colorize_gan.utils import atomic_write, configure  # noqa: E402

# -----------------------------------------------------------------------------
tarball = ''  # cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html
out_dir = 'data/cifar10'  # gets train/<class>/NNNNN.png (50,000) and test/<class>/NNNNN.png (10,000)
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:])
if not tarball or not os.path.isfile(tarball):
    sys.exit(f"error: --tarball={tarball!r} is not a file; download cifar-10-python.tar.gz (163 MB) from "
             "https://www.cs.toronto.edu/~kriz/cifar.html and pass its path")
from torchvision.datasets import CIFAR10  # noqa: E402  (after the argument checks: importing it takes a while)

with tempfile.TemporaryDirectory() as root:
    shutil.copy(tarball, os.path.join(root, 'cifar-10-python.tar.gz'))
    for split in ('train', 'test'):
        try:
            ds = CIFAR10(root, train=split == 'train', download=True)  # finds the tarball, checks it, extracts it
        except Exception as e:
            sys.exit(f"error: '{tarball}' is not CIFAR-10's python tarball ({type(e).__name__}: {str(e)[:80]}); "
                     "download it again")
        for i, (image, label) in enumerate(tqdm(zip(ds.data, ds.targets), total=len(ds.data), desc=split,
                                                disable=None)):
            path = os.path.join(out_dir, split, ds.classes[label], f'{i:05d}.png')
            atomic_write(path, lambda f: Image.fromarray(image).save(f, format='PNG'))
        print(f"wrote {len(ds.data)} {split} images to {os.path.join(out_dir, split)}/")
