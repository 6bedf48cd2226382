"""Colour hints (Zhang et al. 2017, "Real-Time User-Guided Image Colorization with Learned Deep Priors",
arXiv 1705.02999): the generator's extra input channels, and simulated users that place them during training.

A hint map is [N,3,H,W]: hint_ab (network scale, ab / 110) where a hint is placed and 0 elsewhere, then hint_mask
(1 there, 0 elsewhere). No hints is all zeros: exactly the automatic case.
"""
import math
import re

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageColor, ImageDraw

from .color import normalize_lab, rgb_to_lab
from .utils import is_number


def sample_hints(ab, rng, p_none=0.5, p_geometric=1 / 8, max_hints=32, max_patch=9, count=None, model_side=None):
    """Simulated user hints for a batch of real colours: ab [B,2,H,W] (network scale) -> hints [B,3,H,W] (float32).

    Per image, drawn from `rng` (a torch.Generator on ab's device): no hints with probability p_none, else
    1 + Geometric(p_geometric) hints (mean 1/p, capped at max_hints), each revealing the mean ab of a square patch of
    side 1 to max_patch px (uniform) at a uniformly random place inside the image, painted over that patch (Zhang et al.
    2017, Sec. 3.3; they draw the count from a geometric distribution with p = 1/8 and patches of 1 to 9 px).
    Overlapping patches are averaged. Fully vectorized: a fixed max_hints slots per image, the unused ones masked.
    With `count` (an int) every image gets exactly that many hints instead (a simulated user for evaluation). With
    `model_side` it returns (hints, the same hints with each patch cut to its centred square of at most that side, as
    the generator sees them when the spread pins the rest: MODEL_HINT_RADIUS), from the same draws."""
    B, _, H, W = ab.shape
    dev, K = ab.device, max(max_hints, count or 0)
    none = torch.rand(B, generator=rng, device=dev) < p_none
    u = torch.rand(B, generator=rng, device=dev).clamp_min(1e-12)
    if count is None:
        count = (1 + torch.floor(torch.log(u) / math.log(1 - p_geometric))).clamp(max=K)
        count = torch.where(none, torch.zeros_like(count), count)
    else:
        count = torch.full((B,), float(count), device=dev)
    side = torch.randint(1, min(max_patch, H, W) + 1, (B, K), generator=rng, device=dev)
    y0 = (torch.rand(B, K, generator=rng, device=dev) * (H - side + 1)).long()
    x0 = (torch.rand(B, K, generator=rng, device=dev) * (W - side + 1)).long()
    y1, x1 = y0 + side, x0 + side
    active = torch.arange(K, device=dev)[None] < count[:, None]  # [B,K]
    # patch means from an integral image (float64: exact enough for sums over a whole 128x128 image)
    S = torch.nn.functional.pad(ab.double().cumsum(2).cumsum(3), (1, 0, 1, 0)).flatten(2)  # [B,2,(H+1)(W+1)]

    def corner(y, x):
        return S.gather(2, (y * (W + 1) + x)[:, None].expand(-1, 2, -1))  # [B,2,K]
    mean = ((corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)) / (side * side)[:, None]).float()

    def paint(y0, x0, side):  # the patches' indicator x mean summed over hints, as batched matrix products
        rows = ((torch.arange(H, device=dev) >= y0[..., None]) & (torch.arange(H, device=dev) < (y0 + side)[..., None])
                & active[..., None]).float()  # [B,K,H]
        cols = ((torch.arange(W, device=dev) >= x0[..., None]) & (torch.arange(W, device=dev) < (x0 + side)[..., None])
                ).float()  # [B,K,W]
        painted = torch.einsum('bkh,bck,bkw->bchw', rows, mean, cols)  # no [B,K,H,W] intermediate
        cover = torch.einsum('bkh,bkw->bhw', rows, cols)[:, None]  # [B,1,H,W]: how many patches cover each pixel
        return torch.cat([painted / cover.clamp_min(1), (cover > 0).float()], 1)
    if model_side is None:
        return paint(y0, x0, side)
    cut = side.clamp(max=int(model_side))
    return paint(y0, x0, side), paint(y0 + (side - cut) // 2, x0 + (side - cut) // 2, cut)


# -----------------------------------------------------------------------------
# hints people give: a point, a colour they know there, and how far it reaches

def parse_hint(text):
    """'x,y,colour[,radius]' -> {'x', 'y', 'color': (r, g, b) uint8, 'radius'}: x, y in the input photo's pixels
    (0,0 top left), colour as hex (#1f4fbf) or a CSS colour name (red), radius in input pixels (default 0: the one
    working-resolution cell that holds the point). Raises ValueError naming what is wrong."""
    parts = [p.strip() for p in str(text).split(',')]
    if len(parts) not in (3, 4):
        rgb_note = '; an rgb() colour holds commas: give it as hex here, or put it in a --hints file' \
            if 'rgb' in str(text).lower() else ''
        raise ValueError(f"hint {text!r} is not x,y,colour[,radius] (e.g. 120,80,#1f4fbf or 300,410,red,20){rgb_note}")
    return make_hint(parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else 0, where=f"hint {text!r}",
                     commas=False)


_RGB_FUNCTION = re.compile(r'rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*[\d.]+%?\s*)?\)', re.I)


def _rgb_triple(values):
    """(r, g, b) from three numbers of 0-255 (Python or numpy; rounded); ValueError otherwise."""
    if len(values) != 3 or not all(is_number(c) and math.isfinite(c) and 0 <= c <= 255 for c in values):
        raise ValueError
    return tuple(int(round(float(c))) for c in values)


def make_hint(x, y, color, radius=0, where='hint', commas=True):
    """One hint from its parts (numbers or numeric strings; a colour as a string: hex, a CSS name or rgb()/rgba()
    with 0-255 numbers, fractions rounded, as browsers' colour pickers write it; or an (r, g, b) triple of 0-255
    numbers, as hints hold it); raises ValueError naming the bad part (commas=False: the hint came as one
    comma-separated text, which cannot hold an rgb() colour, so the message does not offer one)."""
    if any(isinstance(v, bool) for v in (x, y, radius)):
        raise ValueError(f"{where}: x, y and radius must be numbers, not true/false")
    try:
        x, y, radius = float(x), float(y), float(radius)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: x, y and radius must be numbers") from None
    if not all(map(math.isfinite, (x, y, radius))) or not 0 <= radius <= 100000:
        raise ValueError(f"{where}: x, y must be finite and radius between 0 and 100000 px")
    try:
        if isinstance(color, (tuple, list, np.ndarray)):  # (r, g, b), as a parsed hint holds it
            rgb = _rgb_triple(list(np.asarray(color).ravel()) if isinstance(color, np.ndarray) else color)
        elif match := _RGB_FUNCTION.fullmatch(str(color).strip()):  # rgba(12.5, 200.3, 30.1, 1): a colour picker
            rgb = _rgb_triple([float(v) for v in match.groups()])
        else:
            rgb = ImageColor.getrgb(str(color).strip())[:3]
    except ValueError:
        raise ValueError(f"{where}: unknown colour {color!r}; use hex (#1f4fbf) or a CSS colour name (red, navy)"
                         + (" or rgb(r, g, b) with 0-255 values" if commas else
                            " (an rgb() colour fits in a --hints file)")) from None
    return {'x': x, 'y': y, 'color': tuple(int(c) for c in rgb), 'radius': radius}


def load_hints_file(path):
    """A JSON file of hints: a list of {"x", "y", "color"[, "radius"]} (for every photo), or an object mapping file
    names to such lists. Returns a list, or a dict name -> list. Raises ValueError for malformed JSON or entries."""
    try:
        with open(path, encoding='utf-8-sig') as f:  # -sig: the byte-order mark some editors (Notepad) write
            text = f.read()
    except OSError as e:
        raise ValueError(f"cannot read the hints file '{path}' ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"the hints file '{path}' is not UTF-8 text; save it as UTF-8 JSON") from None
    return parse_hints_json(text, f"the hints file '{path}'", f"'{path}'")


def parse_hints_json(text, what='the hints', where='hints'):
    """Hints as JSON text (what a hints file holds: a list of {"x", "y", "color"[, "radius"]}, or an object mapping
    file names to such lists) -> a list of make_hint dicts, or a dict name -> list. `what` names the text in messages
    about the whole, `where` in messages about one entry. Raises ValueError for malformed JSON or entries."""
    import json
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and {'x', 'y', 'color'} <= set(data):
        raise ValueError(f"{what} holds one hint object; put it in a list: [{{\"x\": ..., ...}}]")

    if isinstance(data, dict):
        return {name: hints_from_list(items, f"{where}: {name}") for name, items in data.items()}
    return hints_from_list(data, where)


def hints_from_list(items, where='hints'):
    """A list of {"x", "y", "color"[, "radius"]} dicts (as JSON or Python code gives them) -> make_hint dicts;
    None or an empty list -> []. Raises ValueError naming the entry (`where`[i]) and what is wrong with it."""
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"{where} must be a list of {{\"x\": ..., \"y\": ..., \"color\": ...}} objects")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (list, tuple)) or item is None:  # per-image lists: the API's list of images
            raise ValueError(f"{where} is one list of hints for every image, not one list per image; colorize each "
                             "image with its own call to give it hints of its own")
        if not isinstance(item, dict) or not {'x', 'y', 'color'} <= set(item):
            raise ValueError(f"{where}[{i}] needs x, y and color (and may have radius)")
        unknown = sorted(set(item) - {'x', 'y', 'color', 'radius'})
        if unknown:  # a typo ("radus") would otherwise be dropped without a word
            raise ValueError(f"{where}[{i}] has {', '.join(map(repr, unknown))}, which a hint does not take; "
                             "use x, y, color and radius")
        out.append(make_hint(item['x'], item['y'], item['color'], item.get('radius', 0), f"{where}[{i}]"))
    return out


