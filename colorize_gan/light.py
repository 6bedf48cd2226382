"""Colorize photos without PyTorch: a generator exported by `export.py --format=onnx`, run by onnxruntime, inside
photo.colorize's pipeline redone in numpy (the light install, requirements-light.txt: onnxruntime, numpy, Pillow).

    python3 -m colorize_gan.light old_photo.jpg --model=generator.onnx --out_dir=colorized

    from colorize_gan.light import load_generator, colorize
    G = load_generator('generator.onnx')                 # once
    rgb = colorize(G, gray_uint8_array)                  # HxW or HxWx3 -> HxWx3 uint8, the input's size and L

Nothing here imports torch. The colour maths repeats color.py's (sRGB <-> CIE Lab with scikit-image's constants,
the gamut mapping that keeps L) and photo.py's resampling (area down, bicubic up) in numpy, as little of it as the
pipeline needs; tests/test_onnx.py pins the two copies together (output within 1 level of 8 bits of photo.colorize
on real photos). Float rounding differs between the two, so where a step of the gamut mapping's bisection lands
within rounding of the gamut's edge they may decide it differently: that pixel's chroma then differs by up to
1/128, several levels in a channel near 0, where the sRGB curve is steepest (12 MP of random noise through the photo
model: 1,012 pixels, 0.008%, off by more than 1 level, at most 11; none on the test photos). Not here yet: colour
hints and upsample='guided' (the PyTorch path has both).
"""
import json
import os
import sys

import numpy as np

from .utils import PIXELS_PER_CHUNK, UserError, check_colorize_settings, describe_generator, working_size

# -----------------------------------------------------------------------------
# the command line's settings (python3 -m colorize_gan.light PHOTO [...] --name=value); library functions take arguments
model = ''  # an ONNX generator written by export.py --format=onnx
out_dir = 'colorized'  # outputs go here as <photo name>.png (or .jpg)
size = 0  # px, short side of the model's working resolution; 0 = the size the model was trained at
saturation = 1.0  # scales the predicted chroma before gamut mapping: 0 = gray, 1 = as predicted, 1.3 = vivid
image_format = 'png'  # png | jpg
quality = 95  # JPEG quality, with --image_format=jpg
threads = 0  # onnxruntime's threads; 0 = one per core
overwrite = False  # replace outputs that exist (else they are refused)
# -----------------------------------------------------------------------------

# color.py's constants (scikit-image's: D65 white, 2 degree observer) and the networks' Lab scaling
RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                       [0.212671, 0.715160, 0.072169],
                       [0.019334, 0.119193, 0.950227]])
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ).astype(np.float32)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883], np.float32)
L_SCALE, AB_SCALE = 50.0, 110.0  # the networks see L/50 - 1 and ab/110


# -----------------------------------------------------------------------------
# colour: color.py's maths in numpy, float32

def _srgb_to_linear(v):
    """sRGB values in [0,1] -> linear light."""
    return np.where(v > 0.04045, ((np.maximum(v, 0) + 0.055) / 1.055) ** 2.4, v / 12.92).astype(v.dtype)


def _linear_to_srgb(v):
    """Linear light -> sRGB values (unclipped)."""
    return np.where(v > 0.0031308, 1.055 * np.maximum(v, 0) ** np.float32(1 / 2.4) - 0.055, 12.92 * v)


def _lab_f(t):
    """CIE's cube root with its linear toe, on XYZ relative to white."""
    return np.where(t > 0.008856, np.cbrt(np.maximum(t, 1e-12)), 7.787 * t + 16 / 116).astype(np.float32)


_LINEAR_OF_UINT8 = _srgb_to_linear(np.arange(256) / 255).astype(np.float32)  # float64 maths, as color.py
_WEIGHTED_LINEAR = [RGB_TO_XYZ[1, c].astype(np.float32) * _LINEAR_OF_UINT8 for c in range(3)]  # Y's share per channel
_L_OF_GRAY = 116 * _lab_f(_LINEAR_OF_UINT8) - 16


def luminance(image):
    """CIE L (0-100) as float32 [H,W] of an HxW or HxWx3 image (uint8, or float in [0,1]): color.luminance."""
    if image.ndim == 3 and not ((image[..., 0] != image[..., 1]).any() or (image[..., 1] != image[..., 2]).any()):
        image = image[..., 0]  # a gray photo stored as RGB
    if image.dtype == np.uint8:
        if image.ndim == 2:
            return np.take(_L_OF_GRAY, image)
        Y = np.take(_WEIGHTED_LINEAR[0], image[..., 0])
        for c in (1, 2):
            Y += np.take(_WEIGHTED_LINEAR[c], image[..., c])
    else:
        linear = _srgb_to_linear(np.asarray(image, dtype=np.float32))
        Y = linear if linear.ndim == 2 else linear @ RGB_TO_XYZ[1].astype(np.float32)
    return 116 * _lab_f(Y) - 16


