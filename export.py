"""Export a trained generator for sharing: fp16 safetensors with its architecture and training record.

    python3 export.py --checkpoint=runs/gan32/cifar10_train_generator --out=pretrained/generator.safetensors

The file loads with no flags in eval.py, colorize.py and compare.py (--checkpoint=PATH); the EMA weights are
exported when the checkpoint has them.
"""
import os
import sys

from models import checkpoint_file, export_generator, load_generator
from utils import configure, load_checkpoint

# -----------------------------------------------------------------------------
checkpoint = ''  # a train.py generator checkpoint or its folder
out = 'pretrained/generator.safetensors'
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:])
if not checkpoint:
    sys.exit("error: pass --checkpoint=<out_dir>/<dataset>_train_generator (a train.py generator checkpoint)")
G, description = load_generator(checkpoint, 'cpu', fold=False)  # export the trainable structure
ckpt = load_checkpoint(checkpoint_file(checkpoint))
last = ckpt['history'][-1] if ckpt.get('history') else {}
info = {'epochs': ckpt['epoch'], 'steps': ckpt['step'], 'train_seconds': round(ckpt['elapsed_s']),
        'ema': ckpt.get('G_ema') is not None, 'train_config': ckpt['config'], 'val_mae': last.get('val_mae'),
        'history': ckpt.get('history')}  # the validation curve travels with the weights (compare.py plots it)
export_generator(out, G, info)
print(f"exported {description} -> {out} ({os.path.getsize(out) / 1e6:.1f} MB)")
