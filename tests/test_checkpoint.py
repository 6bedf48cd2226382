"""The checkpoint format: atomic round trips, safe loading, --checkpoint resolution, export and load_generator."""
import copy
import importlib.util
import os

import pytest
import torch

from colorize_gan import checkpoint, models
from colorize_gan.utils import UserError


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
    with pytest.raises(UserError, match=r"cannot load checkpoint .* \(not a checkpoint: PyTorch finds no weights-only "
                       r"data in it\); pass a file written by train.py"):
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
    with pytest.raises(UserError, match='does not exist'):
        checkpoint.load_generator(str(tmp_path / 'nope.pt'))
    (tmp_path / 'junk.pt').write_text('not a checkpoint')  # a text file: no words of PyTorch's cut off mid-way
    with pytest.raises(UserError, match=r"cannot load checkpoint .* \(not a checkpoint: .*\); pass a file") as refused:
        checkpoint.load_generator(str(tmp_path / 'junk.pt'))
    assert 'weights_only' not in str(refused.value)
    (tmp_path / 'empty.pt').write_bytes(b'')
    with pytest.raises(UserError, match=r"cannot load checkpoint .* \(EOFError: .*\); pass a file"):
        checkpoint.load_generator(str(tmp_path / 'empty.pt'))
    checkpoint.save_checkpoint(tmp_path / 'd.pt', {'D': {}, 'epoch': 1})
    with pytest.raises(UserError, match='not a generator checkpoint'):
        checkpoint.load_generator(str(tmp_path / 'd.pt'))


def test_checkpoint_argument_accepts_files_run_folders_old_layouts_and_exports(tmp_path, monkeypatch):
    run = tmp_path / 'runs' / 'small'
    run.mkdir(parents=True)
    (run / 'state.pt').touch()
    assert checkpoint.checkpoint_file(str(run)) == str(run / 'state.pt')  # a run folder
    assert checkpoint.checkpoint_file(str(run / 'best.pt')) == str(run / 'best.pt')  # a file stands for itself
    monkeypatch.setenv('HOME', str(tmp_path))
    assert checkpoint.checkpoint_file('~/runs/small') == str(run / 'state.pt')  # ~ is the home folder
    old = tmp_path / 'old'  # format 1: <dataset>_train_generator/latest.pt
    os.makedirs(old / 'cifar10_train_generator')
    (old / 'cifar10_train_generator' / 'latest.pt').touch()
    assert checkpoint.checkpoint_file(str(old)) == str(old / 'cifar10_train_generator' / 'latest.pt')
    assert checkpoint.checkpoint_file(str(old / 'cifar10_train_generator')) == \
        str(old / 'cifar10_train_generator' / 'latest.pt')
    exports = tmp_path / 'pretrained'
    exports.mkdir()
    (exports / 'generator.safetensors').touch()
    assert checkpoint.checkpoint_file(str(exports)) == str(exports / 'generator.safetensors')  # one export in a folder
    (exports / 'photo_generator.safetensors').touch()
    with pytest.raises(UserError, match=r'generator.safetensors, photo_generator.safetensors\); pass one of them'):
        checkpoint.checkpoint_file(str(exports))
    os.makedirs(old / 'tiny_train_generator')
    with pytest.raises(UserError, match='holds several runs'):
        checkpoint.checkpoint_file(str(old))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f'relative paths are resolved from {tmp_path}'):
        checkpoint.load_generator('runs/missing.pt')


def test_interpolated_export_is_the_weighted_mean_of_two_generators(tmp_path):
    from conftest import run
    torch.manual_seed(1)
    A, B = _trained_generator(), models.Generator(8, 32)
    for m in B.modules():  # B's BatchNorm statistics differ from A's too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.num_batches_tracked.fill_(7)
    files = {}
    for name, G in (('a', A), ('b', B)):
        files[name] = tmp_path / f'{name}.pt'
        checkpoint.save_checkpoint(files[name], {'G': G.state_dict(), 'G_ema': G.state_dict(), 'epoch': 2,
                                                 'step': 10, 'elapsed_s': 1.0, 'config': {}, 'history': [],
                                                 'model_config': G.config})
    mix = copy.deepcopy(A)
    checkpoint.interpolate_weights(mix, B, 0.25)
    for name, value in mix.state_dict().items():
        a, b = A.state_dict()[name], B.state_dict()[name]
        want = 0.75 * a + 0.25 * b if value.is_floating_point() else a  # integer buffers stay the first one's
        assert torch.allclose(value, want, atol=1e-6), name
    assert any(not torch.equal(A.state_dict()[k], B.state_dict()[k]) for k in A.state_dict())
    proc = run('export.py', f'--checkpoint={files["a"]}', f'--interpolate_with={files["b"]}', '--interpolation=0.25',
               f'--out_dir={tmp_path}', '--out_name=soup.safetensors')
    assert '0.75 x' in proc.stdout and '0.25 x' in proc.stdout
    G, _ = checkpoint.load_generator(str(tmp_path / 'soup.safetensors'), fold=False)
    for name, value in G.state_dict().items():
        assert torch.allclose(value.float(), mix.state_dict()[name].float(), atol=2e-3, rtol=2e-3), name  # fp16
    info = checkpoint._export_info(str(tmp_path / 'soup.safetensors'))[1]
    assert info['interpolation'] == 0.25 and str(files['b']) in info['interpolated_with']
    with pytest.raises(UserError, match='not in'):
        checkpoint.interpolate_weights(copy.deepcopy(A), B, 1.5)
    with pytest.raises(UserError, match='one architecture'):
        checkpoint.interpolate_weights(copy.deepcopy(A), models.Generator(16, 32), 0.5)
    for args, message in ((['--interpolation=0.5'], 'needs --interpolate_with'),
                          ([f'--interpolate_with={tmp_path / "nope.pt"}', '--interpolation=0.5'],
                           'nope.pt does not exist'),
                          ([f'--interpolate_with={files["b"]}', '--interpolation=1.5'], 'is not in (0, 1]')):
        bad = run('export.py', f'--checkpoint={files["a"]}', *args, f'--out_dir={tmp_path / "x"}', check=False)
        assert bad.returncode == 1 and message in bad.stderr and not (tmp_path / 'x').exists(), args
    if importlib.util.find_spec('onnx'):  # the ONNX export of a soup is the soup too
        for name, args in (('plain', []), ('soup', [f'--interpolate_with={files["b"]}', '--interpolation=0.25'])):
            proc = run('export.py', '--format=onnx', f'--checkpoint={files["a"]}', *args, f'--out_dir={tmp_path}',
                       f'--out_name={name}.onnx')
        assert '0.25 x' in proc.stdout
        assert (tmp_path / 'plain.onnx').read_bytes() != (tmp_path / 'soup.onnx').read_bytes()
