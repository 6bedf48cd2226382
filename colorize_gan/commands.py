"""The console commands that `pip install .` puts on the PATH (pyproject.toml's [project.scripts]). Each runs the
clone's script of that name, which the package carries as it is (colorize_gan.scripts), so `colorize ...` and
`python3 colorize.py ...` are one program with one --help."""
import runpy

from .assets import script_path


def _run(script):
    """Run the user script `script` (assets.script_path) as __main__ with this process's arguments (its exit status is
    ours)."""
    runpy.run_path(script_path(script), run_name='__main__')


def colorize():
    """`colorize PHOTO|VIDEO|FOLDER|GLOB [...] --out_dir=DIR`: colorize.py."""
    _run('colorize')


def demo():
    """`colorize-demo [--port=7860]`: demo.py, the web demo (needs the [demo] extra)."""
    _run('demo')