def simulated_photo_hints(rgb, count, rng, cell=1.0, max_patch=9):
    """A simulated user's hints on a whole photo: uint8 HxWx3 RGB -> `count` make_hint dicts, each at a uniformly
    random pixel, with the mean colour of a square patch of the real photo around it and a radius of half that
    patch. The patch side is 1 to max_patch working-resolution cells (uniform, as sample_hints draws them in
    training: Zhang et al. 2017), `cell` photo pixels each (the photo's short side over the model's). `rng` is a
    numpy Generator."""
    H, W = rgb.shape[:2]
    out = []
    for _ in range(count):
        half = max(0.5, rng.integers(1, max_patch + 1) * cell / 2)
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        r = int(half)
        patch = rgb[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].reshape(-1, 3)
        out.append(make_hint(x, y, '#%02x%02x%02x' % tuple(int(round(v)) for v in patch.mean(0)), half))
    return out


def check_inside(hints, height, width, name='the photo'):
    """Raise ValueError if a hint's point lies outside a height x width photo."""
    for h in hints:
        if not (0 <= h['x'] < width and 0 <= h['y'] < height):
            raise ValueError(f"the hint at ({h['x']:g}, {h['y']:g}) is outside {name} ({width}x{height} px); "
                             "x runs from 0 up to (not including) the width from the left, y from 0 up to the "
                             "height from the top")


