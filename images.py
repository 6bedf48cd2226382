"""Reading pictures: finding the image files in a folder and decoding any of them into a numpy array."""
import os

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


def read_image(path):
    """Decode an image file with EXIF orientation applied: HxW (grayscale) or HxWx3 (colour) numpy array.

    8-bit images come back as uint8; 16-bit and float images as float32 in [0,1]. Palette images are
    expanded and transparent ones composited over white. Raises OSError/ValueError if the file is unreadable."""
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith('I;16') or im.mode in ('I', 'F'):
            arr = np.asarray(im, dtype=np.float32)
            scale = 65535.0 if im.mode.startswith('I;16') or arr.max() > 255 else (1.0 if im.mode == 'F' else 255.0)
            return (arr / scale).clip(0, 1)
        if im.mode == 'P' and 'transparency' not in im.info:
            im = im.convert('RGB')
        elif im.mode in ('P', 'PA', 'LA', 'RGBA') or 'transparency' in im.info:
            rgba = np.asarray(im.convert('RGBA'), dtype=np.float32) / 255
            alpha = rgba[..., 3:]
            return np.round((rgba[..., :3] * alpha + (1 - alpha)) * 255).astype(np.uint8)
        if im.mode in ('L', '1'):
            return np.asarray(im.convert('L'))
        return np.asarray(im.convert('RGB'))


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
