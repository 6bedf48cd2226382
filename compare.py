"""Compare generators on a test split: eval.py's metrics for each and for gray output, a sample grid, their curves.

    python3 compare.py --data_dir=data/cifar10 --checkpoints=pretrained/generator.safetensors,runs/l1_32 --names=GAN,L1
"""
import json
import os
import sys

import colorize_gan.script  # noqa: F401  (before the library loads PyTorch: one-line errors and a quiet Ctrl-C)
from colorize_gan.checkpoint import load_generator, training_history
from colorize_gan.dataset import load_split, split_folders
from colorize_gan.device import autocast_for, resolve_device
from colorize_gan.evaluation import evaluate
from colorize_gan.metrics import METRIC_NAMES
from colorize_gan.plots import plot_curves, sample_grid, save_png
from colorize_gan.utils import check_out_dir, check_outside, configure

# -----------------------------------------------------------------------------
data_dir = 'data'  # image folder with test/, or 'data' = torchvision CIFAR-10
checkpoints = ''  # comma-separated generators (train.py checkpoints, run folders, or .safetensors exports)
names = ''  # comma-separated labels, one per checkpoint; '' = the last part of each path
device = 'auto'  # auto | cpu | cuda
batch_size = 500
test_limit = 0  # 0 = the whole test split
out_dir = 'runs/compare'  # comparison.png (the grid) and curves.png (validation curves) go here; '' = no figures
as_json = False  # also print one JSON object with every metric
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], flags=('as_json',))
paths = [p for p in checkpoints.split(',') if p]
labels = [n for n in names.split(',') if n] or [os.path.basename(os.path.normpath(p)) for p in paths]
if not paths:
    sys.exit("error: no generators to compare; pass --checkpoints=A,B (train.py checkpoints or .safetensors files)")
if len(labels) != len(paths):
    sys.exit(f"error: {len(paths)} checkpoints but {len(labels)} names; give one name per checkpoint or none")
twice = sorted({label for label in labels if labels.count(label) > 1})
if twice:  # the table, the grid and the curves tell generators apart by name
    sys.exit(f"error: two generators are named {twice[0]!r}; pass --names=A,B,... with one name each")
if test_limit < 0:
    sys.exit(f"error: --test_limit={test_limit} must be >= 0 (0 = the whole test split)")
if out_dir:
    check_out_dir(out_dir)
    check_outside(out_dir, split_folders(data_dir))
dev = resolve_device(device)

generators = [load_generator(p, dev) for p in paths]
sizes = {G.config['image_size'] for G, _ in generators}
if len(sizes) != 1:
    sys.exit(f"error: the generators work at different image sizes {sorted(sizes)}; compare models of one size")
test = load_split(data_dir, 'test', sizes.pop(), test_limit).to(dev)
autocast = autocast_for(dev)

results, gray = {}, None
for label, (G, description) in zip(labels, generators):
    print(f"{label}: {description}")
    # the grayscale baseline does not depend on the model: measure it once
    results[label], gray_i, colorfulness_real = evaluate(G, test, batch_size, autocast, baseline=gray is None)
    gray = gray or gray_i
results['grayscale'] = gray

print(f"\n{len(test)} test images of {data_dir}; colorfulness of the real images {colorfulness_real:.2f}")
print('| model | ' + ' | '.join(METRIC_NAMES) + ' |\n|' + '---|' * (len(METRIC_NAMES) + 1))
for label, m in results.items():
    cells = (f'{m[k]:.4f}' if k.startswith(('acc', 'ssim')) else f'{m[k]:.2f}' for k in METRIC_NAMES)
    print(f'| {label} | ' + ' | '.join(cells) + ' |')

if out_dir:
    grid = os.path.join(out_dir, 'comparison.png')
    save_png(grid, sample_grid([G for G, _ in generators], test, autocast=autocast))
    print(f"grid ({' | '.join(['grayscale', *labels, 'original'])}): {grid}")
    histories = {label: training_history(path) for label, path in zip(labels, paths)}
    histories = {label: h for label, h in histories.items() if h}  # exports written before histories were kept lack one
    if histories:
        curves = os.path.join(out_dir, 'curves.png')
        try:  # matplotlib is imported only to draw: a broken install costs this figure, not the comparison
            plot_curves(curves, histories)
            print(f"validation curves ({', '.join(histories)}): {curves}")
        except Exception as e:
            print(f"warning: could not draw the curves ({type(e).__name__}: {e}); pip install -r requirements.txt "
                  "repairs matplotlib", file=sys.stderr)
if as_json:
    print(json.dumps({'images': len(test), 'colorfulness_real': colorfulness_real, 'models': results}), flush=True)
