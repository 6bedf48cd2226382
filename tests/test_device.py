"""colorize_gan.device: the --device setting, and where training runs in bf16."""
from contextlib import nullcontext

import pytest
import torch

from colorize_gan import device
from colorize_gan.utils import UserError


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    with pytest.raises(UserError, match='no CUDA device'):
        device.resolve_device('cuda')
    assert device.resolve_device('auto').type == 'cpu'
    with pytest.raises(UserError, match='unknown --device=tpu'):
        device.resolve_device('tpu')


def test_autocast_is_a_factory_of_contexts():
    assert device.autocast_for('cpu') is nullcontext and device.autocast_for('cpu', 'fp32') is nullcontext
    with device.autocast_for('cpu')():
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32
    with device.autocast_for('cpu', 'bf16')():
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(UserError, match='unknown --amp=fp16; use auto, bf16 or fp32'):
        device.autocast_for('cpu', 'fp16')


@pytest.mark.parametrize('amx', [True, False])
def test_training_in_bf16_is_the_default_on_cuda_and_on_a_cpu_with_amx(amx, monkeypatch):
    monkeypatch.setattr(device, 'cpu_has_amx', lambda: amx)
    assert device.training_amp('auto', 'cpu') == ('bf16' if amx else 'fp32')
    assert device.training_amp('auto', torch.device('cuda')) == 'bf16'
    assert device.training_amp('fp32', 'cuda') == 'fp32' and device.training_amp('bf16', 'cpu') == 'bf16'
    with pytest.raises(UserError, match='unknown --amp=half'):
        device.training_amp('half', 'cpu')


def test_amx_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    flags = tmp_path / 'cpuinfo'
    real_open = open
    monkeypatch.setattr('builtins.open', lambda path, *a, **k: real_open(flags if path == '/proc/cpuinfo' else path,
                                                                          *a, **k))
    flags.write_text('processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n')
    assert device.cpu_has_amx() is True
    flags.write_text('processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n')
    assert device.cpu_has_amx() is False
    flags.unlink()
    assert device.cpu_has_amx() is False  # no /proc/cpuinfo (macOS, Windows): no AMX claimed
