"""Reading pictures: finding the image files in a folder and decoding any of them into a numpy array."""
import io
import os
import re
from urllib.parse import quote, unquote

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .utils import atomic_write

try:  # phone photos (HEIC/HEIF) open like any other image once the plugin is registered
    import pillow_heif
    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - it is in requirements.txt
    pass

# every extension a registered Pillow decoder opens (JPEG, PNG, TIFF, WebP, AVIF, BMP, GIF, HEIC, JPEG 2000, ...),
# less the stub plugins that need outside handlers (scientific formats, WMF, EPS's Ghostscript) and MPEG video
_NOT_PHOTOS = {'BUFR', 'GRIB', 'HDF5', 'WMF', 'EPS', 'MPEG', 'FITS'}
IMAGE_EXTENSIONS = tuple(sorted(ext for ext, kind in Image.registered_extensions().items()  # MPO opens as JPEG
                                if (kind in Image.OPEN or kind == 'MPO') and kind not in _NOT_PHOTOS))


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB'))
SRGB_BYTES = SRGB.tobytes()  # what outputs are tagged with


def _to_srgb(im):
    """An 8-bit gray, RGB or CMYK image with an embedded ICC profile, converted through it to sRGB (as a colour-
    managed viewer shows it); others unchanged. Raises ValueError if the profile cannot be applied."""
    icc = im.info.get('icc_profile')
    if not icc or im.mode not in ('L', 'RGB', 'CMYK'):
        return im
    try:
        return ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB, outputMode='RGB')
    except (ImageCms.PyCMSError, OSError, ValueError) as e:
        raise ValueError(f"its embedded colour profile cannot be applied ({e})") from None


# TIFF tags that describe how the input file lays out its pixels (size, bits and format per sample, strips, tiles,
# compression, colour model, palette, its ICC profile): true of the input, false of an 8-bit sRGB output. A TIFF's
# getexif() holds them beside the descriptive tags; they are not carried over.
LAYOUT_TAGS = {256, 257, 258, 259, 262, 273, 277, 278, 279, 280, 281, 284, 317, 320, 322, 323, 324, 325, 330, 338,
               339, 340, 341, 347, 529, 530, 531, 532, 34675}


def read_metadata(path):
    """What a photo's file says beyond its pixels, for the output: {'dpi': (x, y) or None, 'exif': the EXIF less its
    orientation tag (the pixels come out already rotated) and LAYOUT_TAGS}."""
    with Image.open(path) as im:
        exif = im.getexif()
        for tag in (0x0112, *LAYOUT_TAGS):
            exif.pop(tag, None)
        dpi = im.info.get('dpi')
        return {'dpi': tuple(float(v) for v in dpi) if dpi else None, 'exif': exif}


def source_id(path):
    """What an output records of the input it was made from: '<file name>#<12 hex digits of the sha1 of its real
    path>' (the path itself stays private), so a rerun tells its own earlier output from one another input made."""
    import hashlib
    digest = hashlib.sha1(os.fsencode(os.path.realpath(path))).hexdigest()[:12]
    return f"{os.path.basename(path)}#{digest}"


def source_record(source, settings=''):
    """What an output records of how it was made: source_id(source), then '; ' and `settings` (colorize.py's
    'name=value ...' words) when given."""
    return source_id(source) + (f'; {settings}' if settings else '')


def input_digest(path, whole_up_to=64 << 20, ends=8 << 20):
    """8 hex digits of the SHA-1 of the file at `path`: of its bytes, or for a file over `whole_up_to` bytes (a film)
    of its size and its first and last `ends` bytes. An output records it (output_settings' `input_sha1`), so a
    rerun tells an output of this input from one of a file since replaced at the same path, whatever the dates say.
    Raises OSError when the file cannot be read."""
    import hashlib
    digest = hashlib.sha1()
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        if size <= whole_up_to:
            hashlib.file_digest(f, lambda: digest)
        else:
            digest.update(str(size).encode() + f.read(ends))
            f.seek(size - ends)
            digest.update(f.read(ends))
    return digest.hexdigest()[:8]


