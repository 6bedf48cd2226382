"""Where the networks run and at what precision: the device a --device setting names, and bf16 autocast where it is
fast (CUDA; a CPU with AMX units) or asked for."""
from contextlib import nullcontext

import torch

from .utils import UserError


def resolve_device(name):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device; asking for CUDA without one is an error, not a fallback."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda'):
        if not torch.cuda.is_available():
            raise UserError(f"--device={name} but no CUDA device is available; "
                             "use --device=cpu or --device=auto")
        return torch.device(name)
    if name == 'cpu':
        return torch.device('cpu')
    raise UserError(f"unknown --device={name}; use auto, cpu or cuda")


def cpu_has_amx():
    """True on a CPU with AMX bf16 units (Linux's /proc/cpuinfo flag amx_bf16: Intel Xeon since Sapphire Rapids), where
    oneDNN's bf16 matrix products run about 7x faster than fp32 ones; False elsewhere, or where it cannot tell."""
    try:
        with open('/proc/cpuinfo') as f:
            return any(line.startswith('flags') and 'amx_bf16' in line.split() for line in f)
    except OSError:
        return False


def _check_amp(amp):
    """UserError unless amp is one of auto, bf16, fp32."""
    if amp not in ('auto', 'bf16', 'fp32'):
        raise UserError(f"unknown --amp={amp}; use auto, bf16 or fp32")


def training_amp(amp, device):
    """What train.py's --amp means on `device` (a torch.device or its name): 'auto' is 'bf16' on CUDA and on a CPU
    with AMX units (cpu_has_amx), where bf16 training measured 1.6-2x faster (docs/experiments.md, "bf16 training on
    the CPU"), else 'fp32'; 'bf16' and 'fp32' stay. Raises UserError for another value."""
    _check_amp(amp)
    if amp == 'auto':
        return 'bf16' if torch.device(device).type == 'cuda' or cpu_has_amx() else 'fp32'
    return amp


def autocast_for(device, amp='auto'):
    """The one way to get mixed precision: a factory of autocast contexts. amp 'auto': bf16 on CUDA, none on the CPU
    (evaluation's figures stay fp32 there); 'bf16': bf16 autocast on either; 'fp32': none. Raises UserError for
    another amp."""
    _check_amp(amp)
    kind = torch.device(device).type
    if amp == 'bf16' or amp == 'auto' and kind == 'cuda':
        return lambda: torch.autocast(kind, dtype=torch.bfloat16)
    return nullcontext
