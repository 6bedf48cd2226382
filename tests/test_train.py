"""train.py, eval.py, export.py and compare.py run in this process as a user runs them: a step, exact resume, the
best.pt rule, train -> eval -> export -> compare, fine-tuning, and bad command lines."""
import json
import math
import os

import pytest
import torch

from colorize_gan import checkpoint, models, plots, runstate
from conftest import REPO, TRAIN_TINY, run

PHOTO = os.path.join(REPO, 'pretrained', 'photo_generator.safetensors')


def _ckpt(out_dir):
    return os.path.join(out_dir, 'state.pt')


def _json(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_training_step_changes_the_weights_and_gives_finite_losses(tiny_data, tmp_path):
    out = tmp_path / 'run'
    proc = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', '--epochs=1', '--train_limit=16',
               '--seed=7', '--lr_decay_epochs=1', *TRAIN_TINY, '--batch_size=64', '--amp=bf16')
    assert 'device cpu (bf16)' in proc.stdout  # bf16 autocast on the CPU when asked (auto: on CPUs with AMX)
    ckpt = checkpoint.load_checkpoint(_ckpt(out))
    assert ckpt['step'] == 1 and ckpt['epoch'] == 1
    assert ckpt['opt_G']['param_groups'][0]['lr'] == pytest.approx(1e-4)  # the one epoch is the decay: 2e-4 x 1/2
    assert ckpt['config']['batch_size'] == 16  # asked for 64, but there are only 16 images: the record says 16
    assert json.load(open(out / 'config.json')) == {'config': ckpt['config'], 'changes': []}
    h = ckpt['history'][0]
    assert all(math.isfinite(h[k]) for k in ('loss_D', 'loss_G_adv', 'loss_G_l1', 'val_mae'))
    assert h['loss_D'] > 0 and h['loss_G_adv'] > 0 and h['loss_G_l1'] > 0
    torch.manual_seed(7)  # train.py seeds, then builds G first: the same initial weights
    G0 = models.Generator(8, 32)
    for name, w0 in G0.state_dict().items():
        if name.endswith('weight') and w0.dim() == 4:
            assert not torch.equal(w0, ckpt['G'][name]), f'{name} did not change'
    assert ckpt['D'] and ckpt['opt_D']['state'] and ckpt['model_config_D'] == {'width': 8}  # D in the same file
    assert sorted(f for f in os.listdir(out) if f[0] != '.') == ['config.json', 'images', 'state.pt']


@pytest.mark.slow
def test_resumed_training_matches_uninterrupted_training(tiny_data, tmp_path, monkeypatch):
    common = (f'--data_dir={tiny_data}', '--train_limit=32', '--l1_warmup_epochs=1', *TRAIN_TINY)
    drawn = []  # the curves figure: drawn once for these two quick epochs, after the last, with both
    with monkeypatch.context() as patch:
        patch.setattr(plots, 'plot_curves', lambda path, histories: drawn.append(
            (os.path.basename(path), [h['epoch'] for h in histories['tiny']])))
        run('train.py', *common, f'--out_dir={tmp_path / "a"}', '--epochs=2', '--keep_snapshots=True')
    assert drawn == [('tiny_curves.png', [1, 2])]
    def broken_matplotlib(path, histories):
        raise ModuleNotFoundError("No module named 'matplotlib'")
    with monkeypatch.context() as patch:  # a broken install costs the figure, never the finished run
        patch.setattr(plots, 'plot_curves', broken_matplotlib)
        first = run('train.py', *common, f'--out_dir={tmp_path / "b"}', '--epochs=1')
    assert "warning: could not draw the curves (ModuleNotFoundError: No module named 'matplotlib')" in first.stdout
    assert 'done: 1 epochs' in first.stdout
    (tmp_path / 'no_images' / 'train').mkdir(parents=True)  # refused before any data is read: no "no images" error
    again = run('train.py', *TRAIN_TINY, f'--data_dir={tmp_path / "no_images"}', f'--out_dir={tmp_path / "b"}',
                '--epochs=2', check=False)  # resume is explicit
    assert again.returncode == 1 and 'holds a run (epoch 1); continue it with --init_from=resume' in again.stderr
    second = run('train.py', *common, f'--out_dir={tmp_path / "b"}', '--epochs=2', '--init_from=resume')
    assert 'resumed from' in second.stdout and 'after epoch 1' in second.stdout
    assert 'resume: epochs changes from 1 to 2' in second.stdout
    a, b = checkpoint.load_checkpoint(_ckpt(tmp_path / 'a')), checkpoint.load_checkpoint(_ckpt(tmp_path / 'b'))
    assert a['step'] == b['step'] == 4
    for key in ('G', 'G_ema'):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f'{key}.{name} differs after resume'
    assert [h['val_mae'] for h in a['history']] == [h['val_mae'] for h in b['history']]
    assert b['changes'] == [{'epoch': 1, 'batch': 0, 'step': 2, 'changed': {'epochs': [1, 2]}}]
    done = run('train.py', *common, f'--out_dir={tmp_path / "b"}', '--epochs=2', '--init_from=auto')
    assert 'already trained 2 epochs' in done.stdout

    # run a kept a snapshot of every epoch (G, EMA G and D): the last equals state.pt, and each loads as a generator
    folder = tmp_path / 'a'
    assert sorted(f for f in os.listdir(folder) if f.endswith('.pt')) == ['epoch001.pt', 'epoch002.pt', 'state.pt']
    snap = checkpoint.load_checkpoint(os.path.join(folder, 'epoch002.pt'))
    assert 'opt_G' not in snap and snap['epoch'] == 2 and snap['step'] == 4 and snap['D']
    assert all(torch.equal(snap['G_ema'][k], a['G_ema'][k]) for k in a['G_ema'])
    _, description = checkpoint.load_generator(os.path.join(folder, 'epoch001.pt'))
    assert 'EMA weights after epoch 1' in description
    assert sorted(f for f in os.listdir(tmp_path / 'b') if f.endswith('.pt')) == ['state.pt']