def model_id(path):
    """How an output names the model file it was made with: its name, '@', the first 8 hex digits of its SHA-1."""
    import hashlib
    with open(path, 'rb') as f:
        return f"{os.path.basename(path)}@{hashlib.file_digest(f, 'sha1').hexdigest()[:8]}"


def output_settings(model, size, saturation, upsample='bicubic', side_by_side=False, hints=(), image_format='png',
                    quality=95, hint_spread=0, **more):
    """The settings an output is made with, as the 'name=value' words its file records (source_record), so that a
    rerun tells an output made as it would make it from one made otherwise: `model` is model_id(...), `size` the
    working size used (not 0), `hints` the photo's hints in any order (recorded as their number and a digest),
    `hint_spread` recorded only with hints and when not 0, HINT_RULE with any hints (UNRECORDED: what outputs made
    before they existed were), `more` further settings (input_sha1=input_digest(...), a video's). Values are
    percent-encoded: no spaces."""
    import hashlib
    import json
    words = {'model': model, 'size': size, 'saturation': saturation, 'upsample': upsample, 'side_by_side': side_by_side}
    plain = lambda v: v.tolist() if hasattr(v, 'tolist') else str(v)  # noqa: E731  (numpy numbers in a hint)
    digest = hashlib.sha1(json.dumps(sorted(json.dumps(h, sort_keys=True, default=plain) for h in hints)).encode())
    words['hints'] = f"{len(hints)}@{digest.hexdigest()[:8]}" if hints else 'none'
    if hints:
        words['hint_rule'] = HINT_RULE
        if hint_spread:
            words['hint_spread'] = hint_spread
    if image_format == 'jpg':
        words['quality'] = quality
    words.update(more)
    return ' '.join(f"{name}={quote(str(value), safe='@#.,+-')}" for name, value in words.items())


HINT_RULE = 2  # how hints make an output: 2 = the model sees at most 2 cells of each and smaller hints win overlaps
# (session 17), 1 = before; recorded with hints so a rerun does not keep an output the hints would now make otherwise
UNRECORDED = {'hint_spread': '0', 'hint_rule': '1'}  # what a setting an output does not record was (as before it
# existed: no spread; the first hint rule)


def matches_output(recorded, current):
    """(equal, by date): whether an output recording the settings `recorded` (output_settings' text) is the one
    `current` makes. An output made before outputs recorded their input (no `input_sha1`) is compared without it,
    and by_date is then True: the caller must also find it newer than its input, as such outputs were judged."""
    if 'input_sha1=' in recorded:
        return recorded == current, False
    return recorded == without_input(current), True


def without_input(settings):
    """output_settings' text without its input_sha1 word (what outputs made before it was recorded hold)."""
    return ' '.join(word for word in settings.split() if not word.startswith('input_sha1='))


def settings_changes(recorded, current):
    """'saturation=1.0, now 1.3; ...': the settings that differ between two output_settings texts ('the input file
    changed since' for input_sha1)."""
    old, new = ({name: unquote(value) for name, _, value in (w.partition('=') for w in text.split())}
                for text in (recorded, current))
    shown = lambda words, name: words.get(name, UNRECORDED.get(name, '(none)'))  # noqa: E731
    if 'none' in (old.get('hints'), new.get('hints')):  # hints on one side only: how they are used is no change
        old, new = ({k: v for k, v in words.items() if k not in ('hint_rule', 'hint_spread')} for words in (old, new))
    return '; '.join(f"the input file changed since (sha1 {old[name]}, now {new[name]})" if name == 'input_sha1'
                     else f"{name}={shown(old, name)}, now {shown(new, name)}"
                     for name in dict.fromkeys([*new, *old]) if old.get(name) != new.get(name))