def hint_map(hints, height, width, h, w, device='cpu', max_radius=None):
    """People's hints on a height x width photo -> the generator's hint input [1,3,h,w] at its working resolution:
    hint_ab (network scale) and hint_mask. Each hint gives its colour's ab (CIE Lab of its sRGB; its lightness is
    dropped, the photo's is kept) over the working cells within its radius (scaled from input pixels), at least the
    cell holding its point and every cell whose centre lies in its pixel (a photo smaller than the working grid);
    where hints overlap the one of the smaller radius wins (a small hint inside a large one is a detail of it), and
    hints of the same radius are averaged; `max_radius` (working cells, None = no limit) caps each radius (what the
    generator sees: MODEL_HINT_RADIUS). Raises ValueError for a point outside."""
    check_inside(hints, height, width)
    out = torch.zeros(1, 3, h, w, device=device)
    if not hints:
        return out
    sy, sx = h / height, w / width
    yy = (torch.arange(h, device=device) + 0.5) / sy  # cell centres in input pixels
    xx = (torch.arange(w, device=device) + 0.5) / sx
    total, cover = torch.zeros(2, h, w, device=device), torch.zeros(h, w, device=device)
    owner = torch.full((h, w), math.inf, device=device)  # the radius of the hints a cell holds so far
    for hint in sorted(hints, key=lambda one: -one['radius']):  # larger first: a smaller one paints over them
        rgb = torch.tensor(hint['color'], dtype=torch.float32, device=device).view(1, 3, 1, 1) / 255
        ab = normalize_lab(rgb_to_lab(rgb))[1].view(2, 1, 1)
        inside = (yy[:, None] - hint['y']) ** 2 + (xx[None] - hint['x']) ** 2 <= hint['radius'] ** 2
        if max_radius is not None:  # counted in cells, which a squeezed grid makes longer along one axis
            inside &= ((yy[:, None] - hint['y']) * sy) ** 2 + ((xx[None] - hint['x']) * sx) ** 2 <= max_radius ** 2
        inside[min(h - 1, int(hint['y'] * sy)), min(w - 1, int(hint['x'] * sx))] = True
        inside |= (yy[:, None].floor() == math.floor(hint['y'])) & (xx[None].floor() == math.floor(hint['x']))
        over = inside & (hint['radius'] < owner)  # cells this hint takes from larger ones
        total[:, over], cover[over], owner[over] = 0, 0, hint['radius']
        total += ab * inside
        cover += inside
    mask = cover > 0
    out[0, :2] = total / cover.clamp_min(1)
    out[0, 2] = mask.float()
    return out