def _lab_to_rgb(L, ab, linear=False):
    """L [...] and ab [2,...] (Lab units) -> unclipped sRGB [3,...] (float32): color.lab_to_rgb(clip=False), or
    with linear=True its linear light (color.lab_to_rgb(linear=True))."""
    fy = (L + 16) / 116
    f = np.stack([fy + ab[0] / 500, fy, np.maximum(fy - ab[1] / 200, 0)])
    t = np.where(f > 0.2068966, f * f * f, (f - 16 / 116) / 7.787) * WHITE_D65.reshape((3,) + (1,) * L.ndim)
    rgb = (XYZ_TO_RGB @ t.reshape(3, -1)).reshape(t.shape)
    return rgb if linear else _linear_to_srgb(rgb)


def lab_to_rgb_keep_L(L, ab, steps=7):
    """L [H,W] and ab [2,H,W] -> sRGB [3,H,W] in [0,1]; out-of-gamut pixels lose chroma by bisection, never
    lightness: color.lab_to_rgb_keep_L."""
    rgb = _lab_to_rgb(L, ab)
    outside = ((rgb < 0) | (rgb > 1)).any(0)
    if outside.any():
        L_out, ab_out = L[outside], ab[:, outside]  # [n], [2,n]
        lo, hi = np.zeros_like(L_out), np.ones_like(L_out)  # chroma scales known to fit / not to fit
        for _ in range(steps):
            mid = (lo + hi) / 2
            trial = _lab_to_rgb(L_out, ab_out * mid, linear=True)
            fits = ((trial >= 0) & (trial <= 1)).all(0)
            lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid)
        rgb[:, outside] = _lab_to_rgb(L_out, ab_out * lo)
    return rgb.clip(0, 1)


# -----------------------------------------------------------------------------
# resampling: photo.py's F.interpolate calls as matrices

def _area_matrix(n_in, n_out):
    """[n_out, n_in] float32 matrix averaging as F.interpolate(mode='area') (adaptive average pooling): output i is
    the mean of inputs floor(i * n_in / n_out) to ceil((i + 1) * n_in / n_out) - 1."""
    i = np.arange(n_out)
    start, end = i * n_in // n_out, -(-(i + 1) * n_in // n_out)
    j = np.arange(n_in)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(np.float32)


def _bicubic_matrix(n_in, n_out, A=-0.75):
    """[n_out, n_in] float32 matrix resizing as F.interpolate(mode='bicubic', align_corners=False): Keys' cubic
    convolution (A = -0.75) at source x = (i + 0.5) * n_in / n_out - 0.5 (float32), indices clamped at the borders."""
    x = (np.arange(n_out, dtype=np.float32) + 0.5) * (np.float32(n_in) / np.float32(n_out)) - 0.5  # float32 as torch
    x0 = np.floor(x)
    t = x - x0
    near = lambda d: ((A + 2) * d - (A + 3)) * d * d + 1  # noqa: E731  |d| <= 1
    far = lambda d: ((A * d - 5 * A) * d + 8 * A) * d - 4 * A  # noqa: E731  1 < |d| < 2
    out = np.zeros((n_out, n_in))
    for k, weight in zip(range(-1, 3), (far(t + 1), near(t), near(1 - t), far(2 - t))):
        np.add.at(out, (np.arange(n_out), np.clip(x0 + k, 0, n_in - 1).astype(int)), weight)
    return out.astype(np.float32)


# -----------------------------------------------------------------------------
# the exported generator, and a photo colorized with it

def _check_metadata(config, multiple):
    """ValueError naming what is wrong unless `config` (a dict) has a positive int width, an int image_size of
    1-4096 px, hints true/false, and `multiple` is 1-1024 px (what colorize sizes its input by)."""
    if not isinstance(config, dict):
        raise ValueError(f"its metadata 'config' is {type(config).__name__}, not an object")
    width, size = config.get('width'), config.get('image_size')
    if not (type(width) is int and width >= 1 and type(size) is int and 1 <= size <= 4096):
        raise ValueError(f"its metadata 'config' needs width >= 1 and image_size 1-4096 (integers), not width "
                         f"{width!r} and image_size {size!r}")
    if not isinstance(config.get('hints', False), bool):
        raise ValueError(f"its metadata 'config' has hints {config['hints']!r}, not true or false")
    if not 1 <= multiple <= 1024:
        raise ValueError(f"its metadata 'multiple' is {multiple}, not 1-1024")