def parse_record(record):
    """(source_id, settings or None) of a record source_record made; settings is None for an output that records
    none (written before settings were recorded)."""
    match = re.fullmatch(_RECORD, record, flags=re.S)
    return (match.group(1), match.group(2)) if match else (record, None)


_RECORD = r'(.*#[0-9a-f]{12})(?:; (.*))?'  # source_record's form


def is_record(record):
    """True for a record (recorded_source, or the video's) that source_record wrote: the file is colorize.py's output;
    False for None or any other text."""
    return record is not None and re.fullmatch(_RECORD, record, flags=re.S) is not None


def recorded_source(path):
    """The record (source_record) a colorized photo written by write_colorized holds (EXIF DocumentName), or None if
    it holds none (written by something else) or cannot be read."""
    try:
        with Image.open(path) as im:
            value = im.getexif().get(0x010D)
    except Exception:
        return None
    return decode_source(value) if isinstance(value, str) and '#' in value else None


# EXIF text is ASCII, and an mp4's metadata UTF-8: a file name's other characters and undecodable bytes are stored
# percent-encoded (UTF-8, or the raw bytes), as in URLs
_PRINTABLE_ASCII = ''.join(chr(c) for c in range(32, 127) if chr(c) != '%')


def encode_source(value):
    """source_id(...) as printable ASCII (percent-encoding), for metadata that takes no other text."""
    return quote(value, safe=_PRINTABLE_ASCII, errors='surrogateescape')


def decode_source(value):
    """The inverse of encode_source."""
    return unquote(value, errors='surrogateescape')


def write_colorized(path, rgb, source, model_name, image_format='png', quality=95, settings=''):
    """Write a colorization (uint8 HxWx3 sRGB) as PNG or JPEG ('png' | 'jpg', JPEG `quality` 1-100), atomically,
    keeping the history of the photo it came from (`source`, a file path): its resolution (dpi) and EXIF less the
    orientation tag, plus EXIF Software/ImageDescription saying it was colorized and by which model and DocumentName
    holding source_record(source, settings), and an sRGB profile so colour-managed viewers show it as computed.
    Raises OSError/ValueError if the file cannot be written."""
    meta = read_metadata(source)
    meta['exif'][0x0131] = f"colorize-gan, {model_name}"  # Software
    meta['exif'][0x010E] = "colorized from its lightness by a conditional GAN"  # ImageDescription
    meta['exif'][0x010D] = encode_source(source_record(source, settings))  # DocumentName: a rerun checks it
    options = {'format': 'JPEG', 'quality': quality} if image_format == 'jpg' else {'format': 'PNG'}
    options.update(exif=meta['exif'].tobytes(), icc_profile=SRGB_BYTES, **({'dpi': meta['dpi']} if meta['dpi'] else {}))
    pil = Image.fromarray(rgb)
    atomic_write(path, lambda f: pil.save(f, **options))


def _scaled(arr, mode):
    """A 16-bit, 32-bit integer or float single-channel image as float32 in [0, 1], by the range its values use:
    16-bit as 0-65535 (the type's range, as viewers show it); float in 0-1 as it is; whole numbers >= 0 in 32-bit
    integer or float files by the bit depth they hold (at least 8: 0-255, 0-1023, 0-4095, 0-65535, ...), since such
    files carry no depth of their own; signed values and other floats stretched from their minimum to their
    maximum. ValueError if none is finite."""
    arr = arr.astype(np.float32)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise ValueError(f"its {mode} pixels hold no finite values")
    if finite.size < arr.size:  # no value there (NaN, inf): no lightness to keep, so none is made up
        raise ValueError(f"{arr.size - finite.size} of its {mode} pixels hold no number (NaN or inf); fill them "
                         "first (an image editor, or numpy.nan_to_num)")
    low, top = float(finite.min()), float(finite.max())
    if mode.startswith('I;16'):
        low, scale = 0.0, 65535.0  # a 16-bit file: its type's range, as viewers show it
    elif mode == 'F' and 0 <= low and top <= 1:
        low, scale = 0.0, 1.0
    elif low < 0 or mode == 'F' and not np.array_equal(finite, np.round(finite)):
        scale = max(top - low, 1e-12)  # signed values, or fractional floats outside 0-1: stretch the range they use
    else:  # whole numbers in a 32-bit container: the bit depth they hold (8, 10, 12, 16 bits)
        low, scale = 0.0, float(2 ** max(8, int(top).bit_length()) - 1)
    return np.nan_to_num((arr - low) / scale, nan=0.0, posinf=1.0, neginf=0.0).clip(0, 1)


