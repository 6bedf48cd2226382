"""Colorizing from Python: load a generator once, then colorize PIL images or numpy arrays with colorize.py's pipeline.

    from colorize_gan.api import Colorizer
    colorizer = Colorizer()                                   # the shipped photo model, on the CPU
    rgb = colorizer(Image.open('old_photo.jpg'))              # uint8 HxWx3, the photo's size and lightness
    rgb = colorizer(gray_array, saturation=1.2, hints=[{'x': 120, 'y': 80, 'color': 'navy'}])
    rgbs = colorizer([photo_a, photo_b])                      # a list in, a list out

The same input and settings give the same pixels as `python3 colorize.py` (a test checks it). Errors are exceptions:
ValueError for an input or setting that cannot be used, utils.UserError for a model file that cannot be loaded.
"""
import os

from .checkpoint import PHOTO_GENERATOR, load_generator
from .device import resolve_device
from .hints import HINT_SPREAD, check_hint_spread, hints_from_list
from .images import as_pixels
from .photo import UPSAMPLING, colorize
from .utils import UserError, check_colorize_settings


class Colorizer:
    """A loaded generator with colorize.py's settings: call it on an image (or a list of them) to get uint8 HxWx3
    RGB of the same size whose lightness is the input's."""

    def __init__(self, checkpoint='', device='cpu', saturation=1.0, size=0, upsample='bicubic',
                 hint_spread=HINT_SPREAD):
        """checkpoint: a run folder, checkpoint or export ('' = the shipped photo model, colorize.py's default);
        device: cpu | cuda | auto; the other settings as colorize.py's --saturation (0-10), --size (px, 0 = the
        model's own), --upsample (bicubic | guided) and --hint_spread (0 or 0.01-4 x the short side), each
        overridable per call."""
        checkpoint = '' if checkpoint is None else checkpoint  # None, as '', is the shipped photo model
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise ValueError(f"checkpoint={checkpoint!r} must be a path (str or os.PathLike) to a run folder, "
                             "checkpoint or export, or '' (None) for the shipped photo model")
        try:
            self.device = resolve_device(str(device))
        except UserError:
            raise ValueError(f"device={device!r} is not available here; use 'cpu', or 'cuda' on a machine with an "
                             "NVIDIA GPU ('auto' picks)") from None
        self.G, self.description = load_generator(os.fspath(checkpoint) or PHOTO_GENERATOR, self.device)
        self.defaults = {'saturation': saturation, 'size': size, 'upsample': upsample, 'hint_spread': hint_spread}
        self._check(**self.defaults)

    def __repr__(self):
        return f"Colorizer({self.description}, device={self.device})"

    @property
    def takes_hints(self):
        """True if the model has hint input (trained with --hints=True)."""
        return bool(self.G.hints)

    @staticmethod
    def _check(saturation, size, upsample, hint_spread):
        check_colorize_settings(size, saturation, upsample, UPSAMPLING)
        check_hint_spread(hint_spread)

    def __call__(self, image, *, hints=(), **settings):
        """Colorize one image (PIL or numpy, see images.as_pixels) or a list of them; `hints` is a list of
        {"x", "y", "color"[, "radius"]} in the image's pixels (colour as hex, a CSS name or an (r, g, b) triple; a
        model with hint input), the same for every image of a list; `settings` (keywords) override saturation,
        size, upsample, hint_spread. Returns uint8 HxWx3 (or a list of them)."""
        if isinstance(image, (list, tuple)):
            if any(isinstance(one, (list, tuple)) for one in image):
                raise ValueError("pass an image or a flat list of images (PIL images or numpy arrays), not nested "
                                 "lists; a list of numbers is no image: make it a numpy array")
            return [self(one, hints=hints, **settings) for one in image]
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; use saturation, size, upsample or "
                             "hint_spread")
        options = {**self.defaults, **settings}
        self._check(**options)
        given = hints_from_list(hints)
        if given and not self.takes_hints:
            raise ValueError(f"{self.description} has no hint input (trained without colour hints); colorize without "
                             "hints, or load a model trained with --hints=True")
        return colorize(self.G, as_pixels(image), int(options['size']), self.device, options['saturation'], given,
                        options['upsample'], options['hint_spread'])