class OnnxGenerator:
    """A generator exported by export.py --format=onnx, run by onnxruntime on the CPU: G(L) -> ab, both network
    scale. `config` (its training config), `multiple` (input sides must be multiples of it), `hints` and
    `description` come from the file's metadata. threads=0: onnxruntime's default (one per core)."""

    def __init__(self, path, threads=0):
        try:
            import onnxruntime as ort  # the only heavy import here
        except ModuleNotFoundError:
            raise UserError("the ONNX backend needs onnxruntime, which this install leaves out: pip install "
                            "onnxruntime (or pip install 'colorize-gan[onnx]'; the light venv: pip install -r "
                            "requirements-light.txt)") from None
        if not os.path.isfile(path):
            raise UserError(f"model '{path}' does not exist; export one with python3 export.py --format=onnx "
                            "--checkpoint=RUN_OR_EXPORT")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # a failure reaches the user as one line of ours, not onnxruntime's log too
        if os.path.isdir(path):
            raise UserError(f"model '{path}' is a folder; pass the .onnx file export.py --format=onnx wrote")
        try:
            self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            meta = self.session.get_modelmeta().custom_metadata_map
            if 'config' not in meta or 'multiple' not in meta:
                raise ValueError("no 'config' and 'multiple' in its metadata: not a generator export.py wrote")
            self.config, self.multiple = json.loads(meta['config']), int(meta['multiple'])
            _check_metadata(self.config, self.multiple)
            # one small run at load: the inputs, the output and the stated multiple must all be what colorize feeds
            m = self.multiple
            feed = {'L': np.zeros((1, 1, m, m), np.float32)}
            if self.config.get('hints'):
                feed['hints'] = np.zeros((1, 3, m, m), np.float32)
            if sorted(i.name for i in self.session.get_inputs()) != sorted(feed):
                raise ValueError(f"its inputs are {[i.name for i in self.session.get_inputs()]}, not {list(feed)} as "
                                 "its metadata says")
            try:
                ab = self.session.run(['ab'], feed)[0]
            except Exception:
                raise ValueError(f"it fails on an input of {m}x{m} px, a size its metadata 'multiple' ({m}) "
                                 "allows") from None
            if ab.shape != (1, 2, m, m):
                raise ValueError(f"it maps L [1,1,{m},{m}] to {list(ab.shape)}, not ab [1,2,{m},{m}]")
        except Exception as e:
            raise UserError(f"cannot load '{path}' as an exported generator ({type(e).__name__}: "
                            f"{(str(e).splitlines() or ['unreadable'])[0][:160]}); export it again with "
                            "python3 export.py --format=onnx") from None
        self.hints = bool(self.config.get('hints'))
        self.description = f"{path} (onnx, {describe_generator(self.config)})"

    def __call__(self, L, hints=None):
        """L [N,1,h,w] float32 in [-1,1] (h, w multiples of `multiple`), hints [N,3,h,w] or None (no hints)
        -> ab [N,2,h,w] float32 in [-1,1]. ValueError for hints given to a generator without hint input."""
        L = np.ascontiguousarray(L, dtype=np.float32)
        if L.ndim != 4 or L.shape[1] != 1 or L.shape[2] % self.multiple or L.shape[3] % self.multiple:
            raise ValueError(f"L must be [N,1,H,W] with H and W multiples of {self.multiple}, not {list(L.shape)}")
        feed = {'L': L}
        if self.hints:
            feed['hints'] = np.zeros((L.shape[0], 3) + L.shape[2:], np.float32) if hints is None else \
                np.ascontiguousarray(hints, dtype=np.float32)
        elif hints is not None:
            raise ValueError("this generator has no hint input (it was trained without colour hints)")
        return self.session.run(['ab'], feed)[0]


def load_generator(path, threads=0):
    """An OnnxGenerator from an export.py --format=onnx file; UserError if missing or not such a file."""
    return OnnxGenerator(os.path.expanduser(path), threads)


