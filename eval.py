"""Evaluate one generator on a test split, beside the grayscale-output baseline (L kept, ab = 0).

    python3 eval.py                                        # the shipped CIFAR-10 model on torchvision's CIFAR-10
    python3 eval.py --data_dir=data/cifar10 --as_json      # an image folder with test/
    python3 eval.py --data_dir=data/natural/full --checkpoint=pretrained/photo_generator.safetensors --full_resolution

Metrics: MAE on RGB 0-255 (the metric of record), pixel accuracy at 2% and 5% (Nazeri et al.'s code), PSNR,
SSIM, and colorfulness (Hasler & Suesstrunk 2003) of the generated and the real images.
"""
import json
import os
import sys
import time

from checkpoint import CIFAR10_GENERATOR, load_generator
from dataset import dataset_name, list_images, load_split, load_train_val
from metrics import evaluate, evaluate_photos
from plots import sample_grid, save_png
from utils import autocast_for, configure, resolve_device

# -----------------------------------------------------------------------------
data_dir = 'data'  # image folder with test/ (train/ not needed), or 'data' = torchvision CIFAR-10
checkpoint = ''  # a checkpoint, run folder or export; '' = runs/<dataset>_train_generator if any, else CIFAR-10's
device = 'auto'  # auto | cpu | cuda
batch_size = 500
test_limit = 0  # evaluate on a fixed random subset of this many test images, 0 = all
split = 'test'  # test | val: the training images train.py holds out, to choose a model without the test split
val_size = 1000  # as in train.py
image_size = 0  # px the test images are resized to; 0 = the size the model was trained at
full_resolution = False  # colorize each test image at its own size through colorize.py's pipeline and score that
as_json = False  # also print one JSON object with every metric
out_dir = 'runs/eval'  # the sample grid (grayscale | generated | original) goes here; '' = none
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], flags=('as_json', 'full_resolution'))
if batch_size < 1:
    sys.exit(f"error: --batch_size={batch_size} must be at least 1")
if split not in ('test', 'val'):
    sys.exit(f"error: unknown --split={split}; use test or val")
if image_size < 0 or image_size & (image_size - 1):
    sys.exit(f"error: --image_size={image_size} must be 0 (the model's size) or a power of two")
if full_resolution and split != 'test':
    sys.exit("error: --full_resolution reads the test/ images at their own size; it does not combine with --split=val")

t_start = time.time()
dev = resolve_device(device)
if not checkpoint:
    trained = os.path.join('runs', f'{dataset_name(data_dir)}_train_generator')  # train.py's default out_dir
    checkpoint = trained if os.path.exists(os.path.join(trained, 'latest.pt')) else CIFAR10_GENERATOR
G, description = load_generator(checkpoint, dev)
print(f"evaluating {description}")
size = image_size or G.config['image_size']
autocast = autocast_for(dev)
samples = ''
if full_resolution:  # the pipeline people use: whole photos, the model at its working size, ab upsampled onto L
    photos = list_images(os.path.join(data_dir, 'test'))[0] if os.path.isdir(os.path.join(data_dir, 'test')) else []
    if not photos:
        sys.exit(f"error: no images under '{os.path.join(data_dir, 'test')}'; --full_resolution needs a folder of "
                 "colour photos in test/ (python3 natural_photos.py writes data/natural/full/test/)")
    photos = photos[:test_limit or None]
    model, gray, colorfulness_real = evaluate_photos(G, photos, dev, image_size)
    n, name = len(photos), 'full-resolution photos'
else:
    if split == 'val':
        test = load_train_val(data_dir, size, val_size)[1].to(dev)
    else:
        test = load_split(data_dir, 'test', size, test_limit).to(dev)
    model, gray, colorfulness_real = evaluate(G, test, batch_size, autocast)
    n, name = len(test), 'test images' if split == 'test' else 'held-out training images (--split=val)'
    if out_dir:
        stem = os.path.splitext(os.path.basename(os.path.normpath(checkpoint)))[0]
        samples = os.path.join(out_dir, f'{test.name}_{split}_{stem}_samples.png')
        save_png(samples, sample_grid([G], test, autocast=autocast))

rows = [('MAE, RGB 0-255 (lower is better)', 'mae', '.3f'), ('pixel accuracy @2% (Lab)', 'acc_2', '.4f'),
        ('pixel accuracy @5% (Lab)', 'acc_5', '.4f'), ('PSNR, dB', 'psnr', '.2f'),
        ('SSIM (Gaussian 11x11, sigma 1.5, RGB)', 'ssim', '.4f'), ('colorfulness', 'colorfulness', '.2f')]
print(f"\n{n} {name} of {data_dir}" + (f" at {size}px" if not full_resolution else ''))
print(f"| {'metric':<38} | {'model':>9} | {'grayscale':>9} |\n|{'-' * 40}|{'-' * 11}|{'-' * 11}|")
for label, key, fmt in rows:
    print(f"| {label:<38} | {model[key]:>9{fmt}} | {gray[key]:>9{fmt}} |")
print(f"| {'colorfulness of the real images':<38} | {colorfulness_real:>9.2f} | {'':>9} |")
print(f"\n{time.time() - t_start:.1f}s" + (f"; sample grid: {samples}" if samples else ''))
if as_json:
    print(json.dumps({'checkpoint': checkpoint, 'split': split, 'images': n, 'image_size': size,
                      'full_resolution': full_resolution, **model,
                      'colorfulness_real': colorfulness_real, 'gray': gray}), flush=True)
