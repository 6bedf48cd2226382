"""Colorize your own photos at their full resolution.

    python3 colorize.py old_photo.jpg --out_dir=colorized
    python3 colorize.py album/ 'scans/*.png' --out_dir colorized --side_by_side --image_format=jpg --saturation=1.2
    python3 colorize.py photo.jpg --hint=120,80,#1f4fbf --hint=300,410,red     # colours you know (a hint model)
    python3 colorize.py home_movie.mp4 --temporal=0.95 --video_quality=18       # a video: colorized/home_movie.mp4

Inputs are files, folders (searched recursively) and globs, photos and videos. Outputs keep each input's width,
height and luminance and are written under out_dir with the input's name (names that would collide keep their folders);
inputs are never modified, and files already under out_dir are never taken as inputs. Installed with pip, this is the
`colorize` command: `colorize old_photo.jpg --out_dir=colorized`.
"""
import glob
import os
import signal
import sys
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

import colorize_gan.script  # noqa: F401  (before the library loads PyTorch: one-line errors and a quiet Ctrl-C)
from colorize_gan.checkpoint import PHOTO_GENERATOR, checkpoint_file, load_generator
from colorize_gan.color import is_gray
from colorize_gan.device import resolve_device
from colorize_gan.hints import HINT_SPREAD, check_hint_spread, check_inside, load_hints_file, parse_hint
from colorize_gan.images import (
    IMAGE_EXTENSIONS,
    OTHER_TYPE,
    describe_failure,
    image_size,
    input_digest,
    is_record,
    list_images,
    matches_output,
    model_id,
    output_settings,
    parse_record,
    read_image,
    settings_changes,
    source_id,
    without_input,
    write_colorized,
)
from colorize_gan.images import recorded_source as image_source
from colorize_gan.naming import output_names
from colorize_gan.photo import UPSAMPLING, colorize
from colorize_gan.utils import (
    UserError,
    check_colorize_settings,
    check_out_dir,
    configure,
    exit_at_once_on_signals,
    remove_stale_temps,
    working_short_side,
)
from colorize_gan.video import MAX_TEMPORAL, VIDEO_EXTENSIONS, colorize_video, is_video
from colorize_gan.video import recorded_source as video_source

# -----------------------------------------------------------------------------
out_dir = 'colorized'  # outputs go here, mirroring the input names
checkpoint = ''  # a checkpoint, run folder or export; '' = pretrained/photo_generator.safetensors
device = 'auto'  # auto | cpu | cuda
size = 0  # px, short side of the model's working resolution; 0 = the size the model was trained at
saturation = 1.0  # scales the predicted chroma before gamut mapping: 0 = gray, 1 = as predicted, 1.3 = vivid
image_format = 'png'  # png | jpg
quality = 95  # JPEG quality, with --image_format=jpg
side_by_side = False  # write input | colorized next to each other
upsample = 'bicubic'  # how the predicted colour reaches full size: bicubic | guided (a guided filter on L's edges)
overwrite = False  # redo outputs made otherwise (else: made from this input with these settings = done; others refused)
max_megapixels = 500.0  # larger images are refused before decoding (memory); raise it for bigger scans
hint = ''  # x,y,colour[,radius]: a colour you know at that point (repeatable); only its ab is used, L is kept
hints = ''  # a JSON file (repeatable): [{"x": .., "y": .., "color": .., "radius": ..}], or an object keyed by name
hint_spread = HINT_SPREAD  # how far each hint's colour spreads on flat lightness, x the short side; 0 = model only
temporal = 0.95  # videos: colour stabilization over frames: 0 = each frame alone, 0.95 = averaged over ~39 frames
video_quality = 18  # videos (written as H.264 mp4): x264 CRF: 0 lossless, 18 about visually lossless, 51 worst
backend = 'torch'  # torch | onnx: --checkpoint=model.onnx (export.py --format=onnx) on onnxruntime (light.py)
# -----------------------------------------------------------------------------
config, inputs = configure(globals(), sys.argv[1:], positional=True, flags=('side_by_side', 'overwrite'),
                           repeatable=('hint', 'hints'))
if image_format not in ('png', 'jpg'):
    raise UserError(f"--image_format={image_format} is not supported; use --image_format=png or --image_format=jpg")
if image_format == 'png' and quality != 95:  # said, not silently unused
    print(f"note: --quality={quality} is for --image_format=jpg; PNG outputs are lossless")
