"""The scripts as separate processes, as a user starts them: kill and resume, a command-line round trip, the bench,
and the shipped generators on natural photos."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from colorize_gan import checkpoint
from colorize_gan.models import Generator
from conftest import REPO, TRAIN_TINY, run, run_script


def _ckpt(out_dir):
    return os.path.join(out_dir, 'state.pt')


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_and_finishes(tiny_data, tmp_path):
    out = tmp_path / 'run'
    args = [sys.executable, os.path.join(REPO, 'train.py'), f'--data_dir={tiny_data}', f'--out_dir={out}',
            '--epochs=1000', *TRAIN_TINY]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not os.path.exists(_ckpt(out)) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)  # let it get into a later epoch, possibly mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = checkpoint.load_checkpoint(_ckpt(out))['epoch']  # the file on disk is always whole
    assert done >= 1
    (out / '.state.pt.k1ll3d.tmp').write_bytes(b'half a checkpoint')  # what a kill in the middle of a write leaves
    (out / 'images' / '.tiny_curves.png.k1ll3d.tmp').write_bytes(b'half a figure')
    again = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', f'--epochs={done + 1}', *TRAIN_TINY,
                '--init_from=resume')
    assert f'resumed from {_ckpt(out)} after epoch {done}' in again.stdout
    assert not [f for folder in (out, out / 'images') for f in os.listdir(folder) if f.endswith('.tmp')]
    assert checkpoint.load_checkpoint(_ckpt(out))['epoch'] == done + 1
    assert f'epoch {done + 1}/{done + 1}' in again.stdout
    ev = run('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={out}', f'--out_dir={tmp_path / "e"}', '--as_json',
             '--device=cpu')
    assert json.loads(ev.stdout.strip().splitlines()[-1])['images'] == 24


@pytest.mark.slow
def test_bad_option_in_a_real_process_is_one_line_and_no_traceback():
    proc = run_script('train.py', '--out-dir=x', '--epoch=1', check=False)
    assert proc.returncode != 0 and proc.stderr.strip() == 'error: unknown option --epoch; did you mean --epochs?'


def _gflop_by_hand(w):
    """The generator's conv cost at 32x32, counted by hand: 2 FLOP per multiply-add, 4x4 kernels."""
    return (2 * 1024 * w * 1 * 16 + 2 * 256 * 2 * w * w * 16 + 2 * 64 * 4 * w * 2 * w * 16
            + 2 * 16 * 8 * w * 4 * w * 16 + 2 * 4 * 8 * w * 8 * w * 16  # encoder down to 2x2
            + 2 * 4 * 8 * w * 8 * w * 16 + 2 * 16 * 16 * w * 4 * w * 16 + 2 * 64 * 8 * w * 2 * w * 16
            + 2 * 256 * 4 * w * w * 16  # decoder: every input pixel scatters a 4x4 kernel
            + 2 * 1024 * 2 * w * 2) / 1e9  # the 1x1 output convolution


@pytest.mark.slow
def test_bench_runs_the_fast_paths_and_baselines_on_cpu(tmp_path):
    small = tmp_path / 'small.safetensors'  # the colorize figures' model, in this process and in the scan's child
    checkpoint.export_generator(str(small), Generator(4, 32).eval())
    proc = run('bench.py', '--device=cpu', '--width=4', '--batch_size=16', '--train_steps=1', '--matmul_max=512',
               '--eval_images=64', '--colorize_mp=0.05', f'--colorize_checkpoint={small}', '--memory_images=300',
               '--ddp_images=0', '--strip_memory=False', '--scan_megapixels=0.05', '--video_seconds=0', '--as_json')
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    table = [line for line in proc.stdout.splitlines() if line.startswith('|')]
    assert len(table) > 10 and len({len(line) for line in table}) == 1  # the columns line up, the longest label too
    for key in ('train_img_s', 'train_img_s_baseline', 'eval_img_s', 'eval_img_s_baseline', 'gflop_per_image',
                'matmul_gflops', 'eval_efficiency', 'lab_img_s', 'colorize_12mp_s', 'colorize_12mp_io_s',
                'peak_rss_anon_mb_300', 'scan_s', 'scan_rss_anon_mb'):
        assert result[key] > 0, key
    assert result['scan_size'] == '233x215'  # 0.05 MP at 13:14
    assert result['colorize_model'].startswith(f'{small} (')  # the model named, with its description
    assert result['width'] == 4 and result['device'].startswith('cpu')
    assert result['gflop_per_image'] == pytest.approx(_gflop_by_hand(4), rel=1e-9)
    assert _gflop_by_hand(64) == pytest.approx(0.674, abs=1e-3)  # the paper-width figure the README quotes