@pytest.mark.slow
def test_resume_refuses_settings_that_change_the_run_and_records_the_ones_it_allows(tiny_data, tmp_path):
    out = tmp_path / 'run'
    common = (f'--data_dir={tiny_data}', f'--out_dir={out}', '--train_limit=16', *TRAIN_TINY)
    run('train.py', *common, '--epochs=1')
    before = open(out / 'state.pt', 'rb').read()
    bad = run('train.py', *common, '--epochs=2', '--lr=0.05', '--lambda_l1=1', '--dropout=0', '--init_from=resume',
              check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "dropout=0.5 (asked 0.0), lambda_l1=100.0 (asked 1.0), lr=0.0002 (asked 0.05)" in bad.stderr
    assert open(out / 'state.pt', 'rb').read() == before  # nothing rewritten, the record intact
    assert 'data:' not in bad.stdout  # refused before any data was read
    # the schedule may grow, but not for an epoch already trained
    past = run('train.py', *common, '--epochs=3', '--lr_decay_epochs=3', '--init_from=resume', check=False)
    assert past.returncode == 1 and 'lr_decay_epochs=0 (asked 3)' in past.stderr
    # what the command leaves out (here: the data, the model, every setting of TRAIN_TINY) comes from the run
    ok = run('train.py', f'--out_dir={out}', '--epochs=3', '--lr_decay_epochs=2', '--keep_snapshots=True',
             '--amp=fp32', '--init_from=resume')
    assert 'device cpu (fp32)' in ok.stdout  # the precision is free to change, as the device is
    assert f"resume: the run's settings apply: --data_dir={tiny_data}" in ok.stdout
    assert 'resume: lr_decay_epochs changes from 0 to 2' in ok.stdout
    state = checkpoint.load_checkpoint(out / 'state.pt')
    assert state['config']['lr_decay_epochs'] == 2 and state['changes'][0]['changed'] == {
        'epochs': [1, 3], 'lr_decay_epochs': [0, 2], 'keep_snapshots': [False, True], 'amp': ['auto', 'fp32']}
    assert json.load(open(out / 'config.json'))['changes'] == state['changes']
    nothing = run('train.py', *common, '--init_from=resume', f'--out_dir={tmp_path / "new" / "empty"}', check=False)
    assert nothing.returncode == 1 and "there is no run to resume in" in nothing.stderr
    assert not (tmp_path / 'new').exists()  # the folders the refused run made are gone
    (tmp_path / 'mine').mkdir()  # a folder of the user's: left as it was, with no lock file in it
    nothing = run('train.py', *common, '--init_from=resume', f'--out_dir={tmp_path / "mine"}', check=False)
    assert nothing.returncode == 1 and os.listdir(tmp_path / 'mine') == []


@pytest.mark.slow
def test_a_small_folder_holds_out_a_third_and_val_size_0_is_refused(tiny_data, tmp_path):
    log = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "r"}', '--epochs=1', '--width=8',
              '--device=cpu', '--val_size=1000').stdout  # 48 images: the default 1000 would leave 1 to train on
    assert 'holding out 16 of the 48 training images for validation' in log and 'data: 32 training images' in log
    # the same command resumes: the settings the run cut to fit (val_size, batch_size) count as what it was given
    again = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "r"}', '--epochs=2', '--width=8',
                '--device=cpu', '--val_size=1000', '--init_from=resume').stdout
    assert 'resume: the run\'s settings apply: --val_size=16 --batch_size=32' in again and 'epoch 2/2' in again
    bad = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "z"}', '--val_size=0', check=False)
    assert bad.returncode == 1 and '--val_size=0 must be at least 1' in bad.stderr
    assert not (tmp_path / 'z').exists()


