"""Evaluate a generator on the whole test split, beside the grayscale-output baseline (L kept, ab = 0).

    python3 eval.py                                           # latest training checkpoint, else pretrained/
    python3 eval.py --data_dir=../shared/data/cifar10 --json

Metrics: MAE on RGB 0-255 (the metric of record), pixel accuracy at 2% and 5% (Nazeri et al.'s code), PSNR,
SSIM, and colourfulness (Hasler & Suesstrunk 2003) of the generated and the real images.
"""
import os
import sys
import time

import torch

from dataset import dataset_name, load_split, load_train_val
from models import PRETRAINED, load_generator
from utils import configure, evaluate, print_json, resolve_device, sample_grid, save_png

# -----------------------------------------------------------------------------
data_dir = 'data'  # image folder with test/ (train/ not needed), or 'data' = torchvision CIFAR-10
checkpoint = ''  # generator to evaluate; '' = ./<dataset>_train_generator/latest.pt if present, else the pretrained one
device = 'auto'  # auto | cpu | cuda
batch_size = 500
test_limit = 0  # evaluate on a fixed random subset of this many test images, 0 = all
split = 'test'  # test | val: the val_size training images train.py holds out, for choosing a model without the test split
val_size = 1000  # as in train.py
json = False  # also print one JSON object with every metric
samples = 'eval_samples.png'  # sample grid (grayscale | generated | original); '' = none
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], flags=('json',))
if batch_size < 1:
    sys.exit(f"error: --batch_size={batch_size} must be at least 1")
if split not in ('test', 'val'):
    sys.exit(f"error: unknown --split={split}; use test or val")

t_start = time.time()
dev = resolve_device(device)
if not checkpoint:
    trained = os.path.join(f'{dataset_name(data_dir)}_train_generator', 'latest.pt')
    checkpoint = trained if os.path.exists(trained) else PRETRAINED
    if not os.path.exists(checkpoint):
        sys.exit(f"error: no checkpoint at {trained} and no pretrained model at {PRETRAINED}; "
                 "train one with train.py or pass --checkpoint=PATH")
G, description = load_generator(checkpoint, dev)
print(f"evaluating {description}")
if split == 'val':
    test = load_train_val(data_dir, G.config['image_size'], val_size)[1].to(dev)
else:
    test = load_split(data_dir, 'test', G.config['image_size'], test_limit).to(dev)

autocast = torch.autocast('cuda', dtype=torch.bfloat16) if dev.type == 'cuda' else None
model, gray, colorfulness_real = evaluate(G, test, batch_size, autocast)
n = len(test)
if samples:
    save_png(samples, sample_grid([G], test, autocast=autocast))

rows = [('MAE, RGB 0-255 (lower is better)', 'mae', '.3f'), ('pixel accuracy @2% (Lab)', 'acc_2', '.4f'),
        ('pixel accuracy @5% (Lab)', 'acc_5', '.4f'), ('PSNR, dB', 'psnr', '.2f'),
        ('SSIM (Gaussian 11x11, sigma 1.5, RGB)', 'ssim', '.4f'), ('colourfulness', 'colorfulness', '.2f')]
print(f"\n{n} {'test images' if split == 'test' else 'held-out training images (--split=val)'} of {data_dir}")
print(f"| {'metric':<38} | {'model':>9} | {'grayscale':>9} |\n|{'-' * 40}|{'-' * 11}|{'-' * 11}|")
for label, key, fmt in rows:
    print(f"| {label:<38} | {model[key]:>9{fmt}} | {gray[key]:>9{fmt}} |")
print(f"| {'colourfulness of the real images':<38} | {colorfulness_real:>9.2f} | {'':>9} |")
print(f"\n{time.time() - t_start:.1f}s" + (f"; sample grid: {samples}" if samples else ''))
if json:
    print_json({'checkpoint': checkpoint, 'split': split, 'images': n, **model, 'colorfulness_real': colorfulness_real, 'gray': gray})
