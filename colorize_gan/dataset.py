"""Datasets as memory-mapped uint8 RGB caches: CIFAR-10 through torchvision, or any image folder with train/ and test/.

Each split is decoded once, in parallel, into data/cache/<name>-<split>-<size>px-<key>.u8 ([N,3,H,W] uint8, 3 bytes
a pixel) with a JSON sidecar; training reads it back memory-mapped, so the page cache, not the process, holds it.
Batches are gathered by index and turned into Lab on the training device.
"""
import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .color import AB_SCALE, rgb_uint8_to_network
from .images import IMAGE_EXTENSIONS, list_images, read_image
from .utils import UserError, atomic_write

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the clone
DEFAULT_DATA_DIR = 'data'  # the default: torchvision's CIFAR-10, downloaded here
CACHE_DIR = os.environ.get('COLORIZE_CACHE_DIR', os.path.join(REPO, 'data', 'cache'))
CACHE_VERSION = 3
GRAY_CHROMA = 1.0  # images whose mean Lab chroma is below this carry no color signal
PARALLEL_FROM = 512  # decode in worker processes from this many images on (below it, start-up costs more)


class DatasetError(UserError):
    """A missing or empty dataset: the message says what was looked for and how to fix it."""


@dataclass
class ImageSplit:
    """One split: `pixels`, uint8 RGB [M,3,H,W] (memory-mapped, or on a device), and the `rows` of it in use [N]."""
    pixels: torch.Tensor
    rows: torch.Tensor
    name: str           # 'cifar10' for torchvision, else the folder's name
    dropped_gray: int   # colorless images removed
    skipped: int        # unreadable files skipped
    fingerprint: str = ''  # a digest of the source's file names and sizes: what a resume checks it trains on

    def __len__(self):
        return len(self.rows)

    @property
    def device(self):
        return self.pixels.device

    def nbytes(self):
        """Bytes of the images in use."""
        return len(self) * self.pixels[0].numel()

    def subset(self, idx):
        """The same split restricted to its rows idx (a LongTensor): no pixels are copied."""
        return ImageSplit(self.pixels, self.rows[idx.to(self.rows.device)], self.name, self.dropped_gray, self.skipped,
                          self.fingerprint)

    def images(self, idx):
        """uint8 RGB [B,3,H,W] of rows idx, gathered where the pixels live."""
        return self.pixels[self.rows[idx.to(self.rows.device)]]

    def to(self, device):
        """The rows in use copied to `device` as one uint8 tensor (a CPU split stays memory-mapped)."""
        device = torch.device(device)
        if device.type == 'cpu' and self.device.type == 'cpu':
            return self
        pixels = self.images(torch.arange(len(self))).to(device)
        return ImageSplit(pixels, torch.arange(len(self), device=device), self.name, self.dropped_gray, self.skipped,
                          self.fingerprint)

    def batch(self, idx, flip=None, memory_format=torch.contiguous_format, device=None):
        """L [B,1,H,W] and ab [B,2,H,W] of rows idx on `device` (default: where the pixels are); rows where the bool
        mask `flip` [B] is set are mirrored left-right."""
        return to_network(self.images(idx).to(device or self.device), flip, memory_format)


def to_network(rgb, flip=None, memory_format=torch.contiguous_format):
    """uint8 RGB [B,3,H,W] -> network-scale (L, ab), mirrored left-right where the bool mask `flip` [B] is set."""
    if flip is not None:
        rgb = torch.where(flip.to(rgb.device).view(-1, 1, 1, 1), rgb.flip(3), rgb)
    L, ab = rgb_uint8_to_network(rgb)
    return L.contiguous(memory_format=memory_format), ab.contiguous(memory_format=memory_format)