MODEL_HINT_RADIUS = 2.0  # working cells: with a spread, the generator sees each hint over at most this radius and the
# spread holds the rest of it at the hint's colour (a larger patch of one colour makes the generator recolour the
# whole photo: docs/experiments.md, "What the generator sees of a large hint")
HINT_SPREAD = 0.25  # how far a hint's colour reaches along flat lightness, as a fraction of the short side
MIN_HINT_SPREAD, MAX_HINT_SPREAD = 0.01, 4.0  # a spread other than 0 lies between these (x the short side)
HINT_EDGE = 4.0  # L units (0-100): a step of this much in lightness passes exp(-1/2) of a hint's correction
# (both chosen on 300 held-out training images of photos128 with 10 simulated hints, among the settings that keep
# one hint's change far from it under the locality test's tolerance: docs/experiments.md)
_MAX_CELLS = 1 << 18  # the correction is solved on at most this many cells (a coarser grid above; it is smooth)
_CHUNK_CELLS = 1 << 16  # images are solved a few at a time: the solver's working set then stays in the CPU's cache
# (eval.py --hints=10 over photos128's 2,170 test images on 2 cores: 2.5 min, against 11-14 in batches of 500)


def check_hint_spread(value, name='hint_spread'):
    """The hint spread as a float: 0 (the generator's own use of hints) or MIN_HINT_SPREAD to MAX_HINT_SPREAD (x the
    photo's short side); ValueError naming `name` otherwise (not a number, NaN, negative, too small to reach past a
    working cell, or so large that it reaches everywhere alike)."""
    if not is_number(value):
        raise ValueError(f"{name}={value!r} must be a number")
    if not (value == 0 or MIN_HINT_SPREAD <= value <= MAX_HINT_SPREAD):
        raise ValueError(f"{name}={value} must be 0 (the model's own use of hints) or between {MIN_HINT_SPREAD:g} and "
                         f"{MAX_HINT_SPREAD:g} (x the photo's short side; {HINT_SPREAD:g} is the default)")
    return float(value) + 0.0  # -0.0 is 0.0


def _edge_weights(L, edge):
    """4-neighbour affinities of L [N,1,h,w]: (across columns [N,1,h,w-1], across rows [N,1,h-1,w]),
    exp(-(L_i - L_j)^2 / (2 edge^2)) (Levin, Lischinski and Weiss 2004, "Colorization using Optimization")."""
    return (torch.exp(-(L[..., :, 1:] - L[..., :, :-1]) ** 2 / (2 * edge ** 2)),
            torch.exp(-(L[..., 1:, :] - L[..., :-1, :]) ** 2 / (2 * edge ** 2)))


def _screened_solve(L, target, mask, length, edge, cell=(1.0, 1.0), tol=1e-3, max_iterations=2000):
    """The correction x [N,2,h,w]: x = target where mask is 1 (the hinted cells), elsewhere the minimiser of
    sum_ij w_ij (x_i - x_j)^2 / d_ij^2 + sum_i x_i^2 / length^2 over 4-neighbours (w: _edge_weights of L [N,1,h,w];
    d_ij the cells' distance, `cell` = (height, width) of a cell in length's unit, so the reach is the same along
    rows and columns of a squeezed grid), by conjugate gradients with a Jacobi preconditioner on the free cells,
    batched over images and ab, each image run until its residual is `tol` x its right-hand side's (finished images
    leave the batch, so one slow image costs only itself)."""
    wx, wy = _edge_weights(L, edge)
    wx, wy = wx / cell[1] ** 2, wy / cell[0] ** 2
    free = 1 - mask
    degree = F.pad(wx, (1, 0)) + F.pad(wx, (0, 1)) + F.pad(wy, (0, 0, 1, 0)) + F.pad(wy, (0, 0, 0, 1))
    diag = 1 / length ** 2 + degree

    def neighbours(v, wx, wy):  # sum_j w_ij v_j
        out = torch.zeros_like(v)
        out[..., :, :-1] += wx * v[..., :, 1:]
        out[..., :, 1:] += wx * v[..., :, :-1]
        out[..., :-1, :] += wy * v[..., 1:, :]
        out[..., 1:, :] += wy * v[..., :-1, :]
        return out

    b = free * neighbours(mask * target, wx, wy)  # what the pinned cells pull their free neighbours towards
    solution = torch.zeros_like(b)
    active = torch.arange(b.shape[0], device=b.device)  # the images still iterating
    x, r = torch.zeros_like(b), b.clone()
    z = r / diag
    p = z.clone()
    rz = (r * z).sum((2, 3), keepdim=True)
    stop = tol ** 2 * (b * b).sum((2, 3), keepdim=True)
    for i in range(max_iterations):
        Ap = free * (diag * p - neighbours(free * p, wx, wy))  # the system on the free cells
        alpha = rz / (p * Ap).sum((2, 3), keepdim=True).clamp_min(1e-30)
        x += alpha * p
        r -= alpha * Ap
        if i % 10 == 9:
            done = ((r * r).sum((2, 3), keepdim=True) <= stop).flatten(1).all(1)
            if bool(done.any()):  # finished images leave the batch
                solution[active[done]] = x[done]
                keep = ~done
                if not bool(keep.any()):
                    break
                active = active[keep]
                x, r, p, rz, stop = x[keep], r[keep], p[keep], rz[keep], stop[keep]
                wx, wy, diag, free = wx[keep], wy[keep], diag[keep], free[keep]
        z = r / diag
        rz, rz_old = (r * z).sum((2, 3), keepdim=True), rz
        p = z + rz / rz_old.clamp_min(1e-30) * p
    else:
        solution[active] = x  # max_iterations reached: the closest so far
    return (1 - mask) * solution + mask * target


