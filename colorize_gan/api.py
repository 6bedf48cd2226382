"""Colorizing from Python: load a generator once, then colorize PIL images or numpy arrays with colorize.py's pipeline.

    from colorize_gan.api import Colorizer
    colorizer = Colorizer()                                   # the shipped photo model, on the CPU
    rgb = colorizer(Image.open('old_photo.jpg'))              # uint8 HxWx3, the photo's size and lightness
    rgb = colorizer(gray_array, saturation=1.2, hints=[{'x': 120, 'y': 80, 'color': 'navy'}])
    rgbs = colorizer([photo_a, photo_b])                      # a list in, a list out

The same input and settings give the same pixels as `python3 colorize.py` (a test checks it). Errors are exceptions:
ValueError for an input or setting that cannot be used, utils.UserError for a model file that cannot be loaded.
"""
import numpy as np
from PIL import Image

from .checkpoint import PHOTO_GENERATOR, load_generator
from .hints import make_hint
from .images import pixels
from .photo import UPSAMPLING, colorize
from .utils import resolve_device


def as_pixels(image):
    """A PIL image, or a numpy array (HxW gray, HxWx3 RGB or HxWx4 RGBA; uint8 0-255 or float 0-1), as the
    pipeline's input: what read_image gives for the same picture saved to a file. Raises ValueError otherwise."""
    if isinstance(image, Image.Image):
        image.load()
        return pixels(image)
    if not isinstance(image, np.ndarray):
        raise ValueError(f"cannot colorize a {type(image).__name__}: pass a PIL image or a numpy array")
    if image.ndim not in (2, 3) or image.ndim == 3 and image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"an image array is HxW, HxWx3 or HxWx4 with at least one pixel, not {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype == np.uint8:
        return pixels(Image.fromarray(image)) if image.ndim == 3 and image.shape[2] == 4 else image
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"an image array is uint8 (0-255) or float (0-1), not {image.dtype}")
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise ValueError("a float image array holds values in [0, 1] (and no nan or inf)")
    if image.ndim == 3:  # float colour: 8 bits are what the pipeline reads from colour files
        rgba = np.round(image * 255).astype(np.uint8)
        return pixels(Image.fromarray(rgba)) if rgba.shape[2] == 4 else rgba
    return image.astype(np.float32)


class Colorizer:
    """A loaded generator with colorize.py's settings: call it on an image (or a list of them) to get uint8 HxWx3
    RGB of the same size whose lightness is the input's."""

    def __init__(self, checkpoint='', device='cpu', saturation=1.0, size=0, upsample='bicubic'):
        """checkpoint: a run folder, checkpoint or export ('' = the shipped photo model, colorize.py's default);
        device: cpu | cuda | auto; the other settings as colorize.py's --saturation (0-10), --size (px, 0 = the
        model's own) and --upsample (bicubic | guided), each overridable per call."""
        self.device = resolve_device(device)
        self.G, self.description = load_generator(checkpoint or PHOTO_GENERATOR, self.device)
        self.defaults = {'saturation': saturation, 'size': size, 'upsample': upsample}
        self._check(**self.defaults)

    @property
    def takes_hints(self):
        """True if the model has hint input (trained with --hints=True)."""
        return bool(self.G.hints)

    @staticmethod
    def _check(saturation, size, upsample):
        if not 0 <= saturation <= 10:
            raise ValueError(f"saturation={saturation} must be between 0 and 10 (0 = gray, 1 = as predicted)")
        if not (0 <= size <= 4096 and size == int(size)):
            raise ValueError(f"size={size} must be 0 (the model's own) or a whole number of pixels up to 4096")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample={upsample!r} is not one of {', '.join(UPSAMPLING)}")

    def __call__(self, image, hints=(), **settings):
        """Colorize one image (PIL or numpy, see as_pixels) or a list of them; `hints` is a list of
        {"x", "y", "color"[, "radius"]} in the image's pixels (a model with hint input), the same for every image
        of a list; `settings` override saturation, size, upsample. Returns uint8 HxWx3 (or a list of them)."""
        if isinstance(image, (list, tuple)):
            return [self(one, hints, **settings) for one in image]
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; use saturation, size or upsample")
        options = {**self.defaults, **settings}
        self._check(**options)
        given = [make_hint(h['x'], h['y'], h['color'], h.get('radius', 0)) if isinstance(h, dict) else h
                 for h in hints]
        if given and not self.takes_hints:
            raise ValueError(f"{self.description} has no hint input (trained without colour hints); colorize without "
                             "hints, or load a model trained with --hints=True")
        return colorize(self.G, as_pixels(image), int(options['size']), self.device, options['saturation'], given,
                        options['upsample'])