@pytest.mark.slow
def test_a_run_of_the_old_two_folder_layout_resumes_through_the_conversion(tiny_data, tmp_path):
    # format 1 (before state.pt): <dataset>_train_generator/latest.pt and <dataset>_train_discriminator/latest.pt
    common = (f'--data_dir={tiny_data}', '--train_limit=16', '--l1_warmup_epochs=1', *TRAIN_TINY)
    run('train.py', *common, f'--out_dir={tmp_path / "a"}', '--epochs=2')
    run('train.py', *common, f'--out_dir={tmp_path / "old"}', '--epochs=1', '--keep_snapshots=True')
    state = checkpoint.load_checkpoint(tmp_path / 'old' / 'state.pt')
    g, d = runstate.legacy_paths(str(tmp_path / 'old'), 'tiny')
    os.makedirs(os.path.dirname(g)), os.makedirs(os.path.dirname(d))
    keep = ('G', 'G_ema', 'opt_G', 'rng', 'epoch', 'batch', 'step', 'elapsed_s', 'model_config', 'config', 'history')
    old_config = {k: v for k, v in state['config'].items() if k not in ('arch', 'hints', 'width_d', 'init_from')}
    checkpoint.save_checkpoint(g, {**{k: state[k] for k in keep}, 'config': {**old_config, 'resume': True}})
    checkpoint.save_checkpoint(d, {'D': state['D'], 'opt_D': state['opt_D'], 'epoch': 1, 'batch': 0,
                                   'model_config': {'width': 8}})
    os.replace(tmp_path / 'old' / 'epoch001.pt', os.path.join(os.path.dirname(g), 'best.pt'))
    os.remove(tmp_path / 'old' / 'state.pt')
    _, description = checkpoint.load_generator(str(tmp_path / 'old'))  # eval, colorize, export read it as before
    assert 'after epoch 1' in description
    log = run('train.py', *common, f'--out_dir={tmp_path / "old"}', '--epochs=2', '--init_from=resume').stdout
    assert 'the old two-folder layout' in log and f'resumed from {g} after epoch 1' in log
    a, b = (checkpoint.load_checkpoint(tmp_path / name / 'state.pt') for name in ('a', 'old'))
    assert all(torch.equal(a['G'][k], b['G'][k]) for k in a['G'])  # the converted run continues exactly
    assert (tmp_path / 'old' / 'best.pt').exists()