def batches(split, perm, flips, batch_size, start, device, memory_format, rank=0, world=1):
    """(L, ab) of this process's share of each global batch `perm[i*batch_size:(i+1)*batch_size]`, from batch `start`
    on, mirrored where the bool mask `flips` [N] (None: never) is set. The next batch is gathered (into pinned memory
    for CUDA) and copied asynchronously while the current one trains, so a split too large for the GPU still feeds
    it."""
    local = batch_size // world
    steps = len(perm) // batch_size
    pin = device.type == 'cuda' and split.device.type == 'cpu'

    def fetch(i):
        idx = perm[i * batch_size + rank * local:i * batch_size + (rank + 1) * local]
        rgb = split.images(idx)
        if pin:
            rgb = rgb.pin_memory()
        return rgb.to(device, non_blocking=True), None if flips is None else flips[idx]

    upcoming = fetch(start) if start < steps else None
    for i in range(start, steps):
        rgb, flip = upcoming
        yield to_network(rgb, flip, memory_format)
        # resumed after the consumer launched step i: gathering i+1 now overlaps that step's GPU work
        upcoming = fetch(i + 1) if i + 1 < steps else None


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


def _load_square_args(args):
    """_load_square for a worker process: one (path, size) tuple in."""
    return _load_square(*args)


