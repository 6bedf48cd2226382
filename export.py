"""Export a trained generator for sharing: safetensors with its architecture and training record in the metadata.

    python3 export.py --checkpoint=runs/gan64/best.pt
    python3 export.py --checkpoint=runs/photo/best.pt --precision=int8 --out_dir=pretrained --out_name=photo.safetensors

The file loads with no flags in eval.py, colorize.py and compare.py (--checkpoint=PATH); the EMA weights are
exported when the checkpoint has them.
"""
import os
import sys

from checkpoint import checkpoint_file, export_generator, load_checkpoint, load_generator
from utils import configure

# -----------------------------------------------------------------------------
checkpoint = ''  # a train.py run folder (its state.pt), best.pt or epochNNN.pt
out_dir = ''  # where the export goes; '' = the folder the checkpoint is in
out_name = 'generator.safetensors'  # the export's file name
precision = 'fp16'  # fp16 | int8 (convolution weights as int8 with a scale per output channel: half the size)
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:])
if not checkpoint:
    sys.exit("error: pass --checkpoint=<run folder> or <run folder>/best.pt (a train.py checkpoint)")
path = checkpoint_file(checkpoint)
if path.endswith('.safetensors'):
    sys.exit(f"error: '{path}' is already an export; pass a train.py checkpoint (.pt)")
ckpt = load_checkpoint(path)
G, description = load_generator(path, 'cpu', fold=False, ckpt=ckpt)  # the trainable structure, EMA weights if any
last = ckpt['history'][-1] if ckpt.get('history') else {}
info = {'epochs': ckpt['epoch'], 'steps': ckpt['step'], 'train_seconds': round(ckpt['elapsed_s']),
        'ema': ckpt.get('G_ema') is not None, 'train_config': ckpt['config'], 'val_mae': last.get('val_mae'),
        'history': ckpt.get('history')}  # the validation curve travels with the weights (compare.py plots it)
out = os.path.join(os.path.expanduser(out_dir) or os.path.dirname(os.path.abspath(path)), out_name)
export_generator(out, G, info, precision)
print(f"exported {description} -> {out} ({os.path.getsize(out) / 1e6:.1f} MB)")
