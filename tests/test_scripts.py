"""train.py and eval.py run as a user runs them: a training step, resume after SIGKILL, end-to-end train + eval, errors."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import models
import utils
from conftest import REPO, TRAIN_TINY, run_script


def _ckpt(out_dir, name='tiny'):
    return os.path.join(out_dir, f'{name}_train_generator', 'latest.pt')


def test_one_training_step_changes_the_weights_and_gives_finite_losses(tiny_data, tmp_path):
    out = tmp_path / 'run'
    run_script('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', '--epochs=1', '--train_limit=16',
               '--seed=7', '--lr_decay_epochs=1', *TRAIN_TINY)
    ckpt = utils.load_checkpoint(_ckpt(out))
    assert ckpt['step'] == 1 and ckpt['epoch'] == 1
    assert ckpt['opt_G']['param_groups'][0]['lr'] == pytest.approx(1e-4)  # the one epoch is the decay: 2e-4 x 1/2
    h = ckpt['history'][0]
    assert all(math.isfinite(h[k]) for k in ('loss_D', 'loss_G_adv', 'loss_G_l1', 'val_mae'))
    assert h['loss_D'] > 0 and h['loss_G_adv'] > 0 and h['loss_G_l1'] > 0
    torch.manual_seed(7)  # train.py seeds, then builds G first: the same initial weights
    G0 = models.Generator(8, 32)
    for name, w0 in G0.state_dict().items():
        if name.endswith('weight') and w0.dim() == 4:
            assert not torch.equal(w0, ckpt['G'][name]), f'{name} did not change'
    D_ckpt = utils.load_checkpoint(os.path.join(out, 'tiny_train_discriminator', 'latest.pt'))
    assert D_ckpt['epoch'] == 1 and 'opt_D' in D_ckpt


def test_resumed_training_matches_uninterrupted_training(tiny_data, tmp_path):
    common = (f'--data_dir={tiny_data}', '--train_limit=32', '--l1_warmup_epochs=1', *TRAIN_TINY)
    run_script('train.py', *common, f'--out_dir={tmp_path / "a"}', '--epochs=2', '--keep_snapshots=True')
    run_script('train.py', *common, f'--out_dir={tmp_path / "b"}', '--epochs=1')
    second = run_script('train.py', *common, f'--out_dir={tmp_path / "b"}', '--epochs=2')
    assert 'resumed from' in second.stdout and 'at epoch 1' in second.stdout
    a, b = utils.load_checkpoint(_ckpt(tmp_path / 'a')), utils.load_checkpoint(_ckpt(tmp_path / 'b'))
    assert a['step'] == b['step'] == 4
    for key in ('G', 'G_ema'):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f'{key}.{name} differs after resume'
    assert [h['val_mae'] for h in a['history']] == [h['val_mae'] for h in b['history']]

    # run a kept a snapshot of every epoch: the last equals latest.pt, and each loads as a generator
    folder = os.path.dirname(_ckpt(tmp_path / 'a'))
    assert sorted(os.listdir(folder)) == ['epoch001.pt', 'epoch002.pt', 'latest.pt']
    snap = utils.load_checkpoint(os.path.join(folder, 'epoch002.pt'))
    assert 'opt_G' not in snap and snap['epoch'] == 2 and snap['step'] == 4
    assert all(torch.equal(snap['G_ema'][k], a['G_ema'][k]) for k in a['G_ema'])
    G1, description = models.load_generator(os.path.join(folder, 'epoch001.pt'))
    assert 'EMA weights after epoch 1' in description
    assert os.listdir(os.path.dirname(_ckpt(tmp_path / 'b'))) == ['latest.pt']  # off by default


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
    done = utils.load_checkpoint(_ckpt(out))['epoch']  # the file on disk is always whole
    assert done >= 1
    again = run_script('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', f'--epochs={done + 1}', *TRAIN_TINY)
    assert f'resumed from {_ckpt(out)} at epoch {done}' in again.stdout
    assert utils.load_checkpoint(_ckpt(out))['epoch'] == done + 1
    assert f'epoch {done + 1}/{done + 1}' in again.stdout


def test_train_then_eval_end_to_end(tiny_data, tmp_path):
    out = tmp_path / 'run'
    train = run_script('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', '--epochs=1', *TRAIN_TINY)
    assert 'epoch 1/1' in train.stdout and 'val_mae' in train.stdout
    assert os.path.exists(out / 'tiny_train_discriminator' / 'latest.pt')
    assert sorted(os.listdir(out / 'images')) == ['tiny_curves.png', 'tiny_samples_epoch001.png']
    grid = tmp_path / 'grid.png'
    ev = run_script('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={_ckpt(out)}', '--device=cpu', '--json',
                    f'--samples={grid}')
    for row in ('MAE', 'pixel accuracy @2%', 'pixel accuracy @5%', 'PSNR', 'SSIM', 'colourfulness'):
        assert row in ev.stdout
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    keys = {'mae', 'acc_2', 'acc_5', 'psnr', 'ssim', 'colorfulness'}
    assert set(result) == keys | {'checkpoint', 'split', 'images', 'colorfulness_real', 'gray'}
    assert set(result['gray']) == keys and result['images'] == 24 and result['checkpoint'] == _ckpt(out)
    assert 0 < result['mae'] < 255 and 0 <= result['acc_2'] <= result['acc_5'] <= 1
    assert result['gray']['colorfulness'] < 0.1 < result['colorfulness_real']
    assert grid.exists()

    # --split=val is train.py's held-out validation set: the same images, so the same MAE as the training log
    val = json.loads(run_script('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={_ckpt(out)}', '--split=val',
                                '--val_size=16', '--samples=', '--json').stdout.strip().splitlines()[-1])
    assert val['split'] == 'val' and val['images'] == 16
    assert val['mae'] == pytest.approx(utils.load_checkpoint(_ckpt(out))['history'][-1]['val_mae'], abs=1e-3)

    # ship it, then compare the export with the checkpoint it came from: the same model, so the same numbers
    export = tmp_path / 'shipped.safetensors'
    run_script('export.py', f'--checkpoint={out / "tiny_train_generator"}', f'--out={export}')
    cmp = run_script('compare.py', f'--data_dir={tiny_data}', f'--checkpoints={_ckpt(out)},{export}', '--names=ckpt,export',
                     f'--grid={tmp_path / "cmp.png"}', f'--curves={tmp_path / "curves.png"}', '--json')
    models_ = json.loads(cmp.stdout.strip().splitlines()[-1])['models']
    assert set(models_) == {'ckpt', 'export', 'grayscale'}
    assert models_['export']['mae'] == pytest.approx(models_['ckpt']['mae'], abs=0.05)
    assert models_['ckpt']['mae'] == pytest.approx(result['mae'], abs=1e-3)
    assert (tmp_path / 'cmp.png').exists() and (tmp_path / 'curves.png').exists()
    # the export carries the training history, so its curve is plotted from the file alone
    assert models.training_history(str(export)) == utils.load_checkpoint(_ckpt(out))['history']
    assert 'validation curves (ckpt, export)' in cmp.stdout

    # fine-tune from the export: with both learning rates at 0 the convolutions keep the exported weights exactly
    ft = tmp_path / 'ft'
    log = run_script('train.py', f'--data_dir={tiny_data}', f'--out_dir={ft}', '--epochs=1', f'--init_from={export}',
                     '--lr=0', '--lr_d=0', *TRAIN_TINY).stdout
    assert f'G starts from {export}' in log
    from safetensors.torch import load_file
    shipped, tuned = load_file(str(export)), utils.load_checkpoint(_ckpt(ft, 'tiny'))
    convs = [k for k, v in shipped.items() if v.dim() == 4]
    assert convs and all(torch.equal(tuned[key][k], shipped[k].float()) for k in convs for key in ('G', 'G_ema'))
    wrong = run_script('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "w"}', f'--init_from={export}',
                       '--width=16', '--batch_size=16', '--device=cpu', '--val_size=16', check=False)
    assert wrong.returncode != 0 and "pass the same --width/--image_size" in wrong.stderr


def test_best_checkpoint_follows_the_selection_rule(tiny_data, tmp_path):
    out = tmp_path / 'run'
    log = run_script('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', '--epochs=3', '--keep_snapshots=True',
                     '--select_colour=0', *TRAIN_TINY).stdout
    history = utils.load_checkpoint(_ckpt(out))['history']
    best = min(history, key=lambda h: h['val_mae'])['epoch']
    folder = out / 'tiny_train_generator'
    chosen, snapshot = utils.load_checkpoint(folder / 'best.pt'), utils.load_checkpoint(folder / f'epoch{best:03d}.pt')
    assert chosen['epoch'] == best and f'best.pt: epoch {best} ' in log
    assert all(torch.equal(chosen['G_ema'][k], snapshot['G_ema'][k]) for k in snapshot['G_ema'])
    assert utils.best_epoch(history, 0.0) == best
    # colourfulness no epoch reaches: no best.pt, and the run says why
    none = tmp_path / 'none'
    log = run_script('train.py', f'--data_dir={tiny_data}', f'--out_dir={none}', '--epochs=1', '--select_colour=5',
                     *TRAIN_TINY).stdout
    assert 'no best.pt' in log and not (none / 'tiny_train_generator' / 'best.pt').exists()


def test_eval_default_checkpoint_is_the_training_output(tiny_data, tmp_path):
    run_script('train.py', f'--data_dir={tiny_data}', '--out_dir=.', '--epochs=1', *TRAIN_TINY, cwd=tmp_path)
    ev = run_script('eval.py', f'--data_dir={tiny_data}', '--samples=', '--test_limit=8', cwd=tmp_path)
    assert 'evaluating tiny_train_generator/latest.pt (EMA weights after epoch 1' in ev.stdout
    assert '8 test images' in ev.stdout


@pytest.mark.parametrize('script,args,message', [
    ('train.py', ['--epochz=3'], 'unknown option --epochz; valid options: --data_dir'),
    ('train.py', ['--epochs=three'], "--epochs='three' is not a valid int"),
    ('train.py', ['--data_dir=/no/such/folder'], "data folder '/no/such/folder' does not exist"),
    ('eval.py', ['--data_dir=/no/such/folder', '--checkpoint=/no/such.pt'], "checkpoint '/no/such.pt' does not exist"),
    ('eval.py', ['--split=train'], 'unknown --split=train; use test or val'),
])
def test_bad_command_lines_exit_with_one_line(script, args, message):
    proc = run_script(script, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_cuda_request_fails_cleanly_without_cuda(tiny_data, tmp_path):
    proc = run_script('train.py', f'--data_dir={tiny_data}', '--device=cuda', f'--out_dir={tmp_path}', check=False)
    assert proc.returncode != 0 and 'no CUDA device is available' in proc.stderr
    assert not os.path.exists(tmp_path / 'tiny_train_generator')


def test_bench_runs_the_fast_paths_and_baselines_on_cpu():
    proc = run_script('bench.py', '--device=cpu', '--width=4', '--batch_size=16', '--train_steps=1', '--eval_images=64',
                      '--colorize_mp=0.05', '--json')
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ('train_img_s', 'train_img_s_baseline', 'eval_img_s', 'eval_img_s_baseline', 'gflop_per_image',
                'matmul_gflops', 'eval_efficiency', 'lab_img_s', 'colorize_12mp_s', 'colorize_12mp_io_s'):
        assert result[key] > 0, key
    assert result['width'] == 4 and result['device'].startswith('cpu')
    assert result['gflop_per_image'] == pytest.approx(models.generator_gflop(models.Generator(4)))


@pytest.mark.parametrize('name,min_colour', [('generator.safetensors', 0.35), ('generator_l1_only.safetensors', 0.25)])
def test_shipped_generators_beat_grayscale_on_natural_photos(name, min_colour, tmp_path):
    # the files a fresh clone evaluates and colorizes with: within the size limit, rebuilt from their own config,
    # carrying their training curve, and clearly better than gray output on photos that are not CIFAR-10
    path = os.path.join(REPO, 'pretrained', name)
    assert os.path.getsize(path) <= 40e6
    G, _ = models.load_generator(path)
    assert G.config == {'width': 64, 'image_size': 32}
    history = models.training_history(path)
    assert [h['epoch'] for h in history] == list(range(1, 33))
    run_script('natural_photos.py', f'--out_dir={tmp_path / "natural"}', '--crops=10')
    ev = run_script('eval.py', f'--data_dir={tmp_path / "natural"}', f'--checkpoint={path}', '--samples=', '--json')
    result = json.loads(ev.stdout.strip().splitlines()[-1])
    assert result['images'] == 50
    assert result['mae'] < 0.95 * result['gray']['mae']
    assert result['colorfulness'] > min_colour * result['colorfulness_real']  # the GAN's point: less sepia