@pytest.mark.slow
def test_bench_compares_photo_model_encoders():
    proc = run('bench.py', '--device=cpu', '--encoders=tf_efficientnet_lite0', '--train_steps=1', '--encoder_batch=2',
               '--as_json')
    found = json.loads(proc.stdout.strip().splitlines()[-1])['encoders']
    assert list(found) == ['tf_efficientnet_lite0']
    table = [line for line in proc.stdout.splitlines() if line.startswith('|')]
    assert len(table) == 3 and len({len(line) for line in table}) == 1  # header, rule, one row: aligned
    lite0 = found['tf_efficientnet_lite0']
    assert lite0['train_img_s'] > 0 and lite0['generator_ms_128x224'] > 0
    assert 5.1 < lite0['params_m'] < 5.3  # the photo model's generator: 5.18 M
    bad = run('bench.py', '--device=cpu', '--encoders=nope,tf_efficientnet_lite0', check=False)
    assert bad.returncode == 1 and "'nope' is not a timm model" in bad.stderr and 'train img/s' not in bad.stdout
    vit = run('bench.py', '--device=cpu', '--encoders=tf_efficientnet_lite0,vit_tiny_patch16_224', check=False)
    assert vit.returncode == 1 and 'vit_tiny_patch16_224 does not work as the' in vit.stderr  # before any timing
    assert 'train img/s' not in vit.stdout and len(vit.stderr.strip().splitlines()) == 1


SHIPPED = {'generator.safetensors': {'width': 64, 'image_size': 32},
           'photo_generator.safetensors': {'arch': 'encoder_unet', 'encoder': 'tf_efficientnet_lite0', 'width': 32,
                                           'image_size': 128, 'hints': True}}


@pytest.fixture(scope='module')
def natural(tmp_path_factory):
    """tools/natural_photos.py's folder (10 test crops a photo, no train/; full/: the whole photos), made once for both
    models."""
    folder = tmp_path_factory.mktemp('natural')
    run('tools/natural_photos.py', f'--out_dir={folder}', '--crops=10', '--train_crops=0')
    return folder


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_shipped_generators_beat_grayscale_on_natural_photos(name, natural):
    # the files a fresh clone evaluates and colorizes with: small, rebuilt from their own config, carrying their
    # training curve, and better than gray output on photos that are in neither training set, at their own size
    path = os.path.join(REPO, 'pretrained', name)
    assert os.path.getsize(path) <= 20e6
    G, _ = checkpoint.load_generator(path)
    assert G.config == SHIPPED[name]
    history = checkpoint.training_history(path)
    assert history and [h['epoch'] for h in history] == list(range(1, len(history) + 1))
    result = json.loads(run('eval.py', f'--data_dir={natural}', f'--checkpoint={path}', '--out_dir=',
                            '--as_json').stdout.strip().splitlines()[-1])
    assert result['images'] == 50 and result['image_size'] == SHIPPED[name]['image_size']
    assert result['mae'] < 0.97 * result['gray']['mae']  # measured on these 50 crops: 0.90x and 0.65x
    assert result['colorfulness'] > 0.3 * result['colorfulness_real']  # the GAN's point: less sepia
    if name == 'photo_generator.safetensors':  # colorize.py's default, on the packages' whole photos at full size
        whole = json.loads(run('eval.py', f'--data_dir={natural / "full"}', f'--checkpoint={path}',
                               '--full_resolution', '--out_dir=', '--as_json').stdout.strip().splitlines()[-1])
        assert whole['mae'] < 0.9 * whole['gray']['mae'] and whole['ciede2000'] < whole['gray']['ciede2000']
        assert whole['better_than_gray'] >= 0.8  # measured: MAE 0.63x, CIEDE2000 0.65x, all 6 better than gray


def test_tracked_files_fit_the_size_budget():
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True).stdout.split(b'\0')
    total = sum(os.path.getsize(os.path.join(REPO, f.decode())) for f in files if f)
    assert total <= 32 * 2 ** 20, f'tracked files take {total / 2 ** 20:.1f} MiB; the budget is 32 MiB'