def read_image(path):
    """Decode an image file with EXIF orientation applied: HxW (grayscale) or HxWx3 (colour) numpy array.

    8-bit images come back as uint8, converted to sRGB through their embedded ICC profile if they have one;
    16-bit, 32-bit and float single-channel images as float32 in [0,1], scaled by the range their values use
    (_scaled). Palette images are expanded, transparent ones composited over white,
    CMYK, YCbCr, LAB and HSV converted to RGB. Raises OSError/ValueError if the file is unreadable, has several
    frames (an animation, a multi-page TIFF: none is dropped silently) or is in a mode with no such conversion."""
    with Image.open(path) as im:
        frames = getattr(im, 'n_frames', 1)
        if im.format in ('MPO', 'HEIF', 'AVIF'):  # a camera's JPEG with a preview, a phone's HEIC with its
            frames = 1  # thumbnails or depth map: the first image is the photo, and the decoder reads it
        if frames > 1:
            raise ValueError(f"it holds {frames} frames (an animation or a multi-page file); save the one to "
                             "colorize as a single image")
        im.load()
        return pixels(im)


def pixels(im):
    """A decoded PIL image as read_image returns it (EXIF orientation and ICC profile applied, modes converted and
    scaled as read_image says): HxW or HxWx3, uint8 or float32 in [0,1]. Raises ValueError for a mode with no such
    conversion or no finite values."""
    deep = im.mode.startswith('I;16') or im.mode in ('I', 'F')
    white_is_zero = deep and getattr(im, 'tag_v2', {}).get(262) == 0  # a TIFF's MinIsWhite: Pillow inverts 8-bit
    # ones itself, not deeper ones
    im = _to_srgb(ImageOps.exif_transpose(im))
    if deep:
        scaled = _scaled(np.asarray(im), im.mode)
        return 1 - scaled if white_is_zero else scaled
    if im.mode == 'P' and 'transparency' not in im.info:
        im = im.convert('RGB')
    elif im.mode in ('P', 'PA', 'LA', 'La', 'RGBA', 'RGBa') or 'transparency' in im.info:
        rgba = np.asarray(im.convert('RGBA') if im.mode != 'La' else im.convert('LA').convert('RGBA'),
                          dtype=np.float32) / 255
        alpha = rgba[..., 3:]
        return np.round((rgba[..., :3] * alpha + (1 - alpha)) * 255).astype(np.uint8)
    if im.mode in ('L', '1'):
        return np.asarray(im.convert('L'))
    return np.asarray(im.convert('RGB'))


