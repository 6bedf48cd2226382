"""Training beyond one process: torchrun with gloo on the CPU equals one process, and a run stopped by SIGTERM
mid-epoch resumes at the next batch, bit-identical to one never stopped."""
import errno
import functools
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch

from colorize_gan import checkpoint, models, runstate
from colorize_gan.utils import UserError
from conftest import REPO, run

pytestmark = pytest.mark.slow  # every test here runs whole scripts

TINY = ('--width=4', '--device=cpu', '--val_size=16', '--dropout=0', '--log_seconds=0', '--amp=fp32')
# (fp32: 1 and 2 processes add gradients in other orders, which bf16 autocast, train.py's default on a CPU with AMX,
# would round past any tolerance that still tells a wrong gradient from a right one)


def _train(args, nproc=1, check=True, **popen):
    """Run train.py as a user would: plain python for one process, torchrun --standalone for several."""
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}'] \
        if nproc > 1 else [sys.executable]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    cmd = [*launcher, os.path.join(REPO, 'train.py'), *map(str, args)]
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, env=env, text=True, **popen)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    if check and proc.returncode:
        raise AssertionError(f'train.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}')
    return proc


@pytest.fixture(autouse=True)
def one_thread():
    """The runs made in this process compute on one thread, as the ones _train starts: results compare bit for bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _latest(out):
    return checkpoint.load_checkpoint(os.path.join(out, 'state.pt'))


def test_two_processes_train_like_one_at_the_same_global_batch(tiny_data, tmp_path, monkeypatch):
    common = (f'--data_dir={tiny_data}', '--batch_size=16', '--epochs=2', '--l1_warmup_epochs=1', *TINY)
    run('train.py', *common, f'--out_dir={tmp_path / "one"}')  # one process: this one (on one thread, as torchrun's)
    two = _train([*common, f'--out_dir={tmp_path / "two"}'], nproc=2)
    assert 'distributed: 2 processes (gloo), global batch 16 = 2 x 8' in two.stdout
    assert two.stdout.count('epoch 2/2 |') == 1  # one process prints
    a, b = _latest(tmp_path / 'one'), _latest(tmp_path / 'two')
    assert a['step'] == b['step'] == 4  # 32 training images at a global batch of 16, 2 epochs
    for key in ('G', 'G_ema'):
        for name, value in a[key].items():  # one L1 epoch and one adversarial epoch, BatchNorm statistics included
            assert torch.allclose(value.float(), b[key][name].float(), rtol=1e-4, atol=1e-5), f'{key}.{name}'
    assert sorted(f for f in os.listdir(tmp_path / 'two') if f[0] != '.') == ['config.json', 'images', 'state.pt']
    for name, value in (('RANK', '0'), ('WORLD_SIZE', '2'), ('LOCAL_RANK', '0')):  # as torchrun sets them
        monkeypatch.setenv(name, value)
    bad = run('train.py', *common, '--batch_size=15', f'--out_dir={tmp_path / "bad"}', check=False)
    assert bad.returncode != 0 and 'does not split evenly over 2 processes' in bad.stderr
    assert not (tmp_path / 'bad').exists()  # refused before any process group or file


def test_sigterm_mid_epoch_checkpoints_and_resume_is_bit_identical(tiny_data, tmp_path):
    # 48 images (16 held out) at batch 2: 16 steps an epoch; every step checkpoints, so SIGTERM finds one mid-epoch
    common = (f'--data_dir={tiny_data}', '--batch_size=2', '--epochs=2', '--l1_warmup_epochs=1', '--dropout=0.5',
              *TINY[:-2])
    run('train.py', *common, f'--out_dir={tmp_path / "whole"}')  # the reference: checkpoints only at epoch ends
    out = tmp_path / 'stopped'
    proc = _train([*common, '--checkpoint_minutes=0', f'--out_dir={out}'], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            state = _latest(out)
        except (UserError, FileNotFoundError):
            state = None
        if state and state['epoch'] == 1 and state.get('batch', 0) > 0:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr  # 128 + SIGTERM, as a shell reports it: the run is not finished
    assert 'stopped by SIGTERM in epoch 2, after batch' in stdout and 'Resume with: python3 train.py' in stdout
    assert stdout.strip().endswith('--init_from=resume')
    assert 'Traceback' not in stderr
    stopped = _latest(out)
    assert stopped['epoch'] == 1 and 0 < stopped['batch'] < 16
    assert (out / 'images' / 'tiny_curves.png').exists()  # drawn on the way out: epoch 1 is in it
    assert not (out / '.lock.owner').exists()  # a clean stop leaves no stale lock
    again = run('train.py', *common, '--checkpoint_minutes=0', f'--out_dir={out}', '--init_from=resume')
    assert 'taking over the lock' not in again.stdout
    assert f"resumed from {os.path.join(out, 'state.pt')} in epoch 2, after batch {stopped['batch']}" in again.stdout
    a, b = _latest(tmp_path / 'whole'), _latest(out)
    assert a['step'] == b['step'] == 32 and b['batch'] == 0
    for key in ('G', 'G_ema'):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f'{key}.{name} differs after a mid-epoch resume'
    assert [h['val_mae'] for h in a['history']] == [h['val_mae'] for h in b['history']]


@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_a_damaged_checkpoint_is_one_line_never_a_silent_restart(tiny_data, tmp_path, damage):
    out = tmp_path / 'run'
    common = (f'--data_dir={tiny_data}', '--batch_size=16', f'--out_dir={out}', *TINY)
    run('train.py', *common, '--epochs=1')
    path = out / 'state.pt'
    blob = path.read_bytes()
    damaged = blob[:len(blob) // 3] if damage == 'truncated' else b'not a checkpoint at all'
    path.write_bytes(damaged)
    proc = run('train.py', *common, '--epochs=2', '--init_from=resume', check=False)
    assert proc.returncode != 0
    assert f"cannot resume from '{path}'" in proc.stderr and 'move it away' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and path.read_bytes() == damaged  # left as it was found


def test_a_second_run_on_a_live_out_dir_is_refused_and_a_stale_lock_is_taken_over(tiny_data, tmp_path):
    out = tmp_path / 'run'
    common = (f'--data_dir={tiny_data}', '--batch_size=16', f'--out_dir={out}', *TINY)
    folder = out
    folder.mkdir(parents=True)
    (folder / '.lock.owner').write_text('pid 1 on elsewhere\n')  # what a live holder (or a dead one) leaves
    holder = subprocess.Popen([sys.executable, '-c', 'import filelock, sys, time; l = filelock.FileLock(sys.argv[1]); '
                               'l.acquire(); print("locked", flush=True); time.sleep(60)', str(folder / '.lock')],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'locked'
    busy = run('train.py', *common, '--epochs=1', check=False)
    holder.kill()
    holder.wait()
    assert busy.returncode != 0 and "another train.py (pid 1 on elsewhere) is training in" in busy.stderr
    assert not (folder / 'state.pt').exists()
    taken = run('train.py', *common, '--epochs=1')  # the holder died: its lock is stale
    assert 'taking over the lock of a run that ended without cleaning up (pid 1 on elsewhere' in taken.stdout
    assert (folder / 'state.pt').exists() and not (folder / '.lock.owner').exists()


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    out = tmp_path / 'run'
    common = (f'--data_dir={tiny_data}', '--batch_size=8', f'--out_dir={out}', *TINY)
    run('train.py', *common, '--epochs=1')
    # a run whose recipe diverges from epoch 2 on: its record says so (a resume may not change the learning rate)
    state = checkpoint.load_checkpoint(out / 'state.pt')
    state['config'].update(lr=1e30, lr_d=1e30)
    checkpoint.save_checkpoint(out / 'state.pt', state)
    good = (out / 'state.pt').read_bytes()
    proc = run('train.py', *common, '--epochs=2', '--lr=1e30', '--lr_d=1e30', '--init_from=resume', check=False)
    assert proc.returncode != 0
    assert 'the loss became NaN or inf in epoch 2' in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "(the last checkpoint) is untouched: start a new run from it at lower learning rates: python3 " in \
        proc.stderr  # a resume keeps the run's rates: the advice is a new run, as a command that starts
    assert (out / 'state.pt').read_bytes() == good
    advised = shlex.split(proc.stderr.split('learning rates: ')[1])
    assert f'--init_from={out / "state.pt"}' in advised and f'--out_dir={out}_lower_lr' in advised
    assert '--lr=1e+29' in advised and '--width=4' in advised and f'--data_dir={tiny_data}' in advised
    again = run(*advised[1:], check=False)  # the run's own settings come with it: G loads (and, at 1e29, diverges)
    assert f'G starts from {out / "state.pt"}' in again.stdout and 'the loss became NaN' in again.stderr
    fresh = run('train.py', *common, '--epochs=1', '--lr=1e30', '--lr_d=1e30', f'--out_dir={tmp_path / "new"}',
                check=False)
    assert 'nothing was saved: rerun with a lower --lr or --lr_d' in fresh.stderr
    # weights that blow up while the losses stay finite (tanh saturates): validation's NaN stops the run too
    blown = run('train.py', *common, '--epochs=2', '--lr=1e12', f'--out_dir={tmp_path / "blown"}', check=False)
    assert blown.returncode == 1 and ('validation gave NaN after epoch 1' in blown.stderr
                                      or 'the loss became NaN' in blown.stderr) and 'done:' not in blown.stdout


def test_a_failed_checkpoint_write_names_the_problem_and_keeps_the_old_file(tmp_path, monkeypatch):
    paths = runstate.run_paths(str(tmp_path))
    G, D = models.Generator(4, 16), models.Discriminator(4)
    opts = [torch.optim.Adam(m.parameters()) for m in (G, D)]
    state = functools.partial(runstate.capture, G, None, D, *opts, {}, batch=0, step=0, elapsed_s=0.0, config={},
                              history=[], changes=[], n_train=1)
    runstate.save_state(paths, state(epoch=1))
    before = open(paths['state'], 'rb').read()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(UserError) as e:
        runstate.save_state(paths, state(epoch=2), best=True)
    assert 'could not write checkpoint' in str(e.value) and 'No space left on device' in str(e.value)
    assert open(paths['state'], 'rb').read() == before
    assert sorted(os.listdir(tmp_path)) == ['state.pt']  # no temp files, no half best.pt
