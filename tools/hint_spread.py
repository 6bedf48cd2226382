"""How far one colour hint helps: the colour error a simulated user's hint removes, by distance from the hint.

    python3 tools/hint_spread.py                                         # the shipped photo model
    python3 tools/hint_spread.py --hint_spread=0                         # the same, without the spread
    python3 tools/hint_spread.py --checkpoint=runs/hint_stem/epoch001.pt --folders=data/natural/full --limit=0

For each whole colour photo (the first `limit` of each folder, sorted), `hints` simulated hints are drawn one at a
time (hints.simulated_photo_hints: the mean colour of a 1-9 cell patch of the real photo at a random place, as
`eval.py --hints` draws them), and the photo is colorized through colorize.py's pipeline (its hint spread too;
--hint_spread=0 measures the model's own use alone) with and without it. The colour error is the CIE ab distance to
the real photo per pixel; the table gives, per band of distance from the hint (in working-resolution cells: the
photo's short side over the model's), the mean error without the hint and the share of it the hint removes. A
model whose hints spread over their objects keeps large shares farther out.
"""
import json
import os
import sys

import numpy as np
from skimage.color import rgb2lab

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from colorize_gan import photo  # noqa: E402
from colorize_gan.checkpoint import PHOTO_GENERATOR, load_generator  # noqa: E402
from colorize_gan.hints import HINT_SPREAD, check_hint_spread, simulated_photo_hints  # noqa: E402
from colorize_gan.images import list_images, read_image  # noqa: E402
from colorize_gan.utils import UserError, configure  # noqa: E402

# -----------------------------------------------------------------------------
checkpoint = ''  # a generator with hint input; '' = the shipped photo model
folders = 'data/natural/full,../shared/data/photos_dev'  # comma-separated folders of whole colour photos
limit = 24  # photos per folder (the first, sorted); 0 = all
hints = 6  # hints per photo, each tried alone
hint_spread = HINT_SPREAD  # as colorize.py's --hint_spread: 0.25 of the short side; 0 = the model's own use alone
bands = '0,2,8,16,32'  # lower edges of the distance bands, in working-resolution cells
seed = 0
as_json = False  # also print one JSON object
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], flags=('as_json',))
try:
    edges = [float(b) for b in bands.split(',')] + [float('inf')]
except ValueError:
    raise UserError(f"--bands={bands!r}: pass comma-separated numbers of cells, e.g. 0,2,8,16,32") from None
if edges[0] != 0 or any(b <= a for a, b in zip(edges, edges[1:])):
    raise UserError(f"--bands={bands!r} must rise from 0, e.g. 0,2,8,16,32")
try:
    hint_spread = check_hint_spread(hint_spread)
except ValueError as e:
    raise UserError(f"--{e}") from None
if hints < 1:
    raise UserError(f"--hints={hints}: pass at least 1 hint per photo")
if limit < 0:
    raise UserError(f"--limit={limit}: pass 0 (all) or a number of photos per folder")
photos = []  # (path, uint8 HxWx3): colour photos only, the first `limit` of each folder
for folder in (f.strip() for f in folders.split(',') if f.strip()):
    if not os.path.isdir(folder):
        raise UserError(f"--folders: '{folder}' is not a folder")
    found = [(path, read_image(path)) for path in list_images(folder)[0]]
    colour = [(path, rgb) for path, rgb in found if rgb.ndim == 3 and rgb.dtype == np.uint8]  # gray has no truth
    photos += colour[:limit] if limit else colour
if not photos:
    raise UserError(f"no colour photos in --folders={folders}: the measure needs each photo's real colours")
G, description = load_generator(checkpoint or PHOTO_GENERATOR)
if not G.hints:
    raise UserError(f"{description} has no hint input; pass a model trained with --hints=True")
print(f"{description}: {len(photos)} colour photos, {hints} hints each, spread {hint_spread:g}")

rng = np.random.default_rng(seed)
removed, before, count = (np.zeros(len(edges) - 1) for _ in range(3))
for path, rgb in photos:
    H, W = rgb.shape[:2]
    cell = min(H, W) / G.config['image_size']
    ab_real = rgb2lab(rgb)[..., 1:]
    error = np.linalg.norm(rgb2lab(photo.colorize(G, rgb))[..., 1:] - ab_real, axis=-1)
    yy, xx = np.mgrid[:H, :W]
    for hint in simulated_photo_hints(rgb, hints, rng, cell=cell):
        out = photo.colorize(G, rgb, hints=[hint], hint_spread=hint_spread)
        hinted = np.linalg.norm(rgb2lab(out)[..., 1:] - ab_real, axis=-1)
        distance = np.hypot(yy - hint['y'], xx - hint['x']) / cell
        for i in range(len(edges) - 1):
            inside = (distance >= edges[i]) & (distance < edges[i + 1])
            if inside.any():
                removed[i] += (error - hinted)[inside].mean()
                before[i] += error[inside].mean()
                count[i] += 1

result = {}
print("| cells from the hint | ab error without it | share removed |")
print("|---|---|---|")
for i in range(len(edges) - 1):
    name = f"{edges[i]:g}-{edges[i + 1]:g}" if edges[i + 1] < float('inf') else f">= {edges[i]:g}"
    if count[i]:
        result[name] = {'ab_error': before[i] / count[i], 'share_removed': removed[i] / before[i]}
        print(f"| {name} | {before[i] / count[i]:.2f} | {removed[i] / before[i]:.1%} |")
if as_json:
    print(json.dumps({'model': description, 'photos': len(photos), 'hints_per_photo': hints,
                      'hint_spread': hint_spread, 'bands': result}))
