"""Evaluate one generator on a test split, beside the grayscale-output baseline (L kept, ab = 0).

    python3 eval.py                                        # the shipped CIFAR-10 model on torchvision's CIFAR-10
    python3 eval.py --data_dir=data/cifar10 --as_json      # an image folder with test/
    python3 eval.py --data_dir=../shared/data/photos_dev --full_resolution   # whole photos, the shipped photo model

Metrics: MAE on RGB 0-255 (the metric of record), CIEDE2000 (mean over pixels), pixel accuracy at 2% and 5%
(Nazeri et al.'s code), PSNR, SSIM, and colorfulness (Hasler & Suesstrunk 2003) of the generated and the real images;
with --full_resolution also the share of photos better than the grayscale output (by MAE).
"""
import json
import os
import sys
import time

import colorize_gan.script  # noqa: F401  (before the library loads PyTorch: one-line errors and a quiet Ctrl-C)
from colorize_gan.checkpoint import (
    CIFAR10_GENERATOR,
    PHOTO_GENERATOR,
    checkpoint_file,
    load_checkpoint,
    load_generator,
    training_record,
)
from colorize_gan.dataset import dataset_name, load_split, load_train_val, split_fingerprint, split_folders
from colorize_gan.device import autocast_for, resolve_device
from colorize_gan.evaluation import evaluate, evaluate_photos
from colorize_gan.hints import HINT_SPREAD, check_hint_spread
from colorize_gan.images import OTHER_TYPE, list_images
from colorize_gan.plots import sample_grid, save_png
from colorize_gan.utils import UserError, check_out_dir, check_outside, configure

# -----------------------------------------------------------------------------
data_dir = 'data'  # image folder with test/ (train/ not needed), or 'data' = torchvision CIFAR-10
checkpoint = ''  # run folder, checkpoint or export; '' = runs/<dataset> if any, else the shipped model
device = 'auto'  # auto | cpu | cuda
batch_size = 500
test_limit = 0  # evaluate on a fixed random subset of this many test images, 0 = all
split = 'test'  # test | val: the training images train.py holds out, to choose a model without the test split
val_size = 1000  # as in train.py; taken from the model's training record when it has one
image_size = 0  # px the test images are resized to; 0 = the size the model was trained at
full_resolution = False  # whole photos (data_dir/test/ or data_dir) at full size through colorize.py's pipeline
upsample = 'bicubic'  # full_resolution: how ab reaches full size, bicubic | guided (guided filter on L), as colorize.py
hints = 0  # a hint model: this many simulated user hints per image (or whole photo), from the real colours
hint_spread = HINT_SPREAD  # how far each hint's correction spreads, x the short side (as colorize.py); 0 = off
saturation = 1.0  # full_resolution: scales the predicted chroma, as colorize.py's --saturation (0-10)
as_json = False  # also print one JSON object with every metric
out_dir = 'runs/eval'  # the sample grid (grayscale | generated | original) goes here; '' = none
# -----------------------------------------------------------------------------
_, given = configure(globals(), sys.argv[1:], flags=('as_json', 'full_resolution'), given=True)
if batch_size < 1:
    sys.exit(f"error: --batch_size={batch_size} must be at least 1")
if split not in ('test', 'val'):
    sys.exit(f"error: unknown --split={split}; use test or val")
if image_size < 0 or image_size & (image_size - 1):
    sys.exit(f"error: --image_size={image_size} must be 0 (the model's size) or a power of two")
if upsample not in ('bicubic', 'guided'):
    raise UserError(f"--upsample={upsample}; use bicubic or guided")
if not 0 <= saturation <= 10 or saturation != 1 and not full_resolution:
    raise UserError(f"--saturation={saturation} must be between 0 and 10, and works with --full_resolution")
if upsample != 'bicubic' and not full_resolution:
    raise UserError(f"--upsample={upsample} works with --full_resolution (small images are scored at the model's size)")
if hints < 0:
    raise UserError(f"--hints={hints} must be >= 0 (simulated user hints per image)")
