"""Where the shipped files are, from a clone or from an installed package (`pip install .`): the trained models
(the clone's pretrained/, installed as colorize_gan/pretrained/), the demo's example photos (images/examples/,
installed as colorize_gan/examples/) and the user scripts (the clone's top level, installed as
colorize_gan/scripts/). An editable install (pip install -e .) uses the clone's. Torch-free."""
import os

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_CLONE = os.path.dirname(_PACKAGE)


def _shipped(installed, in_clone):
    """The installed package's folder when this is an installed package, else the clone's (pyproject.toml maps the
    clone's folders into the package, so exactly one of them exists)."""
    here = os.path.join(_PACKAGE, installed)
    return here if os.path.isdir(here) else os.path.normpath(os.path.join(_CLONE, in_clone))


PRETRAINED_DIR = _shipped('pretrained', 'pretrained')
EXAMPLES_DIR = _shipped('examples', os.path.join('images', 'examples'))


def script_path(name):
    """The path of the user script `name` (e.g. 'colorize' for colorize.py), installed or the clone's."""
    return os.path.join(_shipped('scripts', '.'), f'{name}.py')