try:
    check_colorize_settings(size, saturation, upsample, UPSAMPLING, quality)
    hint_spread = config['hint_spread'] = check_hint_spread(hint_spread)
except ValueError as e:
    raise UserError(f"--{e}") from None
if not 0 < max_megapixels <= 100000:
    raise UserError(f"--max_megapixels={max_megapixels} must be above 0 (and at most 100000)")
Image.MAX_IMAGE_PIXELS = None  # our own limit below replaces Pillow's decompression-bomb guard, with a clear message
if not 0 <= temporal <= MAX_TEMPORAL:
    raise UserError(f"--temporal={temporal} must be between 0 (each frame colorized alone) and {MAX_TEMPORAL}")
if not 0 <= video_quality <= 51:
    raise UserError(f"--video_quality={video_quality} must be between 0 (lossless) and 51 (x264 CRF; 18 is about "
                    "visually lossless)")
if not inputs:
    raise UserError("no inputs; usage: python3 colorize.py PHOTO|FOLDER|GLOB [...] --out_dir=DIR")
if not out_dir.strip():
    raise UserError("--out_dir is empty; pass the folder the colorized photos go to (e.g. --out_dir=colorized)")
out_dir = os.path.normpath(os.path.expanduser(out_dir))
out_real = os.path.realpath(out_dir)


def shown(path):
    """A path as text that any terminal can print on one line, whatever bytes its name holds (undecodable bytes and
    control characters escaped)."""
    text = os.fsencode(path).decode('utf-8', 'backslashreplace')
    return ''.join(ch if ch.isprintable() else ch.encode('unicode_escape').decode() for ch in text)


def inside_out_dir(path):
    """True for files under out_dir: earlier outputs are never taken as inputs."""
    real = os.path.realpath(path)
    return real == out_real or real.startswith(out_real + os.sep)


AUDIO_EXTENSIONS = ('.mp3', '.m4a', '.aac', '.wav', '.flac', '.ogg', '.opus', '.wma', '.aiff')
EARLIER_OUTPUT = ('colorized output of an earlier run', 'colorized outputs of an earlier run')


def list_media(folder):
    """images.list_images, with the videos (video.VIDEO_EXTENSIONS) among what it leaves out taken as well, and
    colorize.py's own outputs (they record their input) left out as EARLIER_OUTPUT: a rerun into another --out_dir
    does not colorize the first run's outputs again."""
    files, left_out = list_images(folder)
    videos = {path for path, reason in left_out if reason == OTHER_TYPE and is_video(path)}
    files = sorted(files + list(videos))
    earlier = {path for path in files if not inside_out_dir(path)  # those are left out anyway, and said so
               and is_record((video_source if is_video(path) else image_source)(path))}
    return ([f for f in files if f not in earlier],
            [item for item in left_out if item[0] not in videos] + [(path, EARLIER_OUTPUT) for path in sorted(earlier)])


def expand(arg):
    """(files, base) for one command-line input: a file, a folder (recursive) or a glob; base anchors output names."""
    arg = os.path.expanduser(arg)
    if os.path.isdir(arg):
        files, left_out = list_media(arg)
        skipped.extend(left_out)
        kept = [f for f in files if not inside_out_dir(f)]
        excluded[arg] = len(files) - len(kept)
        return kept, os.path.dirname(os.path.normpath(arg)) or '.'
    if os.path.isfile(arg):
        return [arg], os.path.dirname(arg) or '.'
    if glob.has_magic(arg):
        matched = sorted(glob.glob(arg, recursive=True))
        files = []
        for f in matched:  # a glob may name folders too: they are searched as folders are
            if os.path.isdir(f):
                found, left_out = list_media(f)
                files.extend(found)
                skipped.extend(item for item in left_out if item[1] == EARLIER_OUTPUT)
            elif os.path.isfile(f) and f.lower().endswith(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS):
                if is_record((video_source if is_video(f) else image_source)(f)):
                    skipped.append((f, EARLIER_OUTPUT))
                else:
                    files.append(f)
        kept = [f for f in files if not inside_out_dir(f)]
        excluded[arg] = len(files) - len(kept)
        return kept, os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in kept]) if kept else None
    return None, None