if 'hint_spread' in given and not hints:
    raise UserError(f"--hint_spread={hint_spread} spreads simulated hints: pass --hints=N with it")
try:
    hint_spread = check_hint_spread(hint_spread)
except ValueError as e:
    raise UserError(f"--{e}") from None
if test_limit < 0:
    raise UserError(f"--test_limit={test_limit} must be >= 0 (0 = every test image)")
if out_dir and not full_resolution:  # the sample grid's folder (whole photos make no grid)
    check_out_dir(out_dir)
    check_outside(out_dir, split_folders(data_dir))
if split == 'val' and test_limit:
    raise UserError(f"--test_limit={test_limit} cuts the test split; --split=val scores the held-out images whole")
if full_resolution and split != 'test':
    sys.exit("error: --full_resolution reads the test/ images at their own size; it does not combine with --split=val")

t_start = time.time()
dev = resolve_device(device)
chosen = ''
if not checkpoint:
    trained = os.path.join('runs', dataset_name(data_dir))  # train.py's default run folder for this data
    legacy = os.path.join('runs', f'{dataset_name(data_dir)}_train_generator')  # and where older versions trained
    for candidate in (trained, legacy):
        if os.path.exists(os.path.join(candidate, 'state.pt')) or os.path.exists(os.path.join(candidate, 'latest.pt')):
            checkpoint, chosen = candidate, f"the run train.py writes for --data_dir={data_dir}"
            break
    else:
        checkpoint, chosen = (PHOTO_GENERATOR, "colorize.py's default, the shipped photo model") if full_resolution \
            else (CIFAR10_GENERATOR, "the shipped CIFAR-10 model")
ckpt_file = checkpoint_file(checkpoint)  # a train.py file is read once, for the weights and (--split=val) its record
ckpt = load_checkpoint(ckpt_file) if split == 'val' and ckpt_file.endswith('.pt') else None
G, description = load_generator(ckpt_file, dev, ckpt=ckpt)
print(f"evaluating {description}" + (f"\n(no --checkpoint: {chosen}; pass --checkpoint=<run folder, checkpoint "
                                       "or export> to evaluate another)" if chosen else ''))
size = image_size or G.config['image_size']
if hints and not G.hints:
    raise UserError(f"--hints={hints}: {description} has no hint input; pass a model trained with --hints=True")
autocast = autocast_for(dev)
samples = ''
if full_resolution:  # the pipeline people use: whole photos, the model at its working size, ab upsampled onto L
    folder = os.path.join(data_dir, 'test') if os.path.isdir(os.path.join(data_dir, 'test')) else data_dir
    photos, left_out = list_images(folder) if os.path.isdir(folder) else ([], [])
    if not photos:
        raise UserError(f"no images under '{folder}'; --full_resolution needs a folder of colour photos (or one with "
                        "test/ in it), e.g. ../shared/data/photos_dev, or data/natural/full from "
                        "tools/natural_photos.py")
    photos = photos[:test_limit or None]
    model, gray, colorfulness_real = evaluate_photos(G, photos, dev, image_size, saturation, upsample, hints,
                                                     hint_spread=hint_spread)
    n = len(photos) - len(model['skipped'])
    skipped = model['skipped'] = [(path, reason[0]) for path, reason in left_out if reason == OTHER_TYPE] \
        + model['skipped']  # every file left out, in the JSON too
    if skipped:  # what the folder held beside colour photos: left out of every figure, and said
        print(f"skipped {len(skipped)} file(s) that are not colour photos to score: "
              + '; '.join(f"{os.path.basename(path)} ({reason})" for path, reason in skipped[:5])
              + ('; ...' if len(skipped) > 5 else ''))
    name = 'full-resolution photos'