def colorize(G, image, size=0, saturation=1.0):
    """Colorize a photo at full resolution with an OnnxGenerator: uint8 HxW or HxWx3 (or float in [0,1]) -> uint8
    HxWx3 sRGB whose L is the input's luminance; photo.colorize(upsample='bicubic', no hints) in numpy.

    G predicts ab at `size` px on the short side (0 = the size it was trained at) from the area-downscaled L;
    `saturation` scales that chroma (0 gives gray); ab is resized bicubically onto the full-resolution L in bands
    of rows and mapped into the sRGB gamut keeping L. `image` may also be a PIL image or any array images.as_pixels
    takes. Raises ValueError for an image or setting it cannot use."""
    from .images import as_pixels
    image = as_pixels(image)
    check_colorize_settings(size, saturation)
    H, W = image.shape[:2]
    L = luminance(image)  # [H,W], 0-100
    h, w = working_size(H, W, size, G.multiple, G.config['image_size'])
    L_small = _area_matrix(H, h) @ L @ _area_matrix(W, w).T  # [h,w]
    if saturation == 0:
        ab_small = np.zeros((2, h, w), np.float32)
    else:
        ab_small = G((L_small / L_SCALE - 1)[None, None])[0] * np.float32(AB_SCALE * saturation)  # [2,h,w], Lab
    cols = ab_small @ _bicubic_matrix(w, W).T  # [2,h,W]
    rows = _bicubic_matrix(h, H)  # [H,h]
    out = np.empty((H, W, 3), np.uint8)
    rows_per_chunk = max(1, PIXELS_PER_CHUNK // W)
    for top in range(0, H, rows_per_chunk):
        bottom = min(H, top + rows_per_chunk)
        rgb = lab_to_rgb_keep_L(L[top:bottom], rows[top:bottom] @ cols)  # [3,band,W]
        out[top:bottom] = (rgb * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    return out


# -----------------------------------------------------------------------------
# the command line: photo files in, PNG or JPEG out (colorize.py has the albums, resuming and hints)

def main(argv):
    """python3 -m colorize_gan.light PHOTO [...] --model=generator.onnx: each photo -> out_dir/<name>.png; returns the
    exit status (1 if any photo failed)."""
    from .images import describe_failure, model_id, output_settings, read_image, write_colorized
    from .utils import config_defaults, configure
    settings = {**config_defaults(globals()), '__file__': __file__}  # this call's own copy, not the module's
    _, photos = configure(settings, argv, excepthook=False, positional=True, flags=('overwrite',))
    model, out_dir, size, saturation, image_format, quality, threads, overwrite = (settings[k] for k in (
        'model', 'out_dir', 'size', 'saturation', 'image_format', 'quality', 'threads', 'overwrite'))
    if photos and not model:
        raise UserError("no --model: pass --model=generator.onnx, a generator written by python3 export.py "
                        "--format=onnx --checkpoint=RUN_OR_EXPORT")
    if not model or not photos:
        raise UserError("usage: python3 -m colorize_gan.light PHOTO [...] --model=generator.onnx [--out_dir=colorized] "
                        "[--saturation=1.0] [--size=0] [--image_format=png|jpg]")
    if not 0 <= threads <= 4 * (os.cpu_count() or 1):
        raise UserError(f"--threads={threads} must be between 0 (one per core) and {4 * (os.cpu_count() or 1)}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out_dir={out_dir} is a file; pass a folder")
    if image_format not in ('png', 'jpg'):
        raise UserError(f"--image_format={image_format} is not supported; use png or jpg")
    try:
        check_colorize_settings(size, saturation, quality=quality)
    except ValueError as e:
        raise UserError(f"--{e}") from None
    outputs = {}
    for path in photos:  # every input its own output, and nothing there already replaced without --overwrite
        out = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + '.' + image_format)
        if out in outputs:
            raise UserError(f"'{path}' and '{outputs[out]}' would both be written to '{out}'; colorize them in two "
                            "runs with different --out_dir, or use colorize.py (it keeps them apart)")
        if os.path.exists(out) and not overwrite:
            raise UserError(f"'{out}' exists; pass --overwrite to replace it, or another --out_dir")
        outputs[out] = path
    G = load_generator(model, threads)
    print(f"model: {G.description}")
    failed = 0
    for out, path in outputs.items():
        try:
            rgb = colorize(G, read_image(path), size, saturation)
            write_colorized(out, rgb, path, os.path.basename(model), image_format, quality,  # settings as colorize.py
                            output_settings(model_id(model), size or G.config['image_size'], saturation,
                                            image_format=image_format, quality=quality))
            print(f"{path} -> {out}")
        except (OSError, ValueError) as e:
            print(f"error: '{path}' could not be colorized ({describe_failure(e)})", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == '__main__':
    from .utils import one_line_errors
    one_line_errors()  # here, not in main(): a program that calls main() keeps its own sys.excepthook
    sys.exit(main(sys.argv[1:]))