def relative_name(path, base):
    """The input's name relative to its base (its own name when it lies outside it)."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
    return os.path.basename(path) if rel.startswith('..') else rel


# every input gets its own output: names that would collide keep more of their folders, then their extension
planned, failed, seen, excluded, skipped = [], [], set(), {}, []  # planned: (input path, name relative to its base)
for arg in inputs:
    skipped_before = len(skipped)
    files, base = expand(arg)
    if files is None:
        print(f"error: '{shown(arg)}' does not exist", file=sys.stderr)
        failed.append(arg)
        continue
    if not files:
        earlier = sum(reason == EARLIER_OUTPUT for _, reason in skipped[skipped_before:])
        why = (f"its {excluded[arg]} image(s) are under --out_dir={shown(out_dir)}, and outputs are never inputs"
               if excluded.get(arg) else f"its {earlier} file(s) are colorized outputs of an earlier run; name such a "
               "file itself to colorize it again" if earlier else "it matches no file" if glob.has_magic(arg) and not
               glob.glob(os.path.expanduser(arg), recursive=True) else
               "none with an extension Pillow or the video decoder opens")
        print(f"error: '{shown(arg)}' holds no image files to colorize ({why})", file=sys.stderr)
        failed.append(arg)
        continue
    for path in files:
        if os.path.realpath(path) in seen:  # named twice, e.g. by a folder and a glob
            continue
        seen.add(os.path.realpath(path))
        planned.append((path, relative_name(path, base)))


if skipped:  # one line for everything a folder held that is not taken
    kinds = {}
    for path, reason in skipped:
        kinds.setdefault(reason, []).append(path)
    print("skipped " + '; '.join(f"{len(paths)} {reason[len(paths) > 1]} ("
                                 + ', '.join(shown(os.path.basename(p)) for p in paths[:3])
                                 + (', ...' if len(paths) > 3 else '') + ')' for reason, paths in kinds.items()))
outputs = output_names(planned, out_dir, image_format)
jobs = [(path, outputs[path]) for path, _ in planned]

# hints (Zhang et al. 2017): checked whole, against each photo's size, before any work
try:
    given = [parse_hint(text) for text in hint.split('\n') if text.strip()]
    from_files = [(name, load_hints_file(os.path.expanduser(name))) for name in hints.split('\n') if name.strip()]
except ValueError as e:
    raise UserError(str(e)) from None
hints_of = {path: list(given) for path, _ in jobs}
for name, from_file in from_files:  # each file adds its hints to those before it
    if isinstance(from_file, dict):  # keyed by file name, the end of its path (a/photo.jpg) where names repeat, or path
        for key, key_hints in from_file.items():
            parts = os.path.normpath(key).split(os.sep)
            same_file = os.path.realpath(os.path.expanduser(key))  # a key may also be an input's own path
            matches = [path for path, rel in planned if os.path.normpath(rel).split(os.sep)[-len(parts):] == parts
                       or os.path.realpath(path) == same_file]
            if not matches:
                raise UserError(f"--hints={name} has hints for {key!r}, which is not among the inputs; key the object "
                                "by the inputs' file names (or the end of their paths, e.g. a/photo.jpg, or their "
                                "paths)")
            if len(matches) > 1:
                named = ', '.join(shown(m) for m in matches[:3])
                raise UserError(f"--hints={name}: {key!r} names {len(matches)} inputs ({named}); key it by more of "
                                f"the path, e.g. {os.path.join('<folder>', key)!r}")
            hints_of[matches[0]] += key_hints
    else:
        for path in hints_of:
            hints_of[path] += from_file
for path, _ in jobs:
    if hints_of[path] and is_video(path):
        print(f"note: hints are used for photos only; '{shown(path)}' is colorized without them")
        hints_of[path] = []
    if hints_of[path]:
        try:
            height, width = image_size(path)
        except Exception:
            continue  # unreadable: reported with the photo below
        try:
            check_inside(hints_of[path], height, width, f"'{shown(path)}'")
        except ValueError as e:
            raise UserError(str(e)) from None

# the output folder must be writable before the model loads and any photo is read (it is made at the first write)
if jobs:
    check_out_dir(out_dir)
    # what a killed run (SIGKILL, out of memory) left half-written beside an output: atomic_write's .<name>.*.tmp,
    # untouched for 2 minutes (a live run writing a video touches its own every frame)
    outputs_in = {}
    for _, out in jobs:
        outputs_in.setdefault(os.path.dirname(out), set()).add(os.path.basename(out))
    stale = [name for folder, names in outputs_in.items()
             for name in remove_stale_temps(folder, names.__contains__, min_age_s=120)]
    if stale:
        print(f"removed {len(stale)} half-written temp file(s) a stopped run left "
              f"({', '.join(shown(name) for name in stale[:3])}{', ...' if len(stale) > 3 else ''})")

dev = resolve_device(device)
if backend == 'onnx':  # light.py: photos only, bicubic upsampling, no hints
    from colorize_gan import light
    videos = [p for p, _ in jobs if is_video(p)]
    for problem, fix in ((not checkpoint, "needs --checkpoint=MODEL.onnx (python3 export.py --format=onnx)"),
                         (upsample != 'bicubic', f"has no --upsample={upsample} (bicubic only)"),
                         (any(hints_of.values()), "takes no hints"),
                         (videos, f"colorizes photos only, and {len(videos)} input(s) are videos "
                                  f"({shown(videos[0]) if videos else ''})")):
        if problem:
            raise UserError(f"--backend=onnx {fix}; use --backend=torch (the default) for that")
    G = light.load_generator(checkpoint) if jobs else None
    description = G.description if jobs else ''
    colorize = lambda G, image, size, dev, saturation, hints, upsample, hint_spread: \
        light.colorize(G, image, size, saturation)  # noqa: E731  (photo.colorize's call, on light.py)
elif backend != 'torch':
    raise UserError(f"--backend={backend} is not one of torch, onnx")
else:
    G, description = load_generator(checkpoint or PHOTO_GENERATOR, dev) if jobs else (None, '')
if jobs:
    print(f"model: {description}")


def settings_of(path, digests={}):
    """The settings the output of `path` is made with (images.output_settings), as its file records them: with the
    input's digest (images.input_digest, read once a file) and, for a photo, the working size it is colorized at."""
    if path not in digests:
        digests[path] = input_digest(path)
    if is_video(path):
        return output_settings(model_record, size or G.config['image_size'], saturation, upsample, side_by_side,
                               temporal=temporal, video_quality=video_quality, input_sha1=digests[path])
    used = working_short_side(*image_size(path), size, G.config['image_size'])  # a --size above the photo's: its own
    return output_settings(model_record, used, saturation, upsample, side_by_side, hints_of[path],
                           image_format, quality, hint_spread, input_sha1=digests[path])