else:
    if split == 'val':  # the images the model's own run held out: of another folder or --val_size, some trained on
        record, fingerprint, mixed = training_record(ckpt_file, ckpt)
        record = record or {}
        held = lambda config: (dataset_name(config['data_dir']), config.get('val_size'))  # noqa: E731
        if mixed and record and held(mixed) != held(record):
            raise UserError(f"{description} mixes generators whose runs held out other images ({held(record)[0]}, "
                            f"{held(record)[1]} and {held(mixed)[0]}, {held(mixed)[1]}): no image is held out of both, "
                            "so --split=val has none to score; choose soups of runs of one data folder and --val_size")
        trained_with = record.get('val_size')
        if trained_with and 'val_size' in given and val_size != trained_with:
            raise UserError(f"--val_size={val_size}, but {description} was trained holding out {trained_with} "
                            "images; the others were trained on, so drop --val_size (it is taken from the model)")
        named = os.path.basename(os.path.normpath(record.get('data_dir', ''))) not in ('', '.', '..')  # not '.'
        if named and dataset_name(record['data_dir']) != dataset_name(data_dir):
            raise UserError(f"{description} was trained on --data_dir={record['data_dir']}, not {data_dir}: the "
                            "images held out there are not these; pass its data folder for --split=val")
        if fingerprint and fingerprint != split_fingerprint(data_dir, 'train', record.get('image_size', size)):
            raise UserError(f"{description} was trained on other images than --data_dir={data_dir} holds (their "
                            "names or sizes differ): the images held out there are not these")
        val_size = trained_with or val_size
        test = load_train_val(data_dir, size, val_size)[1].to(dev)
    else:
        test = load_split(data_dir, 'test', size, test_limit).to(dev)
    model, gray, colorfulness_real = evaluate(G, test, batch_size, autocast, hints=hints,
                                                hint_spread=hint_spread)
    n, name = len(test), 'test images' if split == 'test' else 'held-out training images (--split=val)'
    if out_dir:
        stem = os.path.splitext(os.path.basename(os.path.normpath(checkpoint)))[0]
        samples = os.path.join(out_dir, f'{test.name}_{split}_{stem}_samples.png')
        save_png(samples, sample_grid([G], test, autocast=autocast))

rows = [('MAE, RGB 0-255 (lower is better)', 'mae', '.3f'), ('CIEDE2000 (lower is better)', 'ciede2000', '.3f'),
        ('pixel accuracy @2% (Lab)', 'acc_2', '.4f'),
        ('pixel accuracy @5% (Lab)', 'acc_5', '.4f'), ('PSNR, dB', 'psnr', '.2f'),
        ('SSIM (Gaussian 11x11, sigma 1.5, RGB)', 'ssim', '.4f'), ('colorfulness', 'colorfulness', '.2f')]
print(f"\n{n} {name} of {data_dir}" + (f" at {size}px" if not full_resolution else '')
      + (f", {hints} simulated hints each (spread {hint_spread:g})" if hints else ''))
print(f"| {'metric':<38} | {'model':>9} | {'grayscale':>9} |\n|{'-' * 40}|{'-' * 11}|{'-' * 11}|")
for label, key, fmt in rows:
    print(f"| {label:<38} | {model[key]:>9{fmt}} | {gray[key]:>9{fmt}} |")
print(f"| {'colorfulness of the real images':<38} | {colorfulness_real:>9.2f} | {'':>9} |")
print(f"| {'colorfulness relative to real':<38} | {model['colorfulness'] / colorfulness_real:>9.3f} | "
      f"{gray['colorfulness'] / colorfulness_real:>9.3f} |")
if 'better_than_gray' in model:
    print(f"| {'photos better than gray (MAE)':<38} | {model['better_than_gray']:>9.1%} | {'':>9} |")
    worst_path, worst_ratio = model['worst_vs_gray']
    print(f"| {'worst photo, MAE / grayscale MAE':<38} | {worst_ratio:>8.3f}x | {'':>9} | "
          f"{os.path.basename(worst_path)}")
print(f"\n{time.time() - t_start:.1f}s" + (f"; sample grid: {samples}" if samples else ''))
if as_json:
    print(json.dumps({'checkpoint': checkpoint, 'split': split, 'images': n, 'image_size': size, 'hints': hints,
                      'hint_spread': hint_spread, 'full_resolution': full_resolution, **model,
                      'colorfulness_real': colorfulness_real, 'gray': gray}), flush=True)
