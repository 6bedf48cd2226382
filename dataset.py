"""Datasets as cached uint8 RGB tensors: CIFAR-10 through torchvision, or any image folder with train/ and test/."""
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from checkpoint import atomic_write
from color import AB_SCALE, rgb_uint8_to_network
from photo import read_image

REPO = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_DIR = 'data'  # the default: torchvision's CIFAR-10, downloaded here
CACHE_DIR = os.environ.get('COLORIZE_CACHE_DIR', os.path.join(REPO, 'data', 'cache'))
CACHE_VERSION = 2
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
GRAY_CHROMA = 1.0  # images whose mean Lab chroma is below this carry no colour signal


class DatasetError(SystemExit):
    """A missing or empty dataset: exits with one line that says what was looked for and how to fix it."""

    def __init__(self, message):
        super().__init__('error: ' + message)


@dataclass
class ImageSplit:
    """One split as uint8 RGB [N,3,H,W]; batches are converted to network-scale Lab on the device that holds them."""
    rgb: torch.Tensor
    name: str           # 'cifar10' for torchvision, else the folder's name
    dropped_gray: int   # colorless images removed
    skipped: int        # unreadable files skipped

    def __len__(self):
        return self.rgb.shape[0]

    def to(self, device):
        """The same split with its pixels on `device`."""
        return ImageSplit(self.rgb.to(device), self.name, self.dropped_gray, self.skipped)

    def subset(self, idx):
        """An ImageSplit of rows idx (a LongTensor), same name and counts."""
        return ImageSplit(self.rgb[idx], self.name, self.dropped_gray, self.skipped)

    def batch(self, idx, flip=None, memory_format=torch.contiguous_format):
        """L [B,1,H,W] and ab [B,2,H,W] of rows idx; rows where the bool mask `flip` [B] is set are mirrored."""
        rgb = self.rgb[idx]
        if flip is not None:
            rgb = torch.where(flip.view(-1, 1, 1, 1), rgb.flip(3), rgb)
        L, ab = rgb_uint8_to_network(rgb)
        return L.contiguous(memory_format=memory_format), ab.contiguous(memory_format=memory_format)


# ----------------------------------------------------------------------------------------------
# Reading pictures

def _load_square(path, size):
    """Read an image, center-crop it to a square and resize it to size x size; uint8 HxWx3, or None if unreadable."""
    try:
        image = read_image(path)
    except Exception:
        return None
    if image.shape[0] == 0 or image.shape[1] == 0:
        return None
    if image.dtype != np.uint8:
        image = (image * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(image).convert('RGB')
    w, h = im.size
    if (w, h) != (size, size):
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(im)


def list_images(folder):
    """All image files under `folder` at any depth, sorted, and the count of other files."""
    found, other = [], 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if f.startswith('.'):
                continue
            if f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(root, f))
            else:
                other += 1
    return found, other


def holdout_split(split, n_holdout, limit=0):
    """Split an ImageSplit into (rest, held out): n_holdout fixed random rows set aside for validation, and of the rest
    a fixed random `limit` rows (all if 0). The same images are held out on every run: resume never trains on them."""
    n_holdout = min(n_holdout, len(split) - 1)  # leave at least one image to train on
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(split)))
    held, rest = perm[:n_holdout], perm[n_holdout:]
    if limit:
        rest = rest[:limit]
    return split.subset(rest.sort().values), split.subset(held.sort().values)


def load_train_val(data_dir, image_size=32, val_size=1000, limit=0, verbose=True):
    """The training split without its colorless images, cut into (train, val) by holdout_split: train.py's data,
    and what eval.py --split=val evaluates on."""
    return holdout_split(load_split(data_dir, 'train', image_size, drop_gray=True, verbose=verbose), val_size, limit)


def _subset(n, limit):
    """Indices of a fixed random subset of `limit` out of n (all if limit is 0), so a limit still spans every class."""
    if not limit or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).permutation(n)[:limit])


# ----------------------------------------------------------------------------------------------
# Sources

def _folder_rgb(split_dir, size, limit):
    """uint8 RGB [N,H,W,3] of the images under split_dir and the list of unreadable files."""
    paths, _ = list_images(split_dir)
    if not paths:
        raise DatasetError(f"no images found under '{split_dir}' (looked for {', '.join(IMAGE_EXTENSIONS)} "
                           "at any depth); "
                           "put images there or point --data_dir at a folder with train/ and test/ image folders")
    paths = [paths[i] for i in _subset(len(paths), limit)]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        images = list(pool.map(lambda p: _load_square(p, size), paths, chunksize=64))
    bad = [p for p, im in zip(paths, images) if im is None]
    good = [im for im in images if im is not None]
    if not good:
        raise DatasetError(f"none of the {len(paths)} image files under '{split_dir}' could be read; "
                           "point --data_dir at a folder of valid images")
    return np.stack(good), bad