model_record = model_id(checkpoint if backend == 'onnx' else checkpoint_file(checkpoint or PHOTO_GENERATOR)) \
    if jobs else ''
if any(hints_of.values()) and not G.hints:
    raise UserError(f"the model {checkpoint or PHOTO_GENERATOR} has no hint input (it was trained without colour "
                    "hints); drop --hint/--hints, or pass --checkpoint=<a model trained with --hints=True>")
input_paths = {os.path.realpath(p) for p, _ in jobs}
written, colored, size_capped = 0, 0, []
t_model = t_io = 0.0


stop_requested = []


def on_interrupt(signum, frame):
    """Ctrl-C or SIGTERM (a service manager, a container stopping): finish the photo in hand, drop the video in hand
    (its temporary file removed), then stop; a second one stops at once (no half-written file either way)."""
    name = 'Ctrl-C' if signum == signal.SIGINT else signal.Signals(signum).name
    if stop_requested:  # the file being written is removed on the way out; finished outputs are kept
        print(f"\ninterrupted ({name} again): stopped at once; rerun the same command to continue", file=sys.stderr,
              flush=True)
        raise SystemExit(128 + signum)
    stop_requested.append(signum)
    print(f"\n{name}: stopping after this photo, or now for a video (press Ctrl-C again to stop at once)",
          file=sys.stderr, flush=True)


class VideoStopped(Exception):
    """Raised from a video's progress callback after Ctrl-C: the video in hand is dropped (no output for it)."""


partial, t_video = [], 0.0  # videos whose damaged stream was colorized up to where it broke off; seconds on videos