@pytest.mark.slow
def test_train_then_eval_export_compare_and_fine_tune(tiny_data, tmp_path):
    out = tmp_path / 'run'
    train = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', '--epochs=1', *TRAIN_TINY, '--val_size=8')
    assert 'epoch 1/1' in train.stdout and 'val_mae' in train.stdout
    assert sorted(os.listdir(out / 'images')) == ['tiny_curves.png', 'tiny_samples_epoch001.png']
    ev = run('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={out}', '--device=cpu', '--as_json',
             f'--out_dir={tmp_path / "eval"}')
    for row in ('MAE', 'CIEDE2000', 'pixel accuracy @2%', 'pixel accuracy @5%', 'PSNR', 'SSIM', 'colorfulness'):
        assert row in ev.stdout
    result = _json(ev)
    keys = {'mae', 'ciede2000', 'acc_2', 'acc_5', 'psnr', 'ssim', 'colorfulness'}
    assert set(result) == keys | {'checkpoint', 'split', 'images', 'image_size', 'hints', 'hint_spread',
                                  'full_resolution', 'colorfulness_real', 'gray'}
    assert set(result['gray']) == keys and result['images'] == 24 and result['checkpoint'] == str(out)
    assert 0 < result['mae'] < 255 and 0 <= result['acc_2'] <= result['acc_5'] <= 1
    assert result['gray']['colorfulness'] < 0.1 < result['colorfulness_real']
    assert os.listdir(tmp_path / 'eval') == ['tiny_test_run_samples.png']

    # --split=val is train.py's held-out validation set: the same images, so the same MAE as the training log
    # (its size comes from the run: eval.py's own default, 1000, capped at a third of these 48 images, would take 16,
    # half of them trained on; a --val_size other than the run's is refused)
    val = _json(run('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={_ckpt(out)}', '--split=val',
                    '--out_dir=', '--as_json'))
    assert val['split'] == 'val' and val['images'] == 8
    assert val['mae'] == pytest.approx(checkpoint.load_checkpoint(_ckpt(out))['history'][-1]['val_mae'], abs=1e-3)
    other = run('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={out}', '--split=val', '--val_size=16',
                check=False)
    assert other.returncode == 1 and 'was trained holding out 8 images; the others were trained on' in other.stderr
    import shutil
    shutil.copytree(tiny_data, tmp_path / 'renamed')  # another data folder: its held-out images are other ones
    elsewhere = run('eval.py', f'--data_dir={tmp_path / "renamed"}', f'--checkpoint={out}', '--split=val',
                    check=False)
    assert elsewhere.returncode == 1 and f"was trained on --data_dir={tiny_data}, not {tmp_path / 'renamed'}" in \
        elsewhere.stderr
    grown = tmp_path / 'grown' / tiny_data.name  # the same name, one image more: another hold-out
    shutil.copytree(tiny_data, grown)
    shutil.copy(next((grown / 'train' / 'cat').iterdir()), grown / 'train' / 'cat' / 'extra.png')
    more = run('eval.py', f'--data_dir={grown}', f'--checkpoint={out}', '--split=val', check=False)
    assert more.returncode == 1 and 'was trained on other images than' in more.stderr

    # ship it, then compare the export with the checkpoint it came from: the same model, so the same numbers
    run('export.py', f'--checkpoint={out}', '--out_name=shipped.safetensors')
    export = out / 'shipped.safetensors'  # in the run folder by default
    assert _json(run('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={export}', '--split=val', '--out_dir=',
                     '--as_json'))['images'] == 8  # an export knows its run's held-out size too
    cmp = run('compare.py', f'--data_dir={tiny_data}', f'--checkpoints={_ckpt(out)},{export}', '--names=ckpt,export',
              f'--out_dir={tmp_path / "cmp"}', '--as_json')
    models_ = _json(cmp)['models']
    assert set(models_) == {'ckpt', 'export', 'grayscale'}
    assert models_['export']['mae'] == pytest.approx(models_['ckpt']['mae'], abs=0.05)
    assert models_['ckpt']['mae'] == pytest.approx(result['mae'], abs=1e-3)
    assert sorted(os.listdir(tmp_path / 'cmp')) == ['comparison.png', 'curves.png']
    # the export carries the training history, so its curve is plotted from the file alone
    assert checkpoint.training_history(str(export)) == checkpoint.load_checkpoint(_ckpt(out))['history']
    assert 'validation curves (ckpt, export)' in cmp.stdout

    # fine-tune from the export: with both learning rates at 0 the convolutions keep the exported weights exactly
    ft = tmp_path / 'ft'
    log = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={ft}', '--epochs=1', f'--init_from={export}',
              '--lr=0', '--lr_d=0', *TRAIN_TINY).stdout
    assert f'G starts from {export}' in log
    from safetensors.torch import load_file
    shipped, tuned = load_file(str(export)), checkpoint.load_checkpoint(_ckpt(ft))
    convs = [k for k, v in shipped.items() if v.dim() == 4]
    assert convs and all(torch.equal(tuned[key][k], shipped[k].float()) for k in convs for key in ('G', 'G_ema'))
    assert 'D starts from' not in log  # an export holds no discriminator: D starts fresh
    # fine-tune from a run (its state.pt): G from its EMA weights and D from its discriminator, not a fresh critic
    ft2 = tmp_path / 'ft2'
    log = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={ft2}', '--epochs=1', f'--init_from={out}',
              '--lr=0', '--lr_d=0', *TRAIN_TINY).stdout
    source, tuned = checkpoint.load_checkpoint(_ckpt(out)), checkpoint.load_checkpoint(_ckpt(ft2))
    assert "D starts from" in log and tuned['epoch'] == 1 and tuned['history'][0]['epoch'] == 1
    d_convs = [k for k, v in source['D'].items() if v.dim() == 4]
    assert d_convs and all(torch.equal(tuned['D'][k], source['D'][k]) for k in d_convs)
    g_convs = [k for k, v in source['G_ema'].items() if v.dim() == 4]
    assert all(torch.equal(tuned['G'][k], source['G_ema'][k]) for k in g_convs)
    # refused before any data is read: the data folder is empty, and the error is still the generator's
    (tmp_path / 'empty').mkdir()
    wrong = run('train.py', f'--data_dir={tmp_path / "empty"}', f'--out_dir={tmp_path / "w"}', f'--init_from={export}',
                '--width=16', '--batch_size=16', '--device=cpu', '--val_size=16', check=False)
    assert wrong.returncode != 0 and "holds a width 8, 32px generator, but this run asks for a width 16, 32px one; " \
        "pass --width=8 to start from it" in wrong.stderr
    other_d = run('train.py', f'--data_dir={tmp_path / "empty"}', f'--out_dir={tmp_path / "d"}', f'--init_from={out}',
                  '--width_d=16', *TRAIN_TINY, check=False)  # the run's D is width 8 (TRAIN_TINY's --width)
    assert other_d.returncode != 0 and 'a discriminator of width 8, not 16; pass --width_d=8' in other_d.stderr
    no_d = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "no_d"}', f'--init_from={out}',
               '--width_d=16', '--lambda_adv=0', '--epochs=1', *TRAIN_TINY).stdout  # L1 only: no D to match
    assert 'D starts' not in no_d and 'discriminator' not in no_d  # this run trains none: none is taken or named
    # that L1-only run's D never trained: a run from it starts a fresh D, of any width, and says so
    from_l1 = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "from_l1"}',
                  f'--init_from={tmp_path / "no_d"}', '--width_d=16', '--epochs=1', *TRAIN_TINY).stdout
    assert 'discriminator never trained (no adversarial epoch): D starts fresh' in from_l1
    assert 'D starts from' not in from_l1
    # a soup of runs that held out other images (8 and 16) has no validation images of its own: --split=val refuses
    run('export.py', f'--checkpoint={out}', f'--interpolate_with={ft}', '--interpolation=0.5',
        '--out_name=soup.safetensors')
    soup = run('eval.py', f'--data_dir={tiny_data}', f'--checkpoint={out / "soup.safetensors"}', '--split=val',
               check=False)
    assert soup.returncode == 1 and 'mixes generators whose runs held out other images' in soup.stderr


