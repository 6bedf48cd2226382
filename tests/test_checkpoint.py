"""The checkpoint format: atomic round trips, safe loading, --checkpoint resolution, export and load_generator."""
import os

import pytest
import torch

import checkpoint
import models


def test_checkpoint_round_trip_is_exact_and_atomic(tmp_path):
    state = {'w': torch.randn(5, 5), 'epoch': 3, 'nested': {'a': [1, 2.5, 'x']}}
    path = tmp_path / 'sub' / 'ckpt.pt'
    checkpoint.save_checkpoint(path, state)
    back = checkpoint.load_checkpoint(path)
    assert torch.equal(back['w'], state['w']) and back['nested'] == state['nested']
    assert [p.name for p in path.parent.iterdir()] == ['ckpt.pt']  # no temp files left behind

    def boom(f):
        f.write(b'half')
        raise RuntimeError('disk full')
    with pytest.raises(RuntimeError):
        checkpoint.atomic_write(path, boom)
    assert torch.equal(checkpoint.load_checkpoint(path)['w'], state['w'])  # the old file survives a failed write
    assert [p.name for p in path.parent.iterdir()] == ['ckpt.pt']


class Payload:
    """An arbitrary class: unpickling it would run code from the checkpoint's author."""


def test_load_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / 'evil.pt'
    torch.save({'obj': Payload()}, path)
    with pytest.raises(SystemExit, match='cannot load checkpoint'):
        checkpoint.load_checkpoint(path)


def _trained_generator():
    torch.manual_seed(0)
    G = models.Generator(8, 32)
    G(torch.randn(8, 1, 32, 32))  # move BatchNorm statistics off their defaults
    return G.to(memory_format=torch.channels_last).eval()  # the layout load_generator returns, so numerics match


def test_checkpoint_and_export_round_trips_give_the_same_outputs(tmp_path):
    G = _trained_generator()
    L = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        want = G(L)
    checkpoint.save_checkpoint(tmp_path / 'g' / 'latest.pt', {'G': G.state_dict(), 'G_ema': None, 'epoch': 1,
                                                              'model_config': G.config})
    G2, what = checkpoint.load_generator(str(tmp_path / 'g'), fold=False)
    assert 'after epoch 1' in what and 'width 8' in what
    with torch.no_grad():
        assert torch.equal(G2(L), want)
    G_folded, _ = checkpoint.load_generator(str(tmp_path / 'g'))  # BatchNorm folded into the convolutions
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in G_folded.modules())
    with torch.no_grad():
        assert (G_folded(L) - want).abs().max() < 1e-5
    checkpoint.export_generator(str(tmp_path / 'g.safetensors'), G, {'epochs': 1, 'history': [{'epoch': 1}]})
    G3, _ = checkpoint.load_generator(str(tmp_path / 'g.safetensors'))
    assert G3.config == G.config
    with torch.no_grad():
        assert (G3(L) - want).abs().max() < 5e-3  # fp16 storage
    assert checkpoint.training_history(str(tmp_path / 'g.safetensors')) == [{'epoch': 1}]


def test_load_generator_rejects_wrong_files(tmp_path):
    with pytest.raises(SystemExit, match='does not exist'):
        checkpoint.load_generator(str(tmp_path / 'nope.pt'))
    (tmp_path / 'junk.pt').write_text('not a checkpoint')
    with pytest.raises(SystemExit, match='cannot load checkpoint'):
        checkpoint.load_generator(str(tmp_path / 'junk.pt'))
    checkpoint.save_checkpoint(tmp_path / 'd.pt', {'D': {}, 'epoch': 1})
    with pytest.raises(SystemExit, match='not a generator checkpoint'):
        checkpoint.load_generator(str(tmp_path / 'd.pt'))


def test_checkpoint_argument_accepts_files_generator_folders_run_folders_and_exports(tmp_path, monkeypatch):
    run = tmp_path / 'runs' / 'small'
    files = checkpoint.run_files(str(run), 'cifar10')
    assert files['G'] == str(run / 'cifar10_train_generator' / 'latest.pt')
    assert files['D'] == str(run / 'cifar10_train_discriminator' / 'latest.pt')
    os.makedirs(files['folder'])
    open(files['G'], 'w').close()
    assert checkpoint.checkpoint_file(str(run)) == files['G']  # a run folder
    assert checkpoint.checkpoint_file(files['folder']) == files['G']  # its generator folder
    assert checkpoint.checkpoint_file(files['G']) == files['G']  # the file itself
    exports = tmp_path / 'pretrained'
    exports.mkdir()
    (exports / 'generator.safetensors').touch()
    assert checkpoint.checkpoint_file(str(exports)) == str(exports / 'generator.safetensors')  # one export in a folder
    (exports / 'photo_generator.safetensors').touch()
    with pytest.raises(SystemExit, match=r'generator.safetensors, photo_generator.safetensors\); pass one of them'):
        checkpoint.checkpoint_file(str(exports))
    os.makedirs(run / 'tiny_train_generator')
    with pytest.raises(SystemExit, match='holds several runs'):
        checkpoint.checkpoint_file(str(run))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=f'relative paths are resolved from {tmp_path}'):
        checkpoint.load_generator('runs/missing.pt')


def test_best_epoch_is_the_lowest_mae_among_colorful_enough_epochs():
    # MAE rises with color, as in a GAN: the rule takes the first epoch over the bar, not the lowest MAE overall
    rows = [(1, 10.8, 0.5), (2, 11.6, 0.75), (3, 12.0, 0.81), (4, 12.3, 0.85), (5, 11.9, 0.79)]
    history = [{'epoch': e, 'val_mae': m, 'val_colorfulness': 30 * r, 'val_colorfulness_real': 30.0}
               for e, m, r in rows]
    assert checkpoint.best_epoch(history, 0.8) == 3
    assert checkpoint.best_epoch(history, 0.0) == 1
    assert checkpoint.best_epoch(history, 0.9) is None
    old = [{k: v for k, v in h.items() if k != 'val_colorfulness_real'} for h in history]  # logged before the ratio
    assert checkpoint.best_epoch(old, 0.8) is None and checkpoint.best_epoch(old, 0.0) == 1


def test_best_epoch_by_color_is_the_color_nearest_real_among_accurate_enough_epochs():
    # gray MAE 13: the cap 0.93 x 13 = 12.09 rules out epoch 4, the most colorful; epoch 6 overshoots real's color
    rows = [(1, 10.8, 0.5), (2, 11.6, 0.75), (3, 12.0, 0.81), (4, 12.3, 0.9), (5, 11.9, 0.79), (6, 12.05, 1.25)]
    history = [{'epoch': e, 'val_mae': m, 'val_mae_gray': 13.0, 'val_colorfulness': 30 * r,
                'val_colorfulness_real': 30.0} for e, m, r in rows]
    assert checkpoint.best_epoch(history, 0.8, 'color', 0.93) == 3
    assert checkpoint.best_epoch(history, 0.8, 'color', 0.95) == 4
    assert checkpoint.best_epoch(history, 0.8, 'color', 0.5) is None
    assert checkpoint.best_epoch(history, 0.8) == 3  # 'mae' stays the default
    old = [{k: v for k, v in h.items() if k != 'val_mae_gray'} for h in history]  # logged before the gray MAE
    assert checkpoint.best_epoch(old, 0.8, 'color', 0.93) is None