def colorize_one_video(path, out):
    """Colorize one video into `out` with a progress bar (frames, frames/s, time left); prints what was written.
    Returns True if written (a damaged stream's colorized beginning too, with a line saying where it stopped),
    False after a one-line error, None if Ctrl-C stopped it (nothing written)."""
    global t_video
    t0 = time.time()
    bar = tqdm(desc=shown(os.path.basename(path)), unit='frame', leave=False, disable=None, dynamic_ncols=True)

    def progress(done, total):
        bar.total = total or None
        bar.update(done - bar.n)
        if stop_requested:
            raise VideoStopped

    try:
        result = colorize_video(G, path, out, size, dev, saturation, temporal, video_quality, upsample, side_by_side,
                                progress, settings_of(path))
    except VideoStopped:
        print(f"stopped in the middle of '{shown(path)}': no output written for it", file=sys.stderr)
        return None
    except UserError as e:  # not a video, no video stream, no frames: the reason says which
        print(f"error: '{shown(path)}': {e}", file=sys.stderr)
        return False
    except KeyboardInterrupt:
        raise
    except Exception as e:
        print(f"error: '{shown(path)}' could not be colorized and written to '{shown(out)}' ({describe_failure(e)})",
              file=sys.stderr)
        return False
    finally:
        bar.close()
    seconds = time.time() - t0
    t_video += seconds
    if result.stopped:  # kept under a name that says so: a rerun tries the input again rather than taking it as done
        kept = f"{os.path.splitext(out)[0]}.partial.mp4"
        os.replace(out, kept)
        out = kept
    print(f"{shown(path)} -> {shown(out)} ({result.width}x{result.height}, {result.frames} frames, "
          f"{result.frames / seconds:.1f} frames/s)")
    for note in result.notes:
        print(f"note: '{shown(path)}': {note}")
    if result.stopped:
        partial.append(path)
        print(f"error: '{shown(path)}' is damaged or incomplete: {result.stopped}; the {result.frames} frames before "
              f"that are colorized in '{shown(out)}' (kept)", file=sys.stderr)
    return True


