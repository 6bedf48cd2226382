"""The checkpoint format: safe loads of train.py's files, what --checkpoint may name, and generators: export
(safetensors, fp16 or int8) and loading from any of them. The run state inside a run folder is runstate.py's.
"""
import json
import os
import pickle

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from .assets import PRETRAINED_DIR
from .models import build_generator, fold_batchnorm
from .utils import UserError, atomic_write, describe_generator, interrupt_after

CIFAR10_GENERATOR = os.path.join(PRETRAINED_DIR, 'generator.safetensors')  # the paper's reproduction: eval.py's default
PHOTO_GENERATOR = os.path.join(PRETRAINED_DIR, 'photo_generator.safetensors')  # natural photos: colorize.py's


def save_checkpoint(path, state):
    """torch.save a dict of tensors/plain values atomically."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path, map_location='cpu', verb='load checkpoint',
                    fix="pass a file written by train.py or a .safetensors file from pretrained/"):
    """torch.load with weights_only=True: tensors and plain containers only, never arbitrary objects. A missing or
    damaged file raises UserError: 'cannot <verb> <path> (<reason>); <fix>'."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint '{path}' does not exist{_relative_hint(path)}; "
                        "pass the path of a generator file (a run folder, a checkpoint or an export)")
    except pickle.UnpicklingError:  # not a pickle at all, or one holding objects other than tensors and plain values
        raise UserError(f"cannot {verb} '{path}' (not a checkpoint: PyTorch finds no weights-only data in it); "
                        f"{fix}") from None
    except Exception as e:  # truncated, or another damage
        first = (str(e).splitlines() or ['unreadable'])[0]
        reason = f"{type(e).__name__}: {first if len(first) <= 120 else first[:117].rsplit(' ', 1)[0] + ' ...'}"
        raise UserError(f"cannot {verb} '{path}' ({reason}); {fix}") from None


def _relative_hint(path):
    """' (resolved from /cwd)' for a relative path, so a user running from another folder sees why it is missing."""
    return '' if os.path.isabs(path) else f' (relative paths are resolved from {os.getcwd()})'


def checkpoint_file(path):
    """Resolve what a user passes as --checkpoint to one file: a file stands for itself, a run folder for its state.pt
    (format 1: a generator folder for its latest.pt, a run folder for that of the one <dataset>_train_generator/ in
    it), a folder of exports for its one .safetensors file. Raises UserError when that is ambiguous or missing."""
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        return path
    for name in ('state.pt', 'latest.pt'):
        if os.path.exists(os.path.join(path, name)):
            return os.path.join(path, name)
    runs = sorted(d for d in os.listdir(path) if d.endswith('_train_generator'))
    exports = sorted(f for f in os.listdir(path) if f.endswith('.safetensors'))
    if len(runs) == 1:
        return os.path.join(path, runs[0], 'latest.pt')
    if len(runs) > 1:
        raise UserError(f"'{path}' holds several runs ({', '.join(runs)}); "
                        f"pass one of them, e.g. --checkpoint={os.path.join(path, runs[0])}")
    if len(exports) == 1:
        return os.path.join(path, exports[0])
    choices = f" ({', '.join(exports)}); pass one of them" if exports else \
        "; pass a checkpoint file, a run folder or a .safetensors export"
    raise UserError(f"'{path}' is a folder with no generator checkpoint in it{_relative_hint(path)}{choices}")


# -----------------------------------------------------------------------------
# the training history stored with the weights

def training_history(path):
    """The per-epoch training record (train.py's history list) of a checkpoint, folder or export; None if absent."""
    path = checkpoint_file(path)
    if path.endswith('.safetensors'):
        return _export_info(path)[1].get('history')
    return load_checkpoint(path).get('history')


def training_record(path, ckpt=None):
    """What a checkpoint, folder or export records of its training data: (train.py's config dict or None, the
    training split's fingerprint or None, the config of the generator a soup was mixed with or None). Exports keep
    the config of the run they came from (and of the one mixed in), not the fingerprint. `ckpt`: the train.py file's
    dict when the caller has loaded it already (it is not read again)."""
    path = checkpoint_file(path)
    if path.endswith('.safetensors'):
        info = _export_info(path)[1]
        return info.get('train_config'), None, info.get('interpolated_train_config')
    if path.endswith('.onnx'):
        return None, None, None
    ckpt = load_checkpoint(path) if ckpt is None else ckpt
    if not isinstance(ckpt, dict):
        return None, None, None
    return ckpt.get('config'), ckpt.get('data_fingerprint') or None, None


# -----------------------------------------------------------------------------
# shipping a generator, and loading any generator

QUANT_SUFFIX = '.int8_scale'  # a quantized weight W is stored as int8 W and a float scale per output channel


def _quantize(weight, out_dim):
    """Symmetric int8 with one scale per output channel (dim `out_dim`): (int8 weight, float32 scale, broadcastable)."""
    other = [d for d in range(weight.dim()) if d != out_dim]
    scale = weight.abs().amax(dim=other, keepdim=True).clamp_min(1e-12) / 127
    return (weight / scale).round().clamp(-127, 127).to(torch.int8), scale.float()