def as_pixels(image):
    """A PIL image, or a numpy array (HxW gray, HxWx3 RGB or HxWx4 RGBA; uint8 0-255 or float 0-1; HxW gray also
    uint16 or int32, scaled by the range its values use, as read_image scales such files), as the pipeline's input:
    what read_image gives for the same picture saved to a file. Raises ValueError otherwise: an animation (several
    frames: as colorize.py, none is dropped silently), or a file that fails to decode."""
    if isinstance(image, Image.Image):
        if min(image.size) < 1:
            raise ValueError(f"the image is {image.size[0]}x{image.size[1]} pixels: nothing to colorize")
        frames = getattr(image, 'n_frames', 1)
        if frames > 1:
            raise ValueError(f"the image holds {frames} frames (an animation or a multi-page file); pass one frame "
                             "(image.seek(i), then image.copy())")
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, AssertionError) as e:  # damaged, truncated, or its file closed
            why = describe_failure(e) if str(e) else ("its file is closed: load it (image.load()) inside the with "
                                                      "block, or pass image.copy()")
            raise ValueError(f"the image cannot be decoded ({why})") from None
        return pixels(image)
    if not isinstance(image, np.ndarray):
        raise ValueError(f"cannot colorize a {type(image).__name__}: pass a PIL image or a numpy array (a list of "
                         "them gives a list)")
    if image.ndim not in (2, 3) or image.ndim == 3 and image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"an image array is HxW, HxWx3 or HxWx4 with at least one pixel, not {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype == np.uint8:
        return pixels(Image.fromarray(image)) if image.ndim == 3 and image.shape[2] == 4 else image
    if image.ndim == 2 and image.dtype in (np.uint16, np.int32):  # a 16-bit scan, as Pillow reads one
        return pixels(Image.fromarray(image))
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"an image array is uint8 (0-255) or float (0-1) (gray also uint16 or int32), not "
                         f"{image.dtype}{' colour' if image.ndim == 3 else ''}")
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise ValueError("a float image array holds values in [0, 1] (and no nan or inf)")
    if image.ndim == 3:  # float colour: 8 bits are what the pipeline reads from colour files
        rgba = np.round(image * 255).astype(np.uint8)
        return pixels(Image.fromarray(rgba)) if rgba.shape[2] == 4 else rgba
    return image.astype(np.float32)


def image_size(path):
    """(height, width) of an image as read_image returns it (EXIF rotation applied), from its header alone."""
    with Image.open(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def describe_failure(error):
    """What went wrong reading an image, in words for people: 'the file is damaged or incomplete' for a truncated or
    corrupt stream, 'not an image format this can open' for an unknown one, else the decoder's own first line."""
    text = (str(error).splitlines() or [''])[0]
    low = text.lower()
    if isinstance(error, EOFError) or any(k in low for k in ('truncated', 'broken data stream', 'premature end',
                                                               'corrupt', 'unexpected end')):
        return 'the file is damaged or incomplete'
    if isinstance(error, UnidentifiedImageError):
        return 'not an image format this can open'
    return text[:160] or type(error).__name__


# folders that photo managers, NAS systems and operating systems keep beside the photos: thumbnails and metadata
SYSTEM_FOLDERS = {'@eaDir', '#recycle', '#snapshot', '__MACOSX', '$RECYCLE.BIN', 'System Volume Information',
                  'Thumbs', '.thumbnails', '.picasaoriginals', 'lost+found'}


# why list_images leaves a file out, as (one, several) for the line that counts them
HIDDEN_FOLDER = ('hidden or system folder', 'hidden or system folders')
HIDDEN_FILE = ('hidden file', 'hidden files')
OTHER_TYPE = ('file of no image type', 'files of no image type')


def list_images(folder):
    """(image files under `folder` at any depth, sorted; what was left out, as (path, reason) pairs, each reason
    one of HIDDEN_FOLDER, HIDDEN_FILE, OTHER_TYPE). Left out:
    files no Pillow decoder takes by their extension, hidden files and folders (a leading dot), and SYSTEM_FOLDERS.
    Links to folders are followed, each real folder once (so a link loop ends)."""
    found, skipped, visited = [], [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        for d in sorted(dirs):
            if d.startswith('.') or d in SYSTEM_FOLDERS:
                skipped.append((os.path.join(root, d), HIDDEN_FOLDER))
        dirs[:] = sorted(d for d in dirs if not (d.startswith('.') or d in SYSTEM_FOLDERS))
        for f in sorted(files):
            if f.startswith('.'):
                skipped.append((os.path.join(root, f), HIDDEN_FILE))
            elif f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(root, f))
            else:
                skipped.append((os.path.join(root, f), OTHER_TYPE))
    return found, skipped
