"""People's photos: colorizing one at full resolution with a generator."""
import torch
import torch.nn.functional as F

from .color import denormalize_lab, lab_to_rgb_keep_L, luminance, normalize_lab
from .hints import HINT_SPREAD, MODEL_HINT_RADIUS, hint_map, spread_hints
from .utils import PIXELS_PER_CHUNK, working_size  # shared with light.py, which runs without PyTorch


def _bicubic_matrix(n_in, n_out, device):
    """[n_out, n_in] matrix that resizes a 1-D signal exactly as F.interpolate(mode='bicubic', align_corners=False)."""
    eye = torch.eye(n_in, device=device).view(1, n_in, n_in, 1)  # channel i holds the unit impulse at i
    return F.interpolate(eye, size=(n_out, 1), mode='bicubic', align_corners=False)[0, :, :, 0].T


def _box(x, r):
    """Mean of x [C,h,w] over (2r+1)^2 windows, the windows cut at the borders (each mean over what is inside)."""
    return F.avg_pool2d(x[None], 2 * r + 1, stride=1, padding=r, count_include_pad=False)[0]


def guided_coefficients(I, p, r=2, eps=1e-3):
    """The guided filter's linear coefficients (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013, Alg. 1):
    guidance I [1,h,w] (here L/100), input p [C,h,w] (ab) -> (A, B) [C,h,w], window radius r px, regularizer eps,
    with the filtered output A * I + B. Computed at the working resolution and upsampled, this is He and Sun's fast
    guided filter (arXiv 1505.00996): ab follows the full-resolution L's edges."""
    mean_I, mean_p = _box(I, r), _box(p, r)
    a = (_box(I * p, r) - mean_I * mean_p) / (_box(I * I, r) - mean_I ** 2 + eps)
    b = mean_p - a * mean_I
    return _box(a, r), _box(b, r)


UPSAMPLING = ('bicubic', 'guided')


@torch.inference_mode()
def colorize(G, image, size=0, device='cpu', saturation=1.0, hints=None, upsample='bicubic', hint_spread=HINT_SPREAD):
    """Colorize a photo at full resolution: uint8 HxWx3 RGB whose L is the input's luminance.

    G predicts ab at `size` (0 = the size it was trained at) from the downscaled L; `saturation` scales that chroma
    before the gamut mapping (0 gives gray, above 1 more vivid colour, L kept either way; with a spread, hints keep
    their own colour, so saturation 0 with hints colours only their regions). `hints`, for a generator with hint
    input, is a list of hints.make_hint dicts in this photo's pixels (colours people know); ValueError if G has no
    hint input or a hint lies outside the photo. G sees each hint over at most MODEL_HINT_RADIUS working
    cells; the hint's whole radius is held at its colour and what G leaves of each hint's correction is spread over
    `hint_spread` x the short side along flat lightness (hints.spread_hints; 0 = G's own use alone, G seeing each
    hint's whole radius). The ab map is resized bicubically onto the full-resolution L as two matrix products (rows,
    then columns), in bands of rows, so memory stays a few bytes per pixel beyond the input and output;
    upsample='guided' resizes the guided filter's coefficients instead and applies them to the full-resolution L
    (guided_coefficients), so colour stops at L's edges."""
    if upsample not in UPSAMPLING:
        raise ValueError(f"unknown upsampling {upsample!r}; use one of {', '.join(UPSAMPLING)}")
    H, W = image.shape[:2]
    L = luminance(image)  # [H,W], 0-100
    h, w = working_size(H, W, size, G.multiple, G.config['image_size'])
    L_small = F.interpolate(L[None, None].to(device), size=(h, w), mode='area')  # [1,1,h,w]
    L_net = normalize_lab(L_small)[0]
    if saturation == 0 and not hints:  # gray output (the baselines use it): no need to run G
        ab_small = torch.zeros(2, h, w, device=L_net.device)
    else:
        hint_input = hint_map(hints, H, W, h, w, L_net.device) if hints else None
        # with a spread, G sees each hint over at most MODEL_HINT_RADIUS cells (the spread holds the rest at the
        # hint's colour): a large patch of one colour makes G recolour the whole photo
        seen = hint_map(hints, H, W, h, w, L_net.device, MODEL_HINT_RADIUS) if hints and hint_spread else hint_input
        ab_small = denormalize_lab(L_net, G(L_net, seen).float())[0, 1:] * saturation  # [2,h,w], Lab units
        if hints:  # what each hint corrects, spread along L's flat regions (the network's own reach is short)
            ab_small = spread_hints(L_small, ab_small[None], hint_input, hint_spread, cell=(H / h, W / w))[0]
    guided = upsample == 'guided' and (saturation != 0 or bool(hints))
    # what goes up to full size: ab itself, or the guided filter's A (2 maps) and B (2 maps) applied to L/100 there
    small = torch.cat(guided_coefficients(L_small[0] / 100, ab_small)) if guided else ab_small  # [2 or 4,h,w]
    cols = small @ _bicubic_matrix(w, W, small.device).T  # [C,h,W]: columns already at full width
    rows = _bicubic_matrix(h, H, small.device)  # [H,h]
    out = torch.empty(H, W, 3, dtype=torch.uint8)
    rows_per_chunk = max(1, PIXELS_PER_CHUNK // W)
    for top in range(0, H, rows_per_chunk):
        bottom = min(H, top + rows_per_chunk)
        band = rows[top:bottom] @ cols  # [C,band,W]
        ab = band[:2] * (L[top:bottom].to(device) / 100) + band[2:] if guided else band  # [2,band,W]
        rgb = lab_to_rgb_keep_L(L[top:bottom].to(device), ab)  # [3,band,W]
        out[top:bottom] = (rgb * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu()
    return out.numpy()