signal.signal(signal.SIGINT, on_interrupt)
signal.signal(signal.SIGTERM, on_interrupt)
done_before, other_settings = 0, []  # outputs already there: made as this run would, or with other settings
for path, out in jobs:
    if stop_requested:
        break
    if os.path.realpath(out) in input_paths:
        print(f"error: '{shown(path)}': its output '{shown(out)}' would overwrite an input; choose another --out_dir",
              file=sys.stderr)
        failed.append(path)
        continue
    if os.path.isdir(out):
        print(f"error: '{shown(out)}', where the output of '{shown(path)}' goes, is a folder; move it, or pass another "
              "--out_dir", file=sys.stderr)
        failed.append(path)
        continue
    if os.path.exists(out):  # a rerun continues: what is done stays, nothing is silently replaced
        record = (video_source if is_video(path) else image_source)(out)
        made_from, made_with = parse_record(record) if record is not None else (None, None)
        newer = os.path.getmtime(out) >= os.path.getmtime(path)
        try:
            settings = settings_of(path)
        except OSError as e:
            print(f"error: '{shown(path)}' cannot be read ({describe_failure(e)})", file=sys.stderr)
            failed.append(path)
            continue
        same, by_date = matches_output(made_with, settings) if made_with is not None else (False, True)
        if made_from == source_id(path) and same and (newer or not by_date):
            done_before += 1  # made as this run makes it (so an --overwrite run stopped by Ctrl-C continues too)
            continue
        if overwrite:
            pass  # redone below
        elif made_from is None:
            print(f"error: '{shown(out)}' exists and was not written by colorize.py (it records no input); pass "
                  "another --out_dir, or --overwrite to replace it", file=sys.stderr)
            failed.append(path)
            continue
        elif made_from != source_id(path):
            print(f"error: '{shown(out)}' exists and was made from another input "
                  f"('{shown(made_from.rsplit('#', 1)[0])}'), not from '{shown(path)}'; pass another --out_dir, or "
                  "--overwrite to replace it", file=sys.stderr)
            failed.append(path)
            continue
        elif made_with is not None and not same:  # one line for them all, after the loop
            compared = without_input(settings) if by_date else settings
            other_settings.append((out, settings_changes(made_with, compared)))
            continue
        elif newer:  # written before outputs recorded their settings: taken as done, as then
            done_before += 1
            continue
        else:
            print(f"error: '{shown(out)}' exists and is older than its input '{shown(path)}'; pass --overwrite to "
                  "replace it", file=sys.stderr)
            failed.append(path)
            continue
    if is_video(path):
        done = colorize_one_video(path, out)
        if done is None:
            break
        written += done
        failed.extend([] if done else [path])
        continue
    t0 = time.time()
    try:
        if os.path.getsize(path) == 0:
            raise ValueError('the file is empty')
        height, width = image_size(path)
        if height * width > max_megapixels * 1e6:  # readable, but refused before it is decoded
            print(f"error: '{shown(path)}' is {width}x{height} ({height * width / 1e6:.3g} MP), over --max_megapixels="
                  f"{max_megapixels:g}; raise that to colorize it", file=sys.stderr)
            failed.append(path)
            continue
        image = read_image(path)
        if image.size == 0:
            raise ValueError('image has no pixels')
    except Exception as e:
        audio = path.lower().endswith(AUDIO_EXTENSIONS)  # named by hand: not a picture at all
        print(f"error: '{shown(path)}' " + ("is a sound file, with no pictures to colorize; pass photos or videos"
                                            if audio else f"is not a readable image ({describe_failure(e)})"),
              file=sys.stderr)
        failed.append(path)
        continue
    t1 = time.time()
    try:
        if not is_gray(image):
            colored += 1
            if colored == 1:
                print("note: colour inputs are colorized from their luminance only; their own colours are discarded")
        used = working_short_side(*image.shape[:2], size, G.config['image_size'])
        if size and used < size and not size_capped:
            size_capped.append(path)
            print(f"note: --size={size} is above the short side of '{shown(path)}' ({min(image.shape[:2])} px): it "
                  f"is worked at {used} px (its own short side, or the model's {G.config['image_size']} if that is "
                  "more; a larger size adds no detail, only time)")
        result = colorize(G, image, size, dev, saturation, hints_of[path], upsample, hint_spread)  # HxWx3 uint8
        t2 = time.time()
        if side_by_side:
            shown_input = image if image.dtype == np.uint8 else (image * 255 + 0.5).astype(np.uint8)
            shown_input = np.repeat(shown_input[..., None], 3, 2) if shown_input.ndim == 2 else shown_input
            result = np.concatenate([shown_input, result], 1)
        write_colorized(out, result, path, os.path.basename(checkpoint or PHOTO_GENERATOR), image_format, quality,
                        settings_of(path))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # colorizing or writing this photo failed: say so, and go on with the next one
        print(f"error: '{shown(path)}' could not be colorized and written to '{shown(out)}' ({describe_failure(e)})",
              file=sys.stderr)
        failed.append(path)
        continue
    t3 = time.time()
    t_model += t2 - t1
    t_io += (t1 - t0) + (t3 - t2)
    written += 1
    print(f"{shown(path)} -> {shown(out)} ({image.shape[1]}x{image.shape[0]}, colorize {t2 - t1:.2f}s, "
          f"decode+encode {t1 - t0 + t3 - t2:.2f}s)")

if other_settings:
    first, change = other_settings[0]
    print(f"error: {len(other_settings)} output(s) in '{shown(out_dir)}' were made with other settings or inputs "
          f"(e.g. '{shown(first)}': {change}); pass --overwrite to redo them with these, or another --out_dir",
          file=sys.stderr)
print(f"wrote {written}, failed {len(failed)}" + (f" ({', '.join(shown(f) for f in failed)})" if failed else '')
      + (f", already done {done_before} (kept: made from the same input and settings)" if done_before else "")
      + (f", {len(other_settings)} made with other settings or inputs (kept)" if other_settings else '')
      + (f" ({len(partial)} partial: {', '.join(shown(f) for f in partial)})" if partial else '')
      + (f"; outputs in {shown(out_dir)}/; {t_model:.1f}s colorizing, {t_io:.1f}s decode+encode" if written else '')
      + (f", {t_video:.1f}s on videos" if t_video else ''))
exit_at_once_on_signals()  # all is written: a Ctrl-C from here on ends the process at once, without a traceback
if stop_requested:
    left = len(jobs) - written - done_before - len(failed) - len(other_settings)
    print(f"interrupted: {written + done_before} of {len(jobs)} outputs are written, {left} left; rerun the same "
          "command to continue (finished outputs are kept)", file=sys.stderr)
    sys.exit(128 + stop_requested[0])  # as a shell reports the signal: 130 Ctrl-C, 143 SIGTERM
sys.exit(1 if failed or partial or other_settings or not (written or done_before) else 0)
