"""Export a trained generator for sharing: safetensors with its architecture and training record in the metadata.

    python3 export.py --checkpoint=runs/gan64/best.pt
    python3 export.py --checkpoint=runs/photo/best.pt --precision=int8 --out_dir=pretrained --out_name=photo.safetensors

The file loads with no flags in eval.py, colorize.py and compare.py (--checkpoint=PATH); the EMA weights are
exported when the checkpoint has them.

    python3 export.py --checkpoint=runs/photo_v2b/epoch002.pt --interpolate_with=runs/photo_v2/epoch002.pt \\
        --interpolation=0.15 --out_name=soup.safetensors

exports a weighted mean of two generators of one architecture (a model soup: 0.85 x the checkpoint + 0.15 x the
other; with --format=onnx too); choose the share on held-out training images (eval.py --split=val), never on a
test set. The soup's file keeps the checkpoint's training record (its history) and names the other and the share;
its own validation MAE is not known, so the file gives none.

    python3 export.py --format=onnx --checkpoint=pretrained/photo_generator.safetensors --out_dir=runs/onnx

--format=onnx writes the generator for onnxruntime (and light.py, which colorizes without PyTorch): fp32, BatchNorm
folded, ONNX opset 17, dynamic batch, height and width, where height and width must be multiples of the
generator's `multiple` (32 for the encoder U-Net; image_size / 2 for the paper's U-Net: 32 for the 64 px photo
model, 16 for the CIFAR-10 model); input L [N,1,H,W] = CIE L / 50 - 1 (and hints [N,3,H,W] for a hint model),
output ab [N,2,H,W] = CIE ab / 110; the config in the model's metadata (onnx_export.py). It takes a train.py
checkpoint or an export, and needs `pip install onnx`.
"""
import os
import sys

import colorize_gan.script  # noqa: F401  (before the library loads PyTorch: one-line errors and a quiet Ctrl-C)
from colorize_gan.checkpoint import (
    checkpoint_file,
    export_generator,
    load_checkpoint,
    load_generator,
    training_record,
)
from colorize_gan.checkpoint import interpolate_weights as interpolate
from colorize_gan.utils import UserError, configure

# -----------------------------------------------------------------------------
checkpoint = ''  # a train.py run folder (its state.pt), best.pt or epochNNN.pt; with --format=onnx, an export too
out_dir = ''  # where the export goes; '' = the folder the checkpoint is in
out_name = ''  # the export's file name; '' = generator.safetensors (generator.onnx with --format=onnx)
precision = 'fp16'  # fp16 | int8 (convolution weights as int8 with a scale per output channel: half the size)
format = 'safetensors'  # safetensors | onnx (fp32, BatchNorm folded, for onnxruntime: see above)
overwrite = False  # replace an existing file of that name (else it is refused)
interpolate_with = ''  # another generator file of the same config (e.g. an earlier run this one continued)
interpolation = 0.0  # with interpolate_with: export (1 - x) * checkpoint's weights + x * interpolate_with's (0-1)
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], flags=('overwrite',))
if not checkpoint:
    sys.exit("error: pass --checkpoint=<run folder> or <run folder>/best.pt (a train.py checkpoint)")
if format not in ('safetensors', 'onnx'):
    sys.exit(f"error: --format={format} is not supported; use --format=safetensors or --format=onnx")
if format == 'onnx' and precision != 'fp16':
    raise UserError(f"--precision={precision} is for .safetensors exports; an ONNX export is fp32 (drop --precision, "
                    "or use --format=safetensors)")
if os.path.basename(out_name) != out_name:
    raise UserError(f"--out_name={out_name} is a path; pass a file name, and the folder as --out_dir")
path = checkpoint_file(checkpoint)
if format == 'safetensors' and path.endswith(('.safetensors', '.onnx')):  # before any other advice: it cannot work
    raise UserError(f"'{path}' is already an export; pass a train.py checkpoint (.pt, or its run folder)")
folder = os.path.expanduser(out_dir) or os.path.dirname(os.path.abspath(path))
out = os.path.join(folder, out_name or f'generator.{format}')
if not out.endswith(f'.{format}'):
    raise UserError(f"--out_name={out_name} does not end in .{format}, the file's format (--format={format}); the "
                    "scripts tell exports apart by it")
if interpolate_with:
    if not 0.0 < interpolation <= 1.0:  # NaN fails this too
        raise UserError(f"--interpolation={interpolation} is not in (0, 1], the share of --interpolate_with's "
                        "weights; pass it with --interpolate_with (at 0 the mix would be --checkpoint alone)")
    interpolate_with = checkpoint_file(interpolate_with)
    if not os.path.exists(interpolate_with):
        raise UserError(f"--interpolate_with={interpolate_with} does not exist; pass a generator file (a train.py "
                        "checkpoint, a run folder or a .safetensors export) of the same architecture")
    if interpolate_with.endswith('.onnx'):
        raise UserError(f"--interpolate_with={interpolate_with} is an ONNX model; pass the train.py checkpoint or the "
                        ".safetensors export it was made from")
elif interpolation:
    raise UserError(f"--interpolation={interpolation} needs --interpolate_with=<generator file>, the generator to "
                    "mix with; alone it would do nothing")
if os.path.exists(out) and not overwrite:
    raise UserError(f"'{out}' exists; pass --overwrite to replace it, or another --out_name/--out_dir")
try:
    os.makedirs(folder, exist_ok=True)
except OSError as e:
    raise UserError(f"cannot write to --out_dir={folder} ({e.strerror}); choose a folder you can write to") from None


def mix(G, description):
    """G interpolated with --interpolate_with when asked (checkpoint.interpolate_weights), and its description."""
    if not interpolate_with:
        return G, description, {}
    other, other_description = load_generator(interpolate_with, 'cpu', fold=False)
    interpolate(G, other, interpolation)
    return G, f"{1 - interpolation:g} x {description} + {interpolation:g} x {other_description}", \
        {'interpolated_with': other_description, 'interpolation': interpolation,
         'interpolated_train_config': training_record(interpolate_with)[0]}  # eval.py --split=val checks both


if format == 'onnx':  # any generator file, export included: the inference structure (BatchNorm folded), fp32
    from colorize_gan.models import fold_batchnorm
    from colorize_gan.onnx_export import OPSET, export_onnx
    G, description, _ = mix(*load_generator(path, 'cpu', fold=False))
    export_onnx(fold_batchnorm(G), out)
    print(f"exported {description} -> {out} ({os.path.getsize(out) / 1e6:.1f} MB, ONNX opset {OPSET}, height and "
          f"width multiples of {G.multiple})")
    sys.exit(0)
ckpt = load_checkpoint(path)
# the trainable structure, EMA weights if any
G, description, extra = mix(*load_generator(path, 'cpu', fold=False, ckpt=ckpt))
last = ckpt['history'][-1] if ckpt.get('history') and not extra else {}  # a soup was never validated as a whole
info = {'epochs': ckpt['epoch'], 'steps': ckpt['step'], 'train_seconds': round(ckpt['elapsed_s']),
        'ema': ckpt.get('G_ema') is not None, 'train_config': ckpt['config'], 'val_mae': last.get('val_mae'),
        'history': ckpt.get('history'), **extra}  # the validation curve travels with the weights (compare.py plots it)
export_generator(out, G, info, precision)
print(f"exported {description} -> {out} ({os.path.getsize(out) / 1e6:.1f} MB)")
