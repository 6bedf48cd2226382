"""The installs of the README: the package (pip install: the `colorize` command, the API, the shipped weights as
package data) and the light install (a fresh venv without PyTorch), each in a virtual environment of its own."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from colorize_gan import video
from colorize_gan.utils import UserError
from conftest import REPO, run

# what a clone holds that the package is built from (pyproject.toml): the library, the scripts, pretrained/, images/
SOURCE_IGNORED = shutil.ignore_patterns('.git', 'data', 'runs', 'tests', 'build', '*.egg-info', '__pycache__',
                                        '.venv*', 'colorized', 'docs', 'tools', '.pytest_cache', '.ruff_cache')


# run in the venv of the installed wheel: the `colorize` command as bin/colorize runs it (its entry point) on the
# photo in the working folder, the API, and the demo command's --help
INSTALLED_COMMANDS = '''
import importlib.metadata as md
import sys

import numpy as np

import colorize_gan
from colorize_gan.api import Colorizer

command = {e.name: e for e in md.entry_points(group='console_scripts')}
sys.argv = ['colorize', 'old photo.png', '--out_dir=out']
try:
    command['colorize'].load()()
except SystemExit as e:
    assert not e.code, e.code
rgb = Colorizer()(np.full((40, 60), 128, np.uint8))
print(colorize_gan.__file__, rgb.shape, rgb.dtype)
sys.argv = ['colorize-demo', '--help']
command['colorize-demo'].load()()
'''


def _photo(path):
    """A gray 150x100 photo (scikit-image's coffee, a crop) written to `path`."""
    from skimage import data
    gray = np.round(data.coffee()[100:200, 200:350] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    Image.fromarray(gray).save(path)
    return gray


def _venv(folder, system_site_packages):
    """A new virtual environment in `folder`, without pip (this interpreter's pip installs into it with --python:
    seconds faster, and no older pip or setuptools of its own shadows the ones the build needs); its python's path.
    With system_site_packages it sees this interpreter's packages (PyTorch included: a fresh 5 GB install per test
    run is not affordable)."""
    options = ['--system-site-packages'] if system_site_packages else []
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', *options, str(folder)], check=True, timeout=120)
    return str(folder / 'bin' / 'python')


def _pip_install(python, *args):
    """This interpreter's pip installing into the venv of `python`; the CompletedProcess. --no-compile: modules are
    byte-compiled when first imported instead of all at install (seconds of CPU a test)."""
    return subprocess.run([sys.executable, '-m', 'pip', '--python', python, 'install', '-q', '--no-compile', *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # builds a wheel and installs it into a new venv
def test_pip_install_gives_the_colorize_command_the_api_and_the_weights(tmp_path):
    source = tmp_path / 'clone'
    shutil.copytree(REPO, source, ignore=SOURCE_IGNORED)  # the build writes build/ beside its source: not in REPO
    python = _venv(tmp_path / 'venv', system_site_packages=True)
    pip = _pip_install(python, '--no-index', '--no-build-isolation', str(source))  # `pip install .`: wheel, install
    assert pip.returncode == 0, pip.stderr
    work = tmp_path / 'elsewhere'  # not the clone: what runs is the installed package
    work.mkdir()
    _photo(work / 'old photo.png')
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))  # this process's threads: the same sums
    env.pop('PYTHONPATH', None)
    # the `colorize` command (what pip's bin/colorize calls: its console-script entry point), the API and the demo's
    # command, in one process of the venv: an interpreter start-up with PyTorch each would cost seconds
    for command in ('colorize', 'colorize-demo'):
        assert 'from colorize_gan.commands import' in (tmp_path / 'venv' / 'bin' / command).read_text()
    proc = subprocess.run([python, '-c', INSTALLED_COMMANDS], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    model_line = next(line for line in proc.stdout.splitlines() if line.startswith('model: '))
    assert os.path.join('site-packages', 'colorize_gan', 'pretrained', 'photo_generator.safetensors') in model_line
    installed = np.asarray(Image.open(work / 'out' / 'old photo.png'))
    run('colorize.py', work / 'old photo.png', f'--out_dir={tmp_path / "from_clone"}')
    assert np.array_equal(installed, np.asarray(Image.open(tmp_path / 'from_clone' / 'old photo.png')))
    assert 'site-packages' in proc.stdout and '(40, 60, 3) uint8' in proc.stdout  # the API, installed
    assert '--max_video_seconds' in proc.stdout  # the demo's --help, run by its console script's entry point
    assert (tmp_path / 'venv' / 'bin' / 'colorize-demo').exists()

    # an editable install (pip install -e .), as developers make one: the commands run the clone's scripts with the
    # clone's models (checked without a colorize run: the installed one above already ran these same scripts)
    python = _venv(tmp_path / 'venv_editable', system_site_packages=True)
    pip = _pip_install(python, '--no-index', '--no-deps', '--no-build-isolation', '-e', str(source))
    assert pip.returncode == 0, pip.stderr
    code = ("from colorize_gan import assets, commands; import importlib.metadata as md; "
            "command, = [e for e in md.entry_points(group='console_scripts') if e.name == 'colorize']; "
            "print(command.load() is commands.colorize, assets.script_path('colorize'), assets.PRETRAINED_DIR)")
    proc = subprocess.run([python, '-c', code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ['True', str(source / 'colorize.py'), str(source / 'pretrained')]
    assert (tmp_path / 'venv_editable' / 'bin' / 'colorize').exists()


@pytest.mark.slow  # a new venv, and onnxruntime, numpy and Pillow from the package index
def test_the_light_install_colorizes_without_torch(tmp_path):
    pytest.importorskip('onnx')
    from colorize_gan import photo
    from colorize_gan.checkpoint import PHOTO_GENERATOR, load_generator
    from colorize_gan.onnx_export import export_onnx
    python = _venv(tmp_path / 'venv', system_site_packages=False)  # no pip of its own: this one installs into it
    proc = _pip_install(python, '-r', os.path.join(REPO, 'requirements-light.txt'))
    if proc.returncode != 0 and ('Could not find a version' in proc.stderr or 'NewConnectionError' in proc.stderr):
        pytest.skip(f"no package index reachable for requirements-light.txt: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    G = load_generator(PHOTO_GENERATOR)[0]
    export_onnx(G, tmp_path / 'photo.onnx')
    gray = _photo(tmp_path / 'gray.png')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')  # the clone's package, as the README runs it
    has_torch = subprocess.run([python, '-c', 'import torch'], env=env, capture_output=True, timeout=60)
    assert has_torch.returncode != 0  # the light venv really has no PyTorch
    proc = subprocess.run([python, '-m', 'colorize_gan.light', str(tmp_path / 'gray.png'),
                           f"--model={tmp_path / 'photo.onnx'}", f"--out_dir={tmp_path / 'out'}"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = np.asarray(Image.open(tmp_path / 'out' / 'gray.png')).astype(int)
    expected = photo.colorize(G, gray).astype(int)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1
    assert np.abs(got - got.mean(2, keepdims=True)).mean() > 1  # colorized, not gray


def test_videos_without_pyav_say_which_install_adds_it(monkeypatch, tmp_path):
    monkeypatch.setattr(video, 'av', None)  # a pip install without the [video] extra
    with pytest.raises(UserError, match=r"colorize-gan\[video\]"):
        video.probe(str(tmp_path / 'clip.mp4'))
    with pytest.raises(UserError, match=r"colorize-gan\[video\]"):
        video.recorded_source(str(tmp_path / 'clip.mp4'))


def test_the_onnx_backend_without_onnxruntime_names_the_install_that_adds_it(monkeypatch, tmp_path):
    from colorize_gan import light
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # a base install: no onnxruntime
    with pytest.raises(UserError, match=r"colorize-gan\[onnx\]"):
        light.load_generator(str(tmp_path / 'g.onnx'))


def test_version_and_the_scripts_of_a_clone():
    from colorize_gan import __version__, assets
    assert run('colorize.py', '--version').stdout.strip() == f'colorize-gan {__version__}'
    assert assets.script_path('colorize') == os.path.join(REPO, 'colorize.py')  # a clone: its own top level
    assert assets.PRETRAINED_DIR == os.path.join(REPO, 'pretrained')