@pytest.mark.slow
def test_best_checkpoint_follows_the_selection_rule(tiny_data, tmp_path):
    out = tmp_path / 'run'
    log = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', '--epochs=3', '--keep_snapshots=True',
              '--select_color=0', *TRAIN_TINY).stdout
    history = checkpoint.load_checkpoint(_ckpt(out))['history']
    best = min(history, key=lambda h: h['val_mae'])['epoch']
    chosen = checkpoint.load_checkpoint(out / 'best.pt')
    snapshot = checkpoint.load_checkpoint(out / f'epoch{best:03d}.pt')
    assert chosen['epoch'] == best and f'best.pt: epoch {best} ' in log
    assert all(torch.equal(chosen['G_ema'][k], snapshot['G_ema'][k]) for k in snapshot['G_ema'])
    # color no epoch reaches: no best.pt, and the run says why
    none = tmp_path / 'none'
    log = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={none}', '--epochs=1', '--select_color=5',
              *TRAIN_TINY).stdout
    assert 'no best.pt' in log and not (none / 'best.pt').exists()



@pytest.mark.slow
def test_a_new_selection_rule_on_resume_moves_best_to_its_epoch(tiny_data, tmp_path):
    out = tmp_path / 'run'
    common = (f'--data_dir={tiny_data}', f'--out_dir={out}', '--keep_snapshots=True', *TRAIN_TINY)
    first = run('train.py', *common, '--epochs=2', '--select_color=5').stdout  # no epoch qualifies: no best.pt
    assert 'no best.pt' in first and not (out / 'best.pt').exists()
    log = run('train.py', *common, '--epochs=3', '--select_by=color', '--select_mae=10', '--init_from=resume').stdout
    history = checkpoint.load_checkpoint(_ckpt(out))['history']
    best = runstate.best_epoch(history, 0.8, 'color', 10)
    chosen = checkpoint.load_checkpoint(out / 'best.pt')
    snapshot = checkpoint.load_checkpoint(out / f'epoch{best:03d}.pt')
    assert chosen['epoch'] == best and f'best.pt: epoch {best} (validation colorfulness nearest' in log
    assert best < 3 and f'best.pt: now epoch {best} (copied from its snapshot)' in log  # an earlier epoch's weights
    assert all(torch.equal(chosen['G_ema'][k], snapshot['G_ema'][k]) for k in snapshot['G_ema'])
    bad = run('train.py', *common, '--select_by=colour', '--init_from=resume', check=False)
    assert bad.returncode != 0 and 'select_by must be one of mae, color' in bad.stderr
    # a resume with nothing left to train that only changes a setting records it: said once, not at every resume
    once = run('train.py', f'--out_dir={out}', '--select_mae=20', '--init_from=resume').stdout
    assert 'resume: select_mae changes from 10.0 to 20.0' in once and 'nothing to do' in once
    again = run('train.py', f'--out_dir={out}', '--init_from=resume').stdout
    assert 'changes from' not in again and '--select_mae=20.0' in again  # the run's settings apply
    fewer = run('train.py', f'--out_dir={out}', '--epochs=2', '--init_from=resume', check=False)
    assert fewer.returncode == 1 and 'it has trained 3 epoch(s): --epochs cannot ask for fewer' in fewer.stderr


