"""The checkpoint format: atomic writes, safe loads, train.py's state and resume, generator export and loading.

A run folder holds <dataset>_train_generator/ (latest.pt: G, EMA G, G's optimizer, counters, RNG states, config,
history; best.pt and epochNNN.pt: G and EMA G only) and <dataset>_train_discriminator/latest.pt (D and its optimizer).
"""
import json
import os
import shutil
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from metrics import colorfulness_ratios
from models import build_generator, fold_batchnorm

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pretrained')
CIFAR10_GENERATOR = os.path.join(PRETRAINED_DIR, 'generator.safetensors')  # the paper's reproduction: eval.py's default
PHOTO_GENERATOR = os.path.join(PRETRAINED_DIR, 'photo_generator.safetensors')  # natural photos at 64 px: colorize.py's
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write_fn, mode='wb'):
    """Call write_fn(file) on a temp file beside `path`, then rename it over `path`: readers never see half a file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path, state):
    """torch.save a dict of tensors/plain values atomically."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path, map_location='cpu', verb='load checkpoint',
                    fix="pass a file written by train.py or a .safetensors file from pretrained/"):
    """torch.load with weights_only=True: tensors and plain containers only, never arbitrary objects. A missing or
    damaged file exits with one line: 'cannot <verb> <path> (<reason>); <fix>'."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise SystemExit(f"error: checkpoint '{path}' does not exist{_relative_hint(path)}; "
                         "pass --checkpoint=PATH to a generator checkpoint")
    except Exception as e:  # truncated, not a checkpoint, or holds pickled objects
        reason = f"{type(e).__name__}: {(str(e).splitlines() or ['unreadable'])[0][:120]}"
        raise SystemExit(f"error: cannot {verb} '{path}' ({reason}); {fix}")


def _relative_hint(path):
    """' (resolved from /cwd)' for a relative path, so a user running from another folder sees why it is missing."""
    return '' if os.path.isabs(path) else f' (relative paths are resolved from {os.getcwd()})'


# -----------------------------------------------------------------------------
# where things live in a run folder

def run_files(out_dir, name):
    """Paths of a run's checkpoints for dataset `name`: {'G', 'D', 'best', 'folder'}."""
    folder = os.path.join(out_dir, f'{name}_train_generator')
    return {'G': os.path.join(folder, 'latest.pt'), 'best': os.path.join(folder, 'best.pt'), 'folder': folder,
            'D': os.path.join(out_dir, f'{name}_train_discriminator', 'latest.pt')}


def checkpoint_file(path):
    """Resolve what a user passes as --checkpoint to one file: a file stands for itself, a generator folder for its
    latest.pt, a run folder for the latest.pt of the one <dataset>_train_generator/ it holds."""
    if not os.path.isdir(path):
        return path
    if os.path.exists(os.path.join(path, 'latest.pt')):
        return os.path.join(path, 'latest.pt')
    runs = sorted(d for d in os.listdir(path) if d.endswith('_train_generator'))
    exports = sorted(f for f in os.listdir(path) if f.endswith('.safetensors'))
    if len(runs) == 1:
        return os.path.join(path, runs[0], 'latest.pt')
    if len(runs) > 1:
        raise SystemExit(f"error: '{path}' holds several runs ({', '.join(runs)}); "
                         f"pass one of them, e.g. --checkpoint={os.path.join(path, runs[0])}")
    if len(exports) == 1:
        return os.path.join(path, exports[0])
    choices = f" ({', '.join(exports)}); pass one of them" if exports else \
        "; pass a checkpoint file, a <dataset>_train_generator/ folder, a run folder or a .safetensors export"
    raise SystemExit(f"error: '{path}' is a folder with no generator checkpoint in it{_relative_hint(path)}{choices}")


# -----------------------------------------------------------------------------
# train.py's state: write it each epoch, read it back on resume