def test_cifar10_tarball_becomes_an_image_folder_the_scripts_read(tmp_path, monkeypatch):
    import numpy as np
    import torchvision.datasets

    class FakeCIFAR10:
        """Stands in for torchvision's reader (the real tarball is 163 MB): 6 train and 4 test images."""
        classes = ['airplane', 'cat']

        def __init__(self, root, train, download):
            assert os.path.exists(os.path.join(root, 'cifar-10-python.tar.gz')) and download
            n = 6 if train else 4
            self.data = np.random.default_rng(n).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = [i % 2 for i in range(n)]

    monkeypatch.setattr(torchvision.datasets, 'CIFAR10', FakeCIFAR10)
    (tmp_path / 'cifar-10-python.tar.gz').write_bytes(b'x')
    out = tmp_path / 'cifar10'
    run('tools/cifar10_folder.py', f'--tarball={tmp_path / "cifar-10-python.tar.gz"}', f'--out_dir={out}')
    assert sorted(os.listdir(out / 'train')) == ['airplane', 'cat'] and len(os.listdir(out / 'test' / 'cat')) == 2
    from colorize_gan import dataset
    split = dataset.load_split(str(out), 'train', 32, verbose=False)
    assert len(split) == 6 and split.name == 'cifar10'
    missing = run('tools/cifar10_folder.py', '--tarball=/no/such.tar.gz', check=False)
    assert missing.returncode != 0 and 'is not a file' in missing.stderr


def test_demo_without_gradio_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, 'gradio', None)  # as if it were not installed
    proc = run('demo.py', check=False)
    assert proc.returncode != 0 and 'pip install -r requirements-demo.txt' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_hint_spread_refuses_bad_bands_and_folders_without_colour_photos(tmp_path):
    gray = tmp_path / 'gray'
    gray.mkdir()
    Image.fromarray(np.full((40, 60), 128, np.uint8)).save(gray / 'g.png')
    for args, message in ((['--bands=abc'], "--bands='abc': pass comma-separated numbers"),
                          (['--bands=2,0'], "--bands='2,0' must rise from 0"),
                          (['--hints=0'], '--hints=0: pass at least 1'),
                          ([f'--folders={gray}'], 'no colour photos in --folders=')):
        proc = run('tools/hint_spread.py', *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, args


@pytest.mark.slow  # writes the packages' photos twice
def test_natural_photos_refuses_bad_options_and_a_rerun_leaves_only_its_own_crops(tmp_path):
    (tmp_path / 'afile').write_text('x')
    for args, message in ((['--crops=-1'], '--crops=-1 --train_crops=80: pass 0'),
                          (['--image_size=7'], 'pass 16 to 512 px'), (['--seed=-1'], '--seed=-1'),
                          (['--out_dir='], '--out_dir is empty'),
                          ([f'--out_dir={tmp_path / "afile"}'], 'is a file'),
                          ([f'--out_dir={tmp_path / "afile" / "sub"}'], 'cannot write in')):
        proc = run('tools/natural_photos.py', *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, args
    out = tmp_path / 'natural'
    run('tools/natural_photos.py', f'--out_dir={out}', '--crops=3', '--train_crops=2', '--image_size=16')
    (out / 'test' / 'cat' / '.001.png.k1ll3d.tmp').write_bytes(b'half a crop')  # what a killed run leaves
    (out / 'full' / 'test' / '.cat.png.k1ll3d.tmp').write_bytes(b'half a photo')
    for mine in ('notes.txt', '0002.png'):  # not the script's names (it writes 002.png): kept
        (out / 'test' / 'cat' / mine).write_text('mine')
    again = run('tools/natural_photos.py', f'--out_dir={out}', '--crops=1', '--train_crops=0', '--image_size=16')
    assert 'removed 20 crops of an earlier run with more' in again.stdout  # 2 test and 2 train crops of 5 photos
    assert sorted(os.listdir(out / 'test' / 'cat')) == ['000.png', '0002.png', 'notes.txt']
    assert not (out / 'train').exists() and 'train crops' not in again.stdout.splitlines()[-1]
    assert not [f for f in os.listdir(out / 'full' / 'test') if f.endswith('.tmp')]
    assert Image.open(out / 'test' / 'cat' / '000.png').size == (16, 16)
    (out / 'test' / 'cat' / '000.png').unlink()
    (out / 'test' / 'cat' / '000.png').mkdir()  # a folder where a crop goes: refused in one line, never removed
    (out / 'test' / 'astronaut' / '.000.png.k1ll3d.tmp').write_bytes(b'half a crop')
    refused = run('tools/natural_photos.py', f'--out_dir={out}', '--crops=1', '--train_crops=0', '--image_size=16',
                  check=False)
    assert refused.returncode == 1 and "000.png' is a folder where this script writes a file" in refused.stderr
    assert (out / 'test' / 'cat' / '000.png').is_dir()
    assert (out / 'test' / 'astronaut' / '.000.png.k1ll3d.tmp').exists()  # refused before anything changed
