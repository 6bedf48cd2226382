"""Shared fixtures: tiny generated image folders, and helpers that run the scripts in this process or in a new one."""
import gc
import io
import os
import runpy
import signal
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from PIL import Image

from colorize_gan.utils import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# pytest.ini runs the tests in one worker process per core (pytest-xdist): each worker, and each script it starts,
# then computes on one thread, so the workers do not fight over the cores
WORKER_THREADS = '1' if os.environ.get('PYTEST_XDIST_WORKER') else '2'
if os.environ.get('PYTEST_XDIST_WORKER'):
    import torch
    torch.set_num_threads(1)
    os.environ['OMP_NUM_THREADS'] = '1'  # and every process a test starts


def make_images(folder, n, size=(40, 36), seed=0, gray=False):
    """Write n smooth random colour (or gray) PNGs of `size` (w, h) into folder."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    for i in range(n):
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        img = c0 * (1 - xx[..., None]) + c1 * yy[..., None] + rng.normal(0, 8, (h, w, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        if gray:
            img = np.repeat(img.mean(2, keepdims=True).astype(np.uint8), 3, 2)
        Image.fromarray(img).save(os.path.join(folder, f'{i:03d}.png'))


@pytest.fixture
def tiny_data(tmp_path):
    """An image folder with train/ (two classes, 48 images) and test/ (24 images)."""
    root = tmp_path / 'tiny'
    make_images(root / 'train' / 'cat', 24, seed=1)
    make_images(root / 'train' / 'dog', 24, seed=2, size=(33, 50))
    make_images(root / 'test' / 'cat', 24, seed=3)
    return root


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Keep dataset caches out of the repository's data/ folder."""
    path = tmp_path / 'cache'
    monkeypatch.setenv('COLORIZE_CACHE_DIR', str(path))
    from colorize_gan import dataset
    monkeypatch.setattr(dataset, 'CACHE_DIR', str(path))
    return path


def run(script, *args, check=True, cwd=None):
    """Run a top-level script in this process as `python3 script args` would (no interpreter start-up);
    returns a CompletedProcess with its exit status and text output."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    argv, old_cwd = sys.argv, os.getcwd()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    sys.argv = [script, *map(str, args)]
    try:
        if cwd:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                runpy.run_path(os.path.join(REPO, script), run_name='__main__')
            except SystemExit as e:
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except UserError as e:  # what the scripts' excepthook prints
                print(f"error: {e}", file=sys.stderr)
                code = 1
    finally:
        sys.argv = argv
        os.chdir(old_cwd)
        for s, handler in handlers.items():  # train.py installs its own
            signal.signal(s, handler)
        gc.collect()  # the script's globals (its lock file among them) go now, not at some later collection
        gc.freeze()  # and what is left is never scanned again: each full collection then costs milliseconds, not the
        # 0.3 s of walking every object of torch, gradio and the rest (tens of seconds over a suite run)
    proc = subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f'{script} failed ({code}):\n{proc.stdout}\n{proc.stderr}')
    return proc


def run_script(script, *args, check=True, cwd=REPO, timeout=300):
    """Run a top-level script in a subprocess on the CPU; returns the CompletedProcess with text output."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS=WORKER_THREADS)
    proc = subprocess.run([sys.executable, os.path.join(REPO, script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}')
    return proc


TRAIN_TINY = ('--width=8', '--batch_size=16', '--device=cpu', '--val_size=16')