def holdout_split(split, n_holdout, limit=0):
    """Split an ImageSplit into (rest, held out): n_holdout fixed random rows set aside for validation (at most a third
    of the split, at least one), and of the rest a fixed random `limit` rows (all if 0). The same images are held out
    on every run: resume never trains on them. Raises DatasetError for a split of fewer than 2 images."""
    if len(split) < 2:
        raise DatasetError(f"the training split has {len(split)} usable image(s); training needs at least 2 (one of "
                           "them held out for validation); add images to the train/ folder")
    n_holdout = max(1, min(n_holdout, len(split) // 3))  # a small folder still trains on most of its images
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

def _cifar_rgb(root, split, limit):
    """uint8 RGB [N,32,32,3] of torchvision's CIFAR-10, downloaded into root if needed."""
    try:
        from torchvision.datasets import CIFAR10  # torchvision only when this source is used
        ds = CIFAR10(root, train=(split == 'train'), download=True)
    except Exception as e:
        raise DatasetError(f"could not download CIFAR-10 into '{root}' ({type(e).__name__}: {str(e)[:100]}); "
                           "with no internet, point --data_dir at an image folder with train/ and test/ "
                           "(e.g. --data_dir=data/cifar10; the README says how to make one)")
    return ds.data[_subset(len(ds.data), limit)]


def dataset_name(data_dir):
    """'cifar10' for the torchvision source, else the image folder's own name."""
    if is_torchvision_source(data_dir):
        return 'cifar10'
    return os.path.basename(os.path.normpath(os.path.abspath(data_dir)))


def is_torchvision_source(data_dir):
    """True when data_dir is not an image folder and is the default download location."""
    has_split = any(os.path.isdir(os.path.join(data_dir, s)) for s in ('train', 'test'))
    return not has_split and os.path.normpath(data_dir) == os.path.normpath(DEFAULT_DATA_DIR)


def split_folders(data_dir):
    """The folders whose images a script reads from `data_dir` (its train/ and test/; none for torchvision's
    CIFAR-10): what outputs must stay out of (utils.check_outside)."""
    return [] if is_torchvision_source(data_dir) else [os.path.join(data_dir, split) for split in ('train', 'test')]


def check_data_dir(data_dir, split='train'):
    """DatasetError (one line naming the fix) unless data_dir is torchvision's CIFAR-10 location or holds `split`/:
    what a script checks before it takes a run folder, without reading any image."""
    if not is_torchvision_source(data_dir):
        _check_folder(data_dir, split)


def _check_folder(data_dir, split):
    """Fail with one clear line if data_dir/split is not there."""
    hint = "point --data_dir at a folder holding train/ and test/ subfolders of images (e.g. --data_dir=data/cifar10)"
    if os.path.isfile(data_dir):
        raise DatasetError(f"'{data_dir}' is a file, not a data folder; {hint}")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data folder '{data_dir}' does not exist; {hint}")
    if not os.path.isdir(os.path.join(data_dir, split)):
        raise DatasetError(f"'{data_dir}' has no {split}/ subfolder; {hint}")


# ----------------------------------------------------------------------------------------------
# The cache: built once per (source, split, size, limit, files), then memory-mapped

def _size_and_mtime(path):
    """(bytes, modification time in ns) of a file; (-1, 0) for one that cannot be read (a broken link): it is then
    skipped as unreadable when the pixels are read, not a crash here."""
    try:
        st = os.stat(path)
    except OSError:
        return -1, 0
    return st.st_size, st.st_mtime_ns


def _cache_key(source, split, size, limit, paths):
    """A digest that changes with the source, split, size, limit and every file's name, size and modification time."""
    h = hashlib.sha1(f'v{CACHE_VERSION}|{source}|{split}|{size}|{limit}'.encode())
    for p in paths:
        st_size, st_mtime_ns = _size_and_mtime(p)
        h.update(f'|{os.path.relpath(p, source)}|{st_size}|{st_mtime_ns}'.encode())
    return h.hexdigest()[:12]


def _chroma(pixels, chunk=128):
    """Mean Lab chroma sqrt(a^2 + b^2) per image [N] of uint8 RGB [N,3,H,W], read in chunks."""
    out = torch.empty(len(pixels))
    for i in range(0, len(pixels), chunk):
        ab = rgb_uint8_to_network(pixels[i:i + chunk])[1] * AB_SCALE
        out[i:i + chunk] = ab.pow(2).sum(1).sqrt().flatten(1).mean(1)
    return out


def _build_cache(path, size, paths=None, rgb=None, log=print):
    """Write the cache file: decoded `paths` (in worker processes) or the array `rgb` [N,H,W,3], streamed into a
    preallocated temp file, renamed into place only when whole. Returns the unreadable paths."""
    n = len(paths) if paths is not None else len(rgb)
    image_bytes = 3 * size * size
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    try:
        out = np.memmap(tmp, np.uint8, 'w+', shape=(max(n, 1), 3, size, size))
        good, bad = 0, []
        if rgb is not None:
            for i in range(0, n, 4096):
                chunk = rgb[i:i + 4096].transpose(0, 3, 1, 2)
                out[good:good + len(chunk)] = chunk
                good += len(chunk)
        else:
            workers = min(os.cpu_count() or 1, 8) if n >= PARALLEL_FROM else 0
            pool = ProcessPoolExecutor(workers) if workers else None

            def decoded():
                """Decoded images in order, a window at a time: never more than a window waits in memory."""
                for start in range(0, n, 4096):
                    jobs = [(p, size) for p in paths[start:start + 4096]]
                    yield from pool.map(_load_square_args, jobs, chunksize=64) if pool else map(_load_square_args, jobs)
            for p, image in tqdm(zip(paths, decoded()), total=n, desc=f'decoding {os.path.basename(path)}',
                                 disable=None, mininterval=2, leave=False):
                if image is None:
                    bad.append(p)
                    continue
                out[good] = image.transpose(2, 0, 1)
                good += 1
            if pool:
                pool.shutdown()
        out.flush()
        del out
        os.truncate(tmp, good * image_bytes)
        chroma = _chroma(torch.from_file(tmp, size=good * image_bytes, dtype=torch.uint8).view(good, 3, size, size)) \
            if good else torch.empty(0)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    meta = {'n': good, 'size': size, 'skipped': bad, 'chroma': chroma.tolist()}
    # the sidecar is written last: a cache without it is incomplete and gets rebuilt
    atomic_write(path + '.json', lambda f: f.write(json.dumps(meta)), mode='w')
    log(f"cached {good} images at {path} ({good * image_bytes / 1e6:.0f} MB)")
    return meta


def _open_cache(path):
    """(pixels [N,3,H,W] uint8 memory-mapped, sidecar dict), or None when the cache is missing or incomplete."""
    try:
        meta = json.load(open(path + '.json'))
        n, size = meta['n'], meta['size']
        if os.path.getsize(path) != n * 3 * size * size:
            return None
    except (OSError, ValueError, KeyError):
        return None
    if n == 0:
        return torch.empty(0, 3, size, size, dtype=torch.uint8), meta
    pixels = torch.from_file(path, shared=False, size=n * 3 * size * size, dtype=torch.uint8)
    return pixels.view(n, 3, size, size), meta


def load_split(data_dir, split, image_size=32, limit=0, drop_gray=False, verbose=True):
    """Load a split ('train' or 'test') as an ImageSplit, building its cache the first time.

    data_dir is an image folder with train/ and test/, or the default 'data' for torchvision CIFAR-10."""
    log = print if verbose else (lambda *a, **k: None)
    if is_torchvision_source(data_dir):
        if image_size != 32:
            raise DatasetError(f"CIFAR-10 images are 32x32 but image_size={image_size}; use --image_size=32")
        source, paths = 'torchvision-cifar10:' + os.path.abspath(data_dir), None
        key = _cache_key(source, split, image_size, limit, [])
    else:
        _check_folder(data_dir, split)
        source = os.path.abspath(data_dir)
        paths, _ = list_images(os.path.join(data_dir, split))
        if not paths:
            raise DatasetError(f"no images found under '{os.path.join(data_dir, split)}' (looked for "
                               f"{', '.join(IMAGE_EXTENSIONS)} at any depth); put images there or point --data_dir "
                               "at a folder with train/ and test/ image folders")
        paths = [paths[i] for i in _subset(len(paths), limit)]
        key = _cache_key(source, split, image_size, limit, paths)
    name = dataset_name(data_dir)
    path = os.path.join(CACHE_DIR, f'{name}-{split}-{image_size}px-{limit or "all"}-{key}.u8')
    opened = _open_cache(path)
    if opened is None:
        if paths is None:
            _build_cache(path, image_size, rgb=_cifar_rgb(data_dir, split, limit), log=log)
        else:
            _build_cache(path, image_size, paths=paths, log=log)
        opened = _open_cache(path)
    pixels, meta = opened
    bad = meta['skipped']
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image file(s) in the {split} split, e.g. '{bad[0]}'",
              file=sys.stderr)
    if len(pixels) == 0:
        raise DatasetError(f"none of the {len(bad)} image files under '{os.path.join(data_dir, split)}' could be "
                           "read; point --data_dir at a folder of valid images")
    rows = torch.arange(len(pixels))
    dropped = 0
    if drop_gray:
        keep = torch.tensor(meta['chroma']) >= GRAY_CHROMA
        dropped = int((~keep).sum())
        if dropped:
            rows = rows[keep]
            log(f"dropped {dropped} grayscale image(s) from the {split} split: they carry no color signal")
        if len(rows) == 0:
            raise DatasetError(f"every image in the {split} split of '{data_dir}' is grayscale; "
                               "training needs color images")
    return ImageSplit(pixels, rows, name, dropped, len(bad), _fingerprint(paths, source, split, image_size, limit))


def _fingerprint(paths, source, split, image_size, limit):
    """16 hex digits of the SHA-1 of a split's file names (relative to `source`) and sizes (paths None: torchvision's
    CIFAR-10): names and sizes, not dates, so a copied or moved folder is the same data."""
    digest = hashlib.sha1(f'{split}|{image_size}|{limit}'.encode())
    for p in paths or ['torchvision-cifar10']:
        digest.update(f'|{os.path.relpath(p, source) if paths else p}|{_size_and_mtime(p)[0] if paths else 0}'.encode())
    return digest.hexdigest()[:16]


def split_fingerprint(data_dir, split, image_size=32, limit=0):
    """The fingerprint load_split gives a split (ImageSplit.fingerprint), from its file listing alone: no image is
    decoded, so a resume can refuse another folder's images at once. Raises DatasetError as load_split does for a
    missing folder."""
    if is_torchvision_source(data_dir):
        return _fingerprint(None, None, split, image_size, limit)
    _check_folder(data_dir, split)
    paths, _ = list_images(os.path.join(data_dir, split))
    paths = [paths[i] for i in _subset(len(paths), limit)]
    return _fingerprint(paths, os.path.abspath(data_dir), split, image_size, limit)
