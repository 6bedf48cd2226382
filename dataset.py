"""Datasets as in-memory Lab tensors: CIFAR-10 through torchvision, or any image folder with train/ and test/."""
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from photo import read_image
from utils import atomic_write, normalize_lab, rgb_to_lab

REPO = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_DIR = 'data'  # the default: torchvision's CIFAR-10, downloaded here
CACHE_DIR = os.environ.get('COLORIZE_CACHE_DIR', os.path.join(REPO, 'data', 'cache'))
CACHE_VERSION = 1
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
GRAY_CHROMA = 1.0  # images whose mean Lab chroma is below this carry no colour signal


class DatasetError(SystemExit):
    """A missing or empty dataset: exits with one line that says what was looked for and how to fix it."""

    def __init__(self, message):
        super().__init__('error: ' + message)


@dataclass
class LabSplit:
    """One split, held in memory: L [N,1,H,W] and ab [N,2,H,W] at network scale, rgb [N,3,H,W] uint8."""
    L: torch.Tensor
    ab: torch.Tensor
    rgb: torch.Tensor
    name: str           # 'cifar10' for torchvision, else the folder's name
    dropped_gray: int   # colourless images removed
    skipped: int        # unreadable files skipped

    def __len__(self):
        return self.L.shape[0]

    def to(self, device):
        """Move all tensors to `device`."""
        return LabSplit(self.L.to(device), self.ab.to(device), self.rgb.to(device), self.name,
                        self.dropped_gray, self.skipped)

    def subset(self, idx):
        """A LabSplit of rows idx (a LongTensor), same name and counts."""
        return LabSplit(self.L[idx], self.ab[idx], self.rgb[idx], self.name, self.dropped_gray, self.skipped)

    def batch(self, idx, flip=None, memory_format=torch.contiguous_format):
        """L [B,1,H,W] and ab [B,2,H,W] of rows idx; rows where the bool mask `flip` [B] is set are mirrored left-right."""
        L, ab = self.L[idx], self.ab[idx]
        if flip is not None:
            f = flip.view(-1, 1, 1, 1)
            L, ab = torch.where(f, L.flip(3), L), torch.where(f, ab.flip(3), ab)
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
    """Split a LabSplit into (rest, held out): n_holdout fixed random rows set aside for validation, and of the rest
    a fixed random `limit` rows (all if 0). The same images are held out on every run, so resume never trains on them."""
    n_holdout = min(n_holdout, len(split) - 1)  # leave at least one image to train on
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(split)))
    held, rest = perm[:n_holdout], perm[n_holdout:]
    if limit:
        rest = rest[:limit]
    return split.subset(rest.sort().values), split.subset(held.sort().values)


def load_train_val(data_dir, image_size=32, val_size=1000, limit=0, verbose=True):
    """The training split without its colourless images, cut into (train, val) by holdout_split: train.py's data,
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
        raise DatasetError(f"no images found under '{split_dir}' (looked for {', '.join(IMAGE_EXTENSIONS)} at any depth); "
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
    hint = "point --data_dir at a folder holding train/ and test/ subfolders of images (e.g. --data_dir=../shared/data/cifar10)"
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data folder '{data_dir}' does not exist; {hint}")
    if not os.path.isdir(os.path.join(data_dir, split)):
        raise DatasetError(f"'{data_dir}' has no {split}/ subfolder; {hint}")


# ----------------------------------------------------------------------------------------------
# The one entry point

def _to_lab_tensors(rgb_uint8, chunk=256):
    """uint8 [N,H,W,3] -> (L [N,1,H,W], ab [N,2,H,W]) at network scale and rgb [N,3,H,W] uint8, converted in chunks."""
    rgb = torch.from_numpy(np.ascontiguousarray(rgb_uint8)).permute(0, 3, 1, 2).contiguous()
    n, _, h, w = rgb.shape
    L, ab = torch.empty(n, 1, h, w), torch.empty(n, 2, h, w)
    for i in range(0, n, chunk):
        L[i:i + chunk], ab[i:i + chunk] = normalize_lab(rgb_to_lab(rgb[i:i + chunk].float() / 255))
    return L, ab, rgb


def _cache_path(source, split, size, limit, n_files):
    """data/cache/<name>-<split>-<size>px-<limit>-<hash>.pt, keyed by source, split, size and limit."""
    key = f'v{CACHE_VERSION}|{source}|{split}|{size}|{limit}|{n_files}'
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    name = os.path.basename(os.path.normpath(source)) or 'data'
    return os.path.join(CACHE_DIR, f'{name}-{split}-{size}px-{limit or "all"}-{digest}.pt')


def load_split(data_dir, split, image_size=32, limit=0, drop_gray=False, verbose=True):
    """Load a split ('train' or 'test') as a LabSplit, from the on-disk cache when possible.

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
        L, ab, rgb = _to_lab_tensors(rgb)
        cached = {'L': L, 'ab': ab, 'rgb': rgb, 'skipped': bad}
        atomic_write(path, lambda f: torch.save(cached, f))
        log(f"cached {split} split ({len(L)} images) at {path}")
    L, ab, rgb, bad = cached['L'], cached['ab'], cached['rgb'], cached['skipped']
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image file(s) in the {split} split, e.g. '{bad[0]}'", file=sys.stderr)
    dropped = 0
    if drop_gray:
        chroma = (ab * 110).pow(2).sum(1).sqrt().flatten(1).mean(1)  # [N], Lab units
        keep = chroma >= GRAY_CHROMA
        dropped = int((~keep).sum())
        if dropped:
            L, ab, rgb = L[keep], ab[keep], rgb[keep]
            log(f"dropped {dropped} grayscale image(s) from the {split} split: they carry no colour signal")
        if len(L) == 0:
            raise DatasetError(f"every image in the {split} split of '{data_dir}' is grayscale; training needs colour images")
    return LabSplit(L, ab, rgb, dataset_name(data_dir), dropped, len(bad))