def export_generator(path, G, extra=None, precision='fp16'):
    """Write G's weights as safetensors with its architecture config (and `extra` info) in the metadata.

    precision 'fp16' halves every float tensor; 'int8' also stores each convolution's weight as int8 with one
    scale per output channel (a quarter of fp32), dequantized by load_generator."""
    if precision not in ('fp16', 'int8'):
        raise UserError(f"unknown precision {precision!r}; use fp16 or int8")
    tensors = {}
    for name, value in G.state_dict().items():
        value = value.detach().cpu()
        if precision == 'int8' and value.dim() == 4:  # conv weights: [out, in, k, k]; transposed: [in, out, k, k]
            module = G.get_submodule(name.rsplit('.', 1)[0])
            out_dim = 1 if isinstance(module, torch.nn.ConvTranspose2d) else 0
            tensors[name], tensors[name + QUANT_SUFFIX] = _quantize(value.float(), out_dim)
        else:
            tensors[name] = value.half() if value.is_floating_point() else value
    meta = {'config': json.dumps(G.config), 'info': json.dumps(extra or {}), 'precision': precision}
    blob = safetensors_bytes({k: v.contiguous() for k, v in tensors.items()}, metadata=meta)
    atomic_write(path, lambda f: f.write(blob))


def _dequantize(stored):
    """A state dict in float32 from an export's tensors, int8 weights multiplied back by their scales."""
    state = {}
    for name, value in stored.items():
        if name.endswith(QUANT_SUFFIX):
            continue
        scale = stored.get(name + QUANT_SUFFIX)
        if scale is not None:
            value = value.float() * scale
        state[name] = value.float() if value.is_floating_point() else value
    return state


def _export_info(path):
    """(architecture config, info dict) from a safetensors export's metadata, without reading the tensors."""
    with safe_open(path, framework='pt') as f:
        meta = f.metadata()
    return json.loads(meta['config']), json.loads(meta.get('info', '{}'))


def load_generator(path, device='cpu', fold=True, ckpt=None):
    """Rebuild a generator from a train.py file (its EMA weights when present), a run folder, or an export.

    Returns (G in eval mode on `device`, a short description of what was loaded). With fold=True (for
    inference) BatchNorm is folded into the convolutions; pass fold=False to get the trainable structure. A caller
    that has already loaded the train.py file passes it as `ckpt` (it is not read again)."""
    path = checkpoint_file(path)
    if path.lower().endswith('.onnx'):
        raise UserError(f"'{path}' is an ONNX model, which runs on onnxruntime: pass --backend=onnx to colorize.py "
                        "(or use colorize_gan.light); PyTorch loads train.py checkpoints and .safetensors exports")
    if path.endswith('.safetensors'):
        if not os.path.exists(path):
            raise UserError(f"checkpoint '{path}' does not exist{_relative_hint(path)}; "
                            "pass the path of a generator file (a run folder, a checkpoint or an export)")
        try:
            with interrupt_after(), safe_open(path, framework='pt') as f:  # Ctrl-C here is no damaged file
                config = json.loads(f.metadata()['config'])
                precision = f.metadata().get('precision', 'fp16')
                state = _dequantize({k: f.get_tensor(k) for k in f.keys()})
        except Exception as e:
            raise UserError(f"cannot read '{path}' as a generator export ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:80] if str(e) else 'unreadable'}); the file may be "
                            "truncated or corrupt: download or export it again, or pass another generator file")
        what = f'{precision} weights'
    else:
        config, state, what = _checkpoint_weights(ckpt if ckpt is not None else load_checkpoint(path), path)
    G = build_generator(config)
    try:
        G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as e:
        raise UserError(f"'{path}' does not hold the weights of a {config} generator "
                        f"({str(e).splitlines()[1].strip()[:80] if len(str(e).splitlines()) > 1 else 'mismatch'}); "
                        "export it again or pass another generator file")
    G = G.to(device, memory_format=torch.channels_last).eval()  # oneDNN and cuDNN both run faster in NHWC
    if fold:
        fold_batchnorm(G)
    return G, f"{path} ({what}, {describe_generator(config)})"


def interpolate_weights(G, other, t):
    """Set G's weights to (1 - t) x its own + t x `other`'s (a generator of the same config), in place; integer
    buffers (BatchNorm's batch counts) stay G's. Weight averaging of two points of one fine-tuning path, as in model
    soups (Wortsman et al. 2022, arXiv 2203.05482): the mean of an L1-trained generator and its adversarially
    fine-tuned continuation can have less error than the first and more colour than it. t is a float in [0, 1];
    raises UserError for another t or a generator of another config."""
    if not 0.0 <= t <= 1.0:
        raise UserError(f"the interpolation {t} is not in [0, 1] (0 = the first generator, 1 = the other)")
    if other.config != G.config:
        raise UserError(f"cannot interpolate a {describe_generator(G.config)} generator with a "
                        f"{describe_generator(other.config)} one; both must have one architecture, width and size")
    theirs = other.state_dict()
    with torch.no_grad():
        for name, value in G.state_dict().items():
            if value.is_floating_point():
                value.mul_(1 - t).add_(theirs[name].to(value), alpha=t)
    return G


def _checkpoint_weights(ckpt, path):
    """(architecture config, the weights to use: EMA G's when present, description) of a train.py file's dict."""
    if not isinstance(ckpt, dict) or 'G' not in ckpt or 'model_config' not in ckpt:
        raise UserError(f"'{path}' is not a generator checkpoint from train.py (a format-1 discriminator "
                        "checkpoint, perhaps?); pass a run folder (its state.pt), its best.pt or an epochNNN.pt")
    use_ema = ckpt.get('G_ema') is not None
    when = f"in epoch {ckpt['epoch'] + 1}, after batch {ckpt['batch']}" if ckpt.get('batch') else \
        f"after epoch {ckpt['epoch']}"  # a run stopped mid-epoch (SIGTERM, a timed checkpoint)
    what = f"{'EMA ' if use_ema else ''}weights {when}"
    return ckpt['model_config'], ckpt['G_ema'] if use_ema else ckpt['G'], what