@pytest.mark.slow
def test_eval_default_checkpoint_is_the_training_output(tiny_data, tmp_path):
    run('train.py', f'--data_dir={tiny_data}', '--epochs=1', *TRAIN_TINY, cwd=tmp_path)
    ev = run('eval.py', f'--data_dir={tiny_data}', '--out_dir=', '--test_limit=8', cwd=tmp_path)
    assert 'evaluating runs/tiny/state.pt (EMA weights after epoch 1' in ev.stdout
    assert 'no --checkpoint: the run train.py writes for' in ev.stdout
    assert '8 test images' in ev.stdout


@pytest.mark.parametrize('script,args,message', [
    ('train.py', ['--epochz=3'], 'unknown option --epochz; did you mean --epochs?'),
    ('train.py', ['--epochs=three'], "--epochs='three' is not a valid int"),
    ('train.py', ['--hint_decoder=True'], '--hint_decoder=True feeds the hints to the encoder U-Net'),
    ('train.py', ['--lr=-1'], 'error: --lr=-1.0 must be >= 0\n'),  # the setting that is wrong, named alone
    ('train.py', ['--train_limit=-1'], 'error: --train_limit=-1 must be >= 0 (0 = all)\n'),
    ('train.py', ['--beta2=1'], 'error: --beta2=1.0 must be in [0, 1)\n'),
    ('train.py', ['--data_dir=/no/such/folder'], "data folder '/no/such/folder' does not exist"),
    ('train.py', ['--data_dir=/no/such/folder', '--device=cuda'], 'no CUDA device is available'),
    ('eval.py', ['--data_dir=/no/such/folder', '--checkpoint=/no/such.pt'], "checkpoint '/no/such.pt' does not exist"),
    ('eval.py', ['--split=train'], 'unknown --split=train; use test or val'),
    ('bench.py', ['--train_steps=0'], '--train_steps=0: pass at least 1'),
    ('export.py', [], 'pass --checkpoint='),
    ('compare.py', ['--checkpoints=a,b', '--names=x'], '2 checkpoints but 1 names'),
    ('compare.py', ['--checkpoints=runs/x/run,runs/y/run'], "two generators are named 'run'"),
    ('compare.py', ['--checkpoints=a', '--test_limit=-2'], '--test_limit=-2 must be >= 0'),
    ('compare.py', ['--checkpoints=a', '--out_dir=/proc/x'], 'cannot write to --out_dir=/proc/x'),
    ('eval.py', ['--test_limit=-3'], '--test_limit=-3 must be >= 0'),
    ('eval.py', ['--upsample=guided'], '--upsample=guided works with --full_resolution'),
    ('eval.py', ['--data_dir=d', '--out_dir=d/test/grids'], 'is inside d/test, whose images are read as data'),
    ('compare.py', ['--checkpoints=a', '--data_dir=d', '--out_dir=d/train/x'], 'is inside d/train, whose images'),
    ('eval.py', ['--split=val', '--test_limit=10'], '--test_limit=10 cuts the test split; --split=val scores'),
    ('figures.py', ['--out_dir='], '--out_dir is empty'),
    ('eval.py', ['--hint_spread=0.5'], '--hint_spread=0.5 spreads simulated hints: pass --hints=N with it'),
    ('eval.py', ['--out_dir=/proc/x'], 'cannot write to --out_dir=/proc/x'),
    ('figures.py', ['--height=100000'], '--height=100000 must be between 16 and 2048'),
    ('figures.py', ['--out_dir=/proc/x'], 'cannot write to --out_dir=/proc/x'),
    ('export.py', [f'--checkpoint={PHOTO}', '--format=onnx', '--precision=int8', '--out_dir=x'],
     '--precision=int8 is for .safetensors exports; an ONNX export is fp32'),
    ('export.py', [f'--checkpoint={PHOTO}', '--format=onnx', '--interpolate_with=a.pt', '--out_dir=x'],
     "--interpolation=0.0 is not in (0, 1], the share of --interpolate_with's weights"),
    ('export.py', [f'--checkpoint={PHOTO}', '--out_name=../x.safetensors'], 'is a path; pass a file name'),
    ('export.py', [f'--checkpoint={PHOTO}', f'--out_dir={os.path.dirname(PHOTO)}', '--out_name=generator.safetensors'],
     'is already an export; pass a train.py checkpoint'),  # not 'exists; pass --overwrite', which would not help
])
def test_bad_command_lines_exit_with_one_line(script, args, message, tmp_path):
    proc = run(script, *args, check=False, cwd=tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not os.listdir(tmp_path)  # nothing half-written


@pytest.mark.slow
def test_the_photo_recipe_trains_with_hints_and_resumes_exactly(tiny_data, tmp_path):
    # the v2 photo model: a pretrained-encoder U-Net taking hints, its encoder at encoder_lr x lr; the simulated
    # users' random state travels in the checkpoint, so a resumed run draws the same hints
    common = (f'--data_dir={tiny_data}', '--train_limit=16', '--l1_warmup_epochs=1', '--arch=encoder_unet',
              '--hints=True', '--encoder_lr=0.5', *TRAIN_TINY, '--batch_size=8')
    run('train.py', *common, f'--out_dir={tmp_path / "a"}', '--epochs=2')
    run('train.py', *common, f'--out_dir={tmp_path / "b"}', '--epochs=1')
    run('train.py', *common, f'--out_dir={tmp_path / "b"}', '--epochs=2', '--init_from=resume')
    a, b = checkpoint.load_checkpoint(_ckpt(tmp_path / 'a')), checkpoint.load_checkpoint(_ckpt(tmp_path / 'b'))
    assert a['model_config']['arch'] == 'encoder_unet' and a['model_config']['hints'] is True
    assert 'hints' in a['rng']
    for name in a['G']:
        assert torch.equal(a['G'][name], b['G'][name]), f'G.{name} differs after resume'
    groups = a['opt_G']['param_groups']
    assert [g['lr'] for g in groups] == pytest.approx([2e-4, 1e-4])  # decoder, then encoder at 0.5x
    G, description = checkpoint.load_generator(_ckpt(tmp_path / 'a'))
    assert 'U-Net' in description and G.hints


@pytest.mark.slow
def test_resume_refuses_other_images_and_weights_only_files_and_leaves_no_stale_lock(tiny_data, tmp_path):
    import shutil

    from conftest import make_images
    out = tmp_path / 'run'
    common = (f'--out_dir={out}', '--train_limit=16', '--keep_snapshots=True', *TRAIN_TINY)
    run('train.py', f'--data_dir={tiny_data}', *common, '--epochs=2', '--select_color=0')
    other = tmp_path / 'other' / 'tiny'  # as many images, under the same name, but other pictures
    make_images(other / 'train' / 'cat', 24, seed=11)
    make_images(other / 'train' / 'dog', 24, seed=12, size=(34, 50))
    bad = run('train.py', f'--data_dir={other}', *common, '--epochs=3', '--init_from=resume', check=False)
    assert bad.returncode == 1 and 'was trained on other images than' in bad.stderr
    assert 'data:' not in bad.stdout and 'decoding' not in bad.stderr  # refused from the names, before decoding
    assert not (out / '.lock.owner').exists()  # a refusal after taking the lock leaves none behind
    moved = tmp_path / 'moved' / 'tiny'  # the same images copied elsewhere: the same data
    shutil.copytree(tiny_data, moved)
    ok = run('train.py', f'--data_dir={moved}', *common, '--epochs=2', '--init_from=resume', '--select_by=color',
             '--select_mae=10')
    assert 'resume: data_dir changes' in ok.stdout
    # a finished run resumed under another rule: best.pt follows it from the snapshots
    best = runstate.best_epoch(checkpoint.load_checkpoint(out / 'state.pt')['history'], 0.8, 'color', 10)
    assert checkpoint.load_checkpoint(out / 'best.pt')['epoch'] == best
    shutil.copy(out / 'best.pt', out / 'state.pt')  # a rollback done by hand
    weights = run('train.py', f'--data_dir={tiny_data}', *common, '--epochs=3', '--init_from=resume', check=False)
    assert weights.returncode == 1 and 'holds weights only' in weights.stderr
    assert len(weights.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_old_layout_run_is_found_when_its_data_folder_was_renamed(tiny_data, tmp_path):
    import shutil
    out = tmp_path / 'old'
    run('train.py', f'--data_dir={tiny_data}', f'--out_dir={out}', '--epochs=1', '--train_limit=16', *TRAIN_TINY)
    state = checkpoint.load_checkpoint(out / 'state.pt')
    g, d = runstate.legacy_paths(str(out), 'tiny')
    os.makedirs(os.path.dirname(g)), os.makedirs(os.path.dirname(d))
    keep = ('G', 'G_ema', 'opt_G', 'rng', 'epoch', 'batch', 'step', 'elapsed_s', 'model_config', 'config', 'history')
    checkpoint.save_checkpoint(g, {k: state[k] for k in keep})
    checkpoint.save_checkpoint(d, {'D': state['D'], 'opt_D': state['opt_D'], 'epoch': 1, 'batch': 0})
    os.remove(out / 'state.pt')
    renamed = tmp_path / 'renamed'
    shutil.copytree(tiny_data, renamed)
    log = run('train.py', f'--data_dir={renamed}', f'--out_dir={out}', '--epochs=2', '--train_limit=16', *TRAIN_TINY,
              '--init_from=resume').stdout
    assert f'resumed from {g} after epoch 1' in log


def test_a_signal_before_training_or_a_second_one_exits_128_plus_its_number(tiny_data, tmp_path, monkeypatch):
    import signal

    from colorize_gan import dataset
    load = dataset.load_train_val

    def interrupted_load(*args, **kwargs):  # Ctrl-C while the data loads
        os.kill(os.getpid(), signal.SIGINT)
        return load(*args, **kwargs)
    monkeypatch.setattr(dataset, 'load_train_val', interrupted_load)
    early = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "a"}', *TRAIN_TINY, check=False)
    assert early.returncode == 130 and 'stopped by SIGINT before training started' in early.stderr
    monkeypatch.setattr(dataset, 'load_train_val', load)

    step = models.gan_step

    def twice_stopped_step(*args, **kwargs):  # SIGTERM, and another before the first's checkpoint: leave at once
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        return step(*args, **kwargs)
    monkeypatch.setattr(models, 'gan_step', twice_stopped_step)
    twice = run('train.py', f'--data_dir={tiny_data}', f'--out_dir={tmp_path / "b"}', *TRAIN_TINY, check=False)
    assert twice.returncode == 143 and 'SIGTERM again: exiting now' in twice.stderr
    assert 'no checkpoint had been written yet' in twice.stderr  # no resume command for a run that has none


def test_curves_draw_each_run_s_grayscale_baseline_when_the_runs_differ(tmp_path):
    def history(gray, n=2):
        return [dict(epoch=e, loss_D=0.6, loss_G_adv=1.0, loss_G_l1=0.1, val_mae=gray - e, val_mae_raw=gray - e + 0.5,
                     val_mae_gray=gray, val_colorfulness=20.0, val_colorfulness_real=30.0) for e in range(1, n + 1)]

    def dashed(fig):  # the grayscale-output lines of the validation MAE panel: (label, y)
        return sorted((ln.get_label(), ln.get_ydata()[0]) for ln in fig.axes[2].lines if ln.get_linestyle() == '--')
    same = plots.plot_curves(tmp_path / 'same.png', {'a': history(14.3), 'b': history(14.3, 3)})
    assert dashed(same) == [('grayscale output', 14.3)]
    other = plots.plot_curves(tmp_path / 'other.png', {'cifar': history(12.4), 'photos': history(22.65),
                                                       'photos_again': history(22.651, 1)})
    assert dashed(other) == [('cifar grayscale output', 12.4), ('photos, photos_again grayscale output', 22.65)]
    one_epoch = [ln for ln in other.axes[1].lines if ln.get_label() == 'photos_again']
    assert one_epoch[0].get_marker() == 'o'  # a run of one epoch shows as a point
    single = plots.plot_curves(tmp_path / 'single.png', {'quick': history(14.3, 1)})
    assert [ln.get_marker() for ln in single.axes[0].lines] == ['o', 'x']  # D's point and G's apart
    assert [t.get_text() for t in single.axes[0].get_xticklabels()] == ['1']  # its own tick
    assert (tmp_path / 'other.png').stat().st_size > 10_000  # a drawn figure