def spread_hints(L, ab, hints, spread=HINT_SPREAD, edge=HINT_EDGE, cell=(1.0, 1.0), tol=1e-3):
    """Spread what each hint corrects along L's flat regions: the generator's ab plus a correction that is the hint's
    colour minus the generator's at the hint's cells and fades with distance and at edges of L.

    L [N,1,h,w] Lab lightness 0-100, ab [N,2,h,w] Lab units (the generator's output, after any saturation), hints
    [N,3,h,w] the generator's hint input (hint_ab on the network scale, ab / 110, and hint_mask) -> ab [N,2,h,w]
    float32, equal to the hint's ab at hinted cells. The correction minimises an edge-aware smoothness (Levin,
    Lischinski and Weiss 2004's affinity of neighbouring L) plus a screening term that lets it fade over `spread` x
    the short side (0 = no spread: ab as given; check_hint_spread's range, else ValueError); `edge` (L units) is
    the step of lightness that lets exp(-1/2) of it across; `cell` = (height, width) of a working cell in the
    photo's pixels (they differ where the working grid squeezes a long strip), so the spread is round in the photo.
    Above _MAX_CELLS cells it is solved on a coarser grid and resized bilinearly; a batch is solved a few images at a
    time."""
    spread = check_hint_spread(spread)
    mask = (hints[:, 2:3] > 0).float()
    if spread == 0 or not bool(mask.any()):
        return ab.float()
    N, _, h, w = ab.shape
    target = (hints[:, :2].float() * 110 - ab.float()) * mask
    Lg, mg, tg, k = L.float(), mask, target, max(1, math.ceil(math.sqrt(h * w / _MAX_CELLS)))
    if k > 1:  # a coarser grid: L by area, the hints' correction averaged over the hinted cells of each
        size = (max(1, h // k), max(1, w // k))
        area = lambda v: F.interpolate(v, size=size, mode='area')  # noqa: E731
        Lg, mg = area(Lg), area(mg)
        tg, mg = area(tg) / mg.clamp_min(1e-12), (mg > 0).float()
    hg, wg = Lg.shape[2:]
    cell = (cell[0] * h / hg, cell[1] * w / wg)  # a coarse cell's size in the photo's pixels
    length, per = spread * min(hg * cell[0], wg * cell[1]), max(1, _CHUNK_CELLS // (hg * wg))
    x = torch.cat([_screened_solve(Lg[i:i + per], tg[i:i + per], mg[i:i + per], length, edge, cell, tol=tol)
                   for i in range(0, N, per)])
    if k > 1:
        x = F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False)
    return ab.float() + x


def mark_hints(rgb, hints):
    """A copy of uint8 HxWx3 `rgb` with each hint drawn where it is: a ring of its radius (at least a few pixels) in
    its colour, outlined in white and black so it shows on any background."""
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    line = max(1, round(min(im.size) / 300))
    for h in hints:
        r = max(h['radius'], 3 * line)
        for pad, fill in ((2 * line, (0, 0, 0)), (line, (255, 255, 255)), (0, h['color'])):
            draw.ellipse([h['x'] - r - pad, h['y'] - r - pad, h['x'] + r + pad, h['y'] + r + pad], outline=fill,
                         width=line)
    return np.asarray(im)