def save_training_state(files, G, G_ema, D, opt_G, opt_D, rng, *, epoch, step, elapsed_s, config, history,
                        batch=0, extra=None, snapshot=False, best=False):
    """Write a run's checkpoints after `epoch` whole epochs and `batch` batches of the next (0 at an epoch's end):
    D first, then G (and, at an epoch's end, snapshot/best copies when asked). `extra` goes into G's file (what a
    mid-epoch resume needs). A failed write leaves the previous files as they were and exits with one line."""
    # D first: a kill between the two writes leaves G behind D, which resume tolerates
    state_D = {'D': D.state_dict(), 'opt_D': opt_D.state_dict(), 'epoch': epoch, 'batch': batch,
               'model_config': D.config}
    state_G = {'G': G.state_dict(), 'G_ema': G_ema.state_dict() if G_ema is not None else None, 'epoch': epoch,
               'batch': batch, 'step': step, 'elapsed_s': elapsed_s, 'model_config': G.config, 'config': config,
               'history': history}
    writes = [(files['D'], state_D)]
    if snapshot:  # enough to evaluate or export this epoch later, not to resume
        writes.append((os.path.join(files['folder'], f'epoch{epoch:03d}.pt'), state_G))
    if best:
        writes.append((files['best'], state_G))
    writes.append((files['G'], {**state_G, 'opt_G': opt_G.state_dict(), 'rng': rng, **(extra or {})}))
    for path, state in writes:
        try:
            save_checkpoint(path, state)
        except OSError as e:
            raise SystemExit(f"error: could not write checkpoint '{path}' ({e.strerror or e}); the previous one is "
                             "intact. Free some disk space (or pass another --out_dir) and rerun to resume")


def snapshot_to_best(files, epoch):
    """Make best.pt a copy of epoch `epoch`'s snapshot (after a change of selection rule); False if it was not kept."""
    snapshot = os.path.join(files['folder'], f'epoch{epoch:03d}.pt')
    if not os.path.exists(snapshot):
        return False
    with open(snapshot, 'rb') as src:
        atomic_write(files['best'], lambda f: shutil.copyfileobj(src, f))
    return True


def resume_training_state(files, G, G_ema, D, opt_G, opt_D, adversarial=True):
    """Load a run's latest checkpoints into the models and optimizers; returns the G checkpoint (counters, history,
    RNG states, mid-epoch position) or None when there is nothing to resume. A different architecture or a damaged
    file is a one-line error: a run never silently starts over."""
    if not os.path.exists(files['G']):
        return None
    fix = "it is truncated, corrupt or not train.py's; pass another --out_dir, or --resume=False to start over " \
          "(and overwrite it)"
    ckpt = load_checkpoint(files['G'], verb='resume from', fix=fix)
    if not isinstance(ckpt, dict) or 'opt_G' not in ckpt:
        raise SystemExit(f"error: cannot resume from '{files['G']}' (not a training checkpoint); {fix}")
    if ckpt['model_config'] != G.config:
        raise SystemExit(f"error: {files['G']} holds a model with {ckpt['model_config']} but this run asks for "
                         f"{G.config}; pass the same --width/--image_size, another --out_dir, or --resume=False")
    G.load_state_dict(ckpt['G'])
    opt_G.load_state_dict(ckpt['opt_G'])
    if G_ema is not None and ckpt.get('G_ema') is not None:
        G_ema.load_state_dict(ckpt['G_ema'])
    if os.path.exists(files['D']):
        ckpt_D = load_checkpoint(files['D'], verb='resume from', fix=fix)
        if (ckpt_D['epoch'], ckpt_D.get('batch', 0)) != (ckpt['epoch'], ckpt.get('batch', 0)):
            print(f"warning: the discriminator checkpoint is from epoch {ckpt_D['epoch']}, the generator's from "
                  f"{ckpt['epoch']} (a kill between the two writes); training goes on from the generator's")
        D.load_state_dict(ckpt_D['D'])
        opt_D.load_state_dict(ckpt_D['opt_D'])
    elif adversarial:
        print(f"warning: no discriminator checkpoint at {files['D']}; D starts fresh")
    return ckpt


# -----------------------------------------------------------------------------
# the training history stored with the weights