def _cifar_rgb(root, split, limit):
    """uint8 RGB [N,32,32,3] of torchvision's CIFAR-10, downloaded into root if needed."""
    try:
        from torchvision.datasets import CIFAR10
        ds = CIFAR10(root, train=(split == 'train'), download=True)
    except Exception as e:
        raise DatasetError(f"could not download CIFAR-10 into '{root}' ({type(e).__name__}: {str(e)[:100]}); "
                           "with no internet, point --data_dir at an image folder with train/ and test/ "
                           "(e.g. --data_dir=../shared/data/cifar10)")
    return ds.data[_subset(len(ds.data), limit)], []


def dataset_name(data_dir):
    """'cifar10' for the torchvision source, else the image folder's own name."""
    if is_torchvision_source(data_dir):
        return 'cifar10'
    return os.path.basename(os.path.normpath(os.path.abspath(data_dir)))


def is_torchvision_source(data_dir):
    """True when data_dir is not an image folder and is the default download location."""
    has_split = any(os.path.isdir(os.path.join(data_dir, s)) for s in ('train', 'test'))
    return not has_split and os.path.normpath(data_dir) == os.path.normpath(DEFAULT_DATA_DIR)


def _check_folder(data_dir, split):
    """Fail with one clear line if data_dir/split is not there."""
    hint = "point --data_dir at a folder holding train/ and test/ subfolders of images (e.g. --data_dir=data/cifar10)"
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data folder '{data_dir}' does not exist; {hint}")
    if not os.path.isdir(os.path.join(data_dir, split)):
        raise DatasetError(f"'{data_dir}' has no {split}/ subfolder; {hint}")


# ----------------------------------------------------------------------------------------------
# The one entry point

def _chroma(rgb, chunk=1024):
    """Mean Lab chroma sqrt(a^2 + b^2) per image [N] of uint8 RGB [N,3,H,W], computed in chunks."""
    out = torch.empty(len(rgb))
    for i in range(0, len(rgb), chunk):
        ab = rgb_uint8_to_network(rgb[i:i + chunk])[1] * AB_SCALE
        out[i:i + chunk] = ab.pow(2).sum(1).sqrt().flatten(1).mean(1)
    return out


def _cache_path(source, split, size, limit, n_files):
    """data/cache/<name>-<split>-<size>px-<limit>-<hash>.pt, keyed by source, split, size and limit."""
    key = f'v{CACHE_VERSION}|{source}|{split}|{size}|{limit}|{n_files}'
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    name = os.path.basename(os.path.normpath(source)) or 'data'
    return os.path.join(CACHE_DIR, f'{name}-{split}-{size}px-{limit or "all"}-{digest}.pt')


def load_split(data_dir, split, image_size=32, limit=0, drop_gray=False, verbose=True):
    """Load a split ('train' or 'test') as an ImageSplit, from the on-disk cache when possible.

    data_dir is an image folder with train/ and test/, or the default 'data' for torchvision CIFAR-10."""
    log = print if verbose else (lambda *a, **k: None)
    if is_torchvision_source(data_dir):
        if image_size != 32:
            raise DatasetError(f"CIFAR-10 images are 32x32 but image_size={image_size}; use --image_size=32")
        source, n_files = 'torchvision-cifar10:' + os.path.abspath(data_dir), 0
    else:
        _check_folder(data_dir, split)
        source = os.path.abspath(data_dir)
        n_files = len(list_images(os.path.join(data_dir, split))[0])
    path = _cache_path(source, split, image_size, limit, n_files)
    cached = None
    if os.path.exists(path):
        try:
            cached = torch.load(path, weights_only=True)
        except Exception:
            log(f"cache file '{path}' is unreadable; rebuilding it")
    if cached is None:
        if source.startswith('torchvision'):
            rgb, bad = _cifar_rgb(data_dir, split, limit)
        else:
            rgb, bad = _folder_rgb(os.path.join(data_dir, split), image_size, limit)
        rgb = torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).contiguous()  # [N,3,H,W] uint8
        cached = {'rgb': rgb, 'skipped': bad}
        atomic_write(path, lambda f: torch.save(cached, f))
        log(f"cached {split} split ({len(rgb)} images) at {path}")
    rgb, bad = cached['rgb'], cached['skipped']
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image file(s) in the {split} split, e.g. '{bad[0]}'",
              file=sys.stderr)
    dropped = 0
    if drop_gray:
        keep = _chroma(rgb) >= GRAY_CHROMA
        dropped = int((~keep).sum())
        if dropped:
            rgb = rgb[keep]
            log(f"dropped {dropped} grayscale image(s) from the {split} split: they carry no color signal")
        if len(rgb) == 0:
            raise DatasetError(f"every image in the {split} split of '{data_dir}' is grayscale; "
                               "training needs color images")
    return ImageSplit(rgb, dataset_name(data_dir), dropped, len(bad))
