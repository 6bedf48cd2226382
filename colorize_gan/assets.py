"""Where the shipped files are, from a clone or from an installed package (`pip install .`): the trained models
(the clone's pretrained/, installed as colorize_gan/pretrained/) and the demo's example photos (images/examples/,
installed as colorize_gan/examples/). Torch-free."""
import os

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_CLONE = os.path.dirname(_PACKAGE)


def _shipped(installed, in_clone):
    """The installed package's folder when this is an installed package, else the clone's (pyproject.toml maps the
    clone's folders into the package, so exactly one of them exists)."""
    here = os.path.join(_PACKAGE, installed)
    return here if os.path.isdir(here) else os.path.join(_CLONE, in_clone)


PRETRAINED_DIR = _shipped('pretrained', 'pretrained')
EXAMPLES_DIR = _shipped('examples', os.path.join('images', 'examples'))
