"""Compare generators on the test split: every eval.py metric for each (and for grayscale output), a sample
grid (grayscale | each model | original) and their validation-MAE curves over training.

    python3 compare.py --data_dir=../shared/data/cifar10 \
        --checkpoints=runs/gan32/cifar10_train_generator,runs/l1_32/cifar10_train_generator --names=GAN,L1-only
"""
import os
import sys

import torch

from dataset import load_split
from models import load_generator, training_history
from utils import atomic_write, colorfulness_ratios, configure, evaluate, print_json, resolve_device, sample_grid, save_png

# -----------------------------------------------------------------------------
data_dir = 'data'  # image folder with test/, or 'data' = torchvision CIFAR-10
checkpoints = ''  # comma-separated generator checkpoints (train.py checkpoints, their folders, or .safetensors)
names = ''  # comma-separated labels, one per checkpoint; '' = file names
device = 'auto'
batch_size = 500
test_limit = 0  # 0 = the whole test split
grid = 'images/comparison.png'  # grayscale | each model | original; '' = none
curves = 'images/val_mae.png'  # validation MAE per epoch from the training histories; '' = none
json = False
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], flags=('json',))
paths = [p for p in checkpoints.split(',') if p]
labels = [n for n in names.split(',') if n] or [os.path.basename(os.path.normpath(p)) for p in paths]
if not paths:
    sys.exit("error: no generators to compare; pass --checkpoints=A,B (train.py checkpoints or .safetensors files)")
if len(labels) != len(paths):
    sys.exit(f"error: {len(paths)} checkpoints but {len(labels)} names; give one name per checkpoint or none")
dev = resolve_device(device)

generators = [load_generator(p, dev) for p in paths]
sizes = {G.config['image_size'] for G, _ in generators}
if len(sizes) != 1:
    sys.exit(f"error: the generators work at different image sizes {sorted(sizes)}; compare models of one size")
test = load_split(data_dir, 'test', sizes.pop(), test_limit).to(dev)
autocast = torch.autocast('cuda', dtype=torch.bfloat16) if dev.type == 'cuda' else None

results, gray = {}, None
for label, (G, description) in zip(labels, generators):
    print(f"{label}: {description}")
    # the grayscale baseline does not depend on the model: measure it once
    results[label], gray_i, colorfulness_real = evaluate(G, test, batch_size, autocast, baseline=gray is None)
    gray = gray or gray_i
results['grayscale'] = gray

keys = ['mae', 'acc_2', 'acc_5', 'psnr', 'ssim', 'colorfulness']
print(f"\n{len(test)} test images of {data_dir}; colourfulness of the real images {colorfulness_real:.2f}")
print('| model | ' + ' | '.join(keys) + ' |\n|' + '---|' * (len(keys) + 1))
for label, m in results.items():
    print(f'| {label} | ' + ' | '.join(f'{m[k]:.4f}' if k.startswith(('acc', 'ssim')) else f'{m[k]:.2f}' for k in keys) + ' |')

if grid:
    save_png(grid, sample_grid([G for G, _ in generators], test, autocast=autocast))
    print(f"grid ({' | '.join(['grayscale', *labels, 'original'])}): {grid}")
if curves:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax, ax_c) = plt.subplots(1, 2, figsize=(11, 3.6))
    gray_curve, plotted = None, []
    for label, path in zip(labels, paths):
        history = training_history(path)
        if not history:
            continue  # exports written before histories were kept in them
        plotted.append(label)
        epochs = [h['epoch'] for h in history]
        line, = ax.plot(epochs, [h['val_mae'] for h in history], 'o-', label=label)
        gray_curve = gray_curve or [h['val_mae_gray'] for h in history][:1]
        ratios = colorfulness_ratios(history)
        if ratios:
            ax_c.plot(epochs, ratios, 'o-', color=line.get_color(), label=label)
    if gray_curve:
        ax.axhline(gray_curve[0], color='k', ls='--', label='grayscale output')
    ax.set_ylabel('MAE, RGB 0-255')
    ax.set_title('validation MAE (held-out training images)')
    ax_c.axhline(1.0, color='k', ls='--', label='real images')
    ax_c.set_ylabel('colourfulness / real')
    ax_c.set_title('validation colourfulness, relative to the real images')
    for a in (ax, ax_c):
        a.set_xlabel('epoch')
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    atomic_write(curves, lambda f: fig.savefig(f, format='png', dpi=100))
    print(f"validation curves ({', '.join(plotted) or 'no training histories'}): {curves}")
if json:
    print_json({'images': len(test), 'colorfulness_real': colorfulness_real, 'models': results})