def training_history(path):
    """The per-epoch training record (train.py's history list) of a checkpoint, folder or export; None if absent."""
    path = checkpoint_file(path)
    if path.endswith('.safetensors'):
        return _export_info(path)[1].get('history')
    return load_checkpoint(path).get('history')


SELECTION_RULES = ('mae', 'color')


def best_epoch(history, min_color, rule='mae', max_mae=0.93):
    """train.py's best.pt rule, on validation; None if no epoch qualifies.

    'mae': the lowest MAE among epochs whose colorfulness is at least min_color of the real images' (any epoch when
    min_color is 0). 'color': the colorfulness closest to the real images' among epochs whose MAE is at most max_mae
    x the grayscale output's. Epochs logged before either was recorded count as colorfulness 0 (never 'color')."""
    ratios = colorfulness_ratios(history) or [0.0] * len(history)
    if rule == 'mae':
        eligible = [(h['val_mae'], h['epoch']) for h, ratio in zip(history, ratios) if ratio >= min_color]
    else:
        eligible = [(abs(1 - ratio), h['epoch']) for h, ratio in zip(history, ratios)
                    if ratio > 0 and h['val_mae'] <= max_mae * h.get('val_mae_gray', 0.0)]
    return min(eligible)[1] if eligible else None


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
        raise SystemExit(f"error: unknown precision {precision!r}; use fp16 or int8")
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


def load_generator(path, device='cpu', fold=True):
    """Rebuild a Generator from a train.py checkpoint (its EMA weights when present), a folder, or an export.

    Returns (G in eval mode on `device`, a short description of what was loaded). With fold=True (for
    inference) BatchNorm is folded into the convolutions; pass fold=False to get the trainable structure."""
    path = checkpoint_file(path)
    if path.endswith('.safetensors'):
        if not os.path.exists(path):
            raise SystemExit(f"error: checkpoint '{path}' does not exist{_relative_hint(path)}; "
                             "pass --checkpoint=PATH to a generator checkpoint")
        try:
            with safe_open(path, framework='pt') as f:
                config = json.loads(f.metadata()['config'])
                precision = f.metadata().get('precision', 'fp16')
                state = _dequantize({k: f.get_tensor(k) for k in f.keys()})
        except Exception as e:
            raise SystemExit(f"error: cannot read '{path}' as a generator export ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:80] if str(e) else 'unreadable'}); the file may be "
                             "truncated or corrupt: download or export it again, or pass another --checkpoint")
        what = f'{precision} weights'
    else:
        ckpt = load_checkpoint(path)
        if not isinstance(ckpt, dict) or 'G' not in ckpt or 'model_config' not in ckpt:
            raise SystemExit(f"error: '{path}' is not a generator checkpoint from train.py "
                             "(its discriminator checkpoint, perhaps?); "
                             "pass <out_dir>/<dataset>_train_generator/latest.pt")
        config = ckpt['model_config']
        use_ema = ckpt.get('G_ema') is not None
        state = ckpt['G_ema'] if use_ema else ckpt['G']
        what = f"{'EMA ' if use_ema else ''}weights after epoch {ckpt['epoch']}"
    G = build_generator(config)
    try:
        G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as e:
        raise SystemExit(f"error: '{path}' does not hold the weights of a {config} generator "
                         f"({str(e).splitlines()[1].strip()[:80] if len(str(e).splitlines()) > 1 else 'mismatch'}); "
                         "export it again or pass another --checkpoint")
    G = G.to(device, memory_format=torch.channels_last).eval()  # oneDNN and cuDNN both run faster in NHWC
    if fold:
        fold_batchnorm(G)
    return G, f"{path} ({what}, {describe_generator(config)})"


def describe_generator(config):
    """'width 32, 64px' for the paper's U-Net; 'tf_efficientnet_lite0 U-Net, width 32, 128px, hints' for the others."""
    arch = f"{config['encoder']} U-Net, " if config.get('arch') == 'encoder_unet' else ''
    return f"{arch}width {config['width']}, {config['image_size']}px" + (', hints' if config.get('hints') else '')
