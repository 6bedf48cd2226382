"""A local web page that colorizes photos in the browser, with a before/after slider and an API (Gradio).

    pip install -r requirements-demo.txt
    python3 demo.py                          # http://127.0.0.1:7860
    python3 demo.py --host=0.0.0.0 --port=8080 --device=cuda

It runs the same pipeline as colorize.py (photo.colorize on the full-resolution photo), so the same input gives the
same pixels. With a model that takes colour hints, a click on the photo places one (the colour picker's colour, or
one picked from a reference photo). Offline: no share links, no analytics, nothing downloaded at start-up. The
function is also the API endpoint /colorize: gradio_client.Client(URL).predict(handle_file(path), api_name=
"/colorize"), with hints as colorize.py's --hints JSON: .predict(..., hints='[{"x": 120, "y": 80, "color": "red"}]').
"""
import os
import sys
import tempfile

import numpy as np
from PIL import Image

import colorize_gan.script  # noqa: F401  (before the library loads PyTorch: one-line errors and a quiet Ctrl-C)
from colorize_gan.assets import EXAMPLES_DIR
from colorize_gan.checkpoint import CIFAR10_GENERATOR, PHOTO_GENERATOR, load_generator
from colorize_gan.color import is_gray
from colorize_gan.device import resolve_device
from colorize_gan.hints import make_hint, mark_hints, parse_hints_json
from colorize_gan.images import describe_failure, read_image, write_colorized
from colorize_gan.photo import colorize
from colorize_gan.utils import UserError, configure
from colorize_gan.video import TEMPORAL, colorize_video, probe

# -----------------------------------------------------------------------------
host = '127.0.0.1'  # 0.0.0.0 to serve other machines on your network
port = 7860
device = 'auto'  # auto | cpu | cuda
max_megapixels = 50.0  # larger photos are refused (memory): downscale them first
checkpoint = ''  # also offer this generator (a train.py run folder, checkpoint or export) as a model on the page
max_video_seconds = 60.0  # longer videos are refused (time: about 10 frames a second on a 2-core CPU); colorize.py
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:])
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'  # no calls home
try:
    import gradio as gr
except ImportError:
    sys.exit("error: the demo needs Gradio, which the core install leaves out; install it with: "
             "pip install -r requirements-demo.txt (from a clone) or pip install 'colorize-gan[demo]'")

MODELS = {'photos (default)': PHOTO_GENERATOR, 'CIFAR-10 (the paper)': CIFAR10_GENERATOR,
          **({f'yours: {os.path.basename(os.path.normpath(checkpoint))}': os.path.expanduser(checkpoint)}
             if checkpoint else {})}
DEFAULT_MODEL = next(iter(MODELS))
EXAMPLES = sorted(os.path.join(EXAMPLES_DIR, f) for f in os.listdir(EXAMPLES_DIR))
ABOUT = ("Broad, plausible colour for scenes, skies, greenery, faces and pets; muted where the gray cannot tell the "
         "colour (clothes, cars, flowers): click on the photo to give a colour you know.")
dev = resolve_device(device)
generators = {name: load_generator(path, dev)[0] for name, path in MODELS.items()}  # loaded once, kept
outputs_dir = tempfile.mkdtemp(prefix='colorize-demo-')
HINT_MODELS_NOTE = ("choose " + ' or '.join(repr(name) for name, G in generators.items() if G.hints)
                    + " to place hints") if any(G.hints for G in generators.values()) else \
    "none of the models offered takes hints: pass one trained with --hints=True as --checkpoint"


def read_photo(path):
    """The upload as colorize.py reads it; every problem becomes a message on the page."""
    if not path:
        raise gr.Error("No image was given: drop in a photo first (or pick an example).")
    if os.path.isdir(path):
        raise gr.Error("That is a folder, not a photo: choose one photo.")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise gr.Error("That file is empty: choose a photo.")
    try:
        with Image.open(path) as im:  # the size from the header, before decoding a huge image
            w, h = im.size
        if h * w <= max_megapixels * 1e6:
            image = read_image(path)
    except Exception as e:
        problem = describe_failure(e)
        if problem == 'not an image format this can open':
            raise gr.Error("That file is not an image this demo can read; try a JPEG, PNG, TIFF, WebP or HEIC photo.")
        raise gr.Error(f"That file could not be read: {problem}. Try another copy of the photo.")
    if h * w > max_megapixels * 1e6:
        raise gr.Error(f"That photo is {w}x{h} ({h * w / 1e6:.0f} MP); the demo takes up to {max_megapixels:g} MP. "
                       "Downscale it first, or use colorize.py.")
    if min(h, w) < 4:
        raise gr.Error(f"That image is only {w}x{h} pixels; a photo needs at least 4 in each direction.")
    return image


def colorized(path, model, saturation, size, hints=()):
    """(the photo as read, its colorization as uint8 HxWx3, the path of that colorization saved as PNG); `hints` is a
    list of hints.make_hint dicts in the photo's pixels."""
    if model not in generators:
        raise gr.Error(f"Unknown model {model!r}; choose one of: {', '.join(generators)}.")
    try:
        saturation, size = float(saturation), float(size or 0)
    except (TypeError, ValueError):
        raise gr.Error("Saturation and resolution must be numbers.") from None
    if not 0 <= saturation <= 3:  # also false for nan
        raise gr.Error("Saturation must be between 0 and 3.")
    if not (0 <= size <= 4096 and size == int(size)):
        raise gr.Error("The working resolution must be a whole number of pixels from 0 (the model's own) to 4096.")
    if hints and not generators[model].hints:
        raise gr.Error(f"The model '{model}' has no hint input (it was trained without colour hints); "
                       f"{HINT_MODELS_NOTE}, or clear the hints.")
    image = read_photo(path)
    try:
        result = colorize(generators[model], image, int(size), dev, saturation, list(hints))
    except ValueError as e:  # a hint outside the photo
        raise gr.Error(f"{str(e)[:1].upper()}{str(e)[1:]}.") from None
    out = os.path.join(tempfile.mkdtemp(dir=outputs_dir), os.path.splitext(os.path.basename(path))[0] + '_color.png')
    write_colorized(out, result, path, os.path.basename(MODELS[model]))  # the file colorize.py writes, metadata too
    return image, result, out


def colorize_photo(path, model=DEFAULT_MODEL, saturation=1.0, size=0, hints=''):
    """Colorize one photo at its full resolution; returns the path of the colorized PNG (the /colorize API). `hints`
    is JSON text as colorize.py's --hints file holds: a list of {"x", "y", "color"[, "radius"]} in the photo's
    pixels."""
    try:
        given = parse_hints_json(hints, 'hints', 'hints') if str(hints or '').strip() else []
    except ValueError as e:
        raise gr.Error(f"{str(e)[:1].upper()}{str(e)[1:]}.") from None
    if not isinstance(given, list):
        raise gr.Error("Hints for the API are a list of {\"x\": .., \"y\": .., \"color\": ..} objects for this photo.")
    return colorized(path, model, saturation, size, given)[2]


def colorize_for_page(path, model, saturation, size, hints):
    """The page's button: the before/after pair for the slider (the hints marked on the before side), and the
    full-resolution PNG to download."""
    image, result, out = colorized(path, model, saturation, size, hints)
    before = image if image.dtype == np.uint8 else (image * 255 + 0.5).astype(np.uint8)
    before = np.repeat(before[..., None], 3, 2) if before.ndim == 2 else before
    if hints:
        before = mark_hints(before, hints)
    note = "" if is_gray(image) else "Note: this photo has colour; it was colorized from its lightness alone."
    return (before, result), out, note


def colorize_clip(path, model=DEFAULT_MODEL, temporal=TEMPORAL, progress=gr.Progress()):
    """A video: the colorized H.264 mp4's path (the /colorize_video API), colorize.py's pipeline with its colour
    stabilizer; a progress bar on the page."""
    if not path or not os.path.isfile(path):
        raise gr.Error("No video was given: drop in a video file first.")
    if model not in generators:
        raise gr.Error(f"Unknown model {model!r}; choose one of: {', '.join(generators)}.")
    try:
        temporal = float(temporal)
        source = probe(path)
    except (TypeError, ValueError):
        raise gr.Error("The colour stabilization must be a number.") from None
    except UserError as e:
        raise gr.Error(f"That file cannot be colorized as a video: {e}.") from None
    if source.duration_s > max_video_seconds:
        raise gr.Error(f"That video is {source.duration_s:.0f} s long; the demo takes up to {max_video_seconds:g} s. "
                       "Cut it first, or use colorize.py (any length).")
    out = os.path.join(tempfile.mkdtemp(dir=outputs_dir), os.path.splitext(os.path.basename(path))[0] + '_color.mp4')
    try:
        result = colorize_video(generators[model], path, out, 0, dev, 1.0, temporal,
                                progress=lambda done, total: progress(done / total if total else 0,
                                                                      desc=f"{done} frames"))
    except UserError as e:
        raise gr.Error(f"That video could not be colorized: {e}.") from None
    if result.stopped:
        gr.Warning(f"The file is damaged: {result.stopped}; the frames before that are colorized.")
    return out


HINT_COLUMNS = ['x', 'y', 'colour', 'radius']


def hint_rows(hints):
    """The hints as the table shows them: x, y, colour as hex, radius (px)."""
    return [[round(h['x']), round(h['y']), '#%02x%02x%02x' % h['color'], round(h['radius'])] for h in hints] or \
        [['', '', '', '']]


def add_hint(path, model, saturation, size, color, radius, hints, evt: gr.SelectData):
    """A click on the photo: a hint of the picked colour at that pixel, and the photo colorized again with it."""
    if not path:
        raise gr.Error("Drop in a photo first, then click on it to place a colour hint.")
    if not generators[model].hints:
        raise gr.Error(f"The model '{model}' has no hint input; {HINT_MODELS_NOTE}.")
    x, y = evt.index[:2]
    try:
        hints = hints + [make_hint(x, y, color or '#1f4fbf', radius or 0, 'the hint')]
    except ValueError as e:
        raise gr.Error(str(e)) from None
    return (hints, hint_rows(hints)) + colorize_for_page(path, model, saturation, size, hints)


def remove_hint(path, model, saturation, size, hints, evt: gr.SelectData):
    """A click on a row of the hint table removes that hint (and colorizes again, when there is a photo)."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    hints = [h for i, h in enumerate(hints) if i != row]
    return (hints, hint_rows(hints)) + (colorize_for_page(path, model, saturation, size, hints) if path
                                        else (None, None, ""))


def pick_colour(evt: gr.SelectData, reference):
    """An eyedropper: a click on the reference photo makes the pixel's colour the hint colour."""
    image = read_photo(reference)
    image = image if image.dtype == np.uint8 else (image * 255 + 0.5).astype(np.uint8)
    image = np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image
    x, y = evt.index[:2]
    return '#%02x%02x%02x' % tuple(int(c) for c in image[min(int(y), image.shape[0] - 1),
                                                        min(int(x), image.shape[1] - 1)])


with gr.Blocks(title='colorize-gan') as app:
    gr.Markdown("# Colorize a black-and-white photo or film\n" + ABOUT)
    hints_state = gr.State([])  # this visitor's hints: make_hint dicts in the photo's pixels
    with gr.Tab('Photo'):
        with gr.Row():
            with gr.Column():
                # image_mode=None: the uploaded file reaches read_photo as it is (no conversion to RGB, no re-encoding),
                # so the page colorizes exactly what colorize.py would read from the same file
                photo_in = gr.Image(type='filepath', image_mode=None, label='Photo (drop, paste or upload)',
                                    sources=['upload', 'clipboard'])
                model_in = gr.Dropdown(list(MODELS), value=DEFAULT_MODEL, label='Model')
                saturation_in = gr.Slider(0, 2, value=1.0, step=0.05, label='Saturation (0 = gray, 1 = as predicted)')
                own = ' or '.join(sorted({str(G.config['image_size']) for G in generators.values()}, key=int))
                size_in = gr.Slider(0, 512, value=0, step=16,
                                    label=f"Working resolution, short side in px (0 = the model's own: {own})")
                button = gr.Button('Colorize', variant='primary')
                with gr.Accordion('Colour hints: click on the photo where you know a colour', open=True):
                    with gr.Row():
                        color_in = gr.ColorPicker('#1f4fbf', label='Hint colour')
                        radius_in = gr.Slider(0, 100, value=8, step=1, label='Hint radius, px of the photo')
                    hints_table = gr.Dataframe(hint_rows([]), headers=HINT_COLUMNS, interactive=False,
                                               label='Hints (click a row to remove it)')
                    clear_hints = gr.Button('Clear hints')
                    reference_in = gr.Image(type='filepath', image_mode=None, sources=['upload', 'clipboard'],
                                            label='Reference photo: click on it to pick its colour (an eyedropper)',
                                            height=200)
                gr.Examples(EXAMPLES, inputs=photo_in)
            with gr.Column():
                slider_out = gr.ImageSlider(label='Before / after', type='numpy', format='png')
                file_out = gr.File(label='Full-resolution PNG')
                note_out = gr.Markdown()
    with gr.Tab('Video'):
        with gr.Row():
            with gr.Column():
                video_in = gr.File(label=f'Video (mp4, mov, mkv, avi, webm, ...; up to {max_video_seconds:g} s)',
                                   type='filepath')
                video_model_in = gr.Dropdown(list(MODELS), value=DEFAULT_MODEL, label='Model')
                temporal_in = gr.Slider(0, 0.98, value=TEMPORAL, step=0.01, label='Colour stabilization over frames '
                                        '(0 = each frame alone)')
                video_button = gr.Button('Colorize the video', variant='primary')
            with gr.Column():
                video_out = gr.Video(label='Colorized (H.264 mp4, the sound kept)')
                video_file_out = gr.File(label='Download')

    page_inputs = [photo_in, model_in, saturation_in, size_in]
    page_outputs = [slider_out, file_out, note_out]
    button.click(colorize_for_page, page_inputs + [hints_state], page_outputs, api_name=False)
    photo_in.select(add_hint, page_inputs + [color_in, radius_in, hints_state], [hints_state, hints_table]
                    + page_outputs, api_name=False)
    hints_table.select(remove_hint, page_inputs + [hints_state], [hints_state, hints_table] + page_outputs,
                       api_name=False)
    # a new photo, or Clear: no hints (a hint belongs to a place in one photo)
    for event in (photo_in.change, clear_hints.click):  # .change: an upload, a paste, an example, the x
        event(lambda: ([], hint_rows([])), None, [hints_state, hints_table], api_name=False)
    reference_in.select(pick_colour, reference_in, color_in, api_name=False)
    video_button.click(lambda *args: (lambda out: (out, out))(colorize_clip(*args)),
                       [video_in, video_model_in, temporal_in], [video_out, video_file_out], api_name=False)
    gr.Button(visible=False).click(colorize_clip, [video_in, video_model_in, temporal_in], video_file_out,
                                   api_name='colorize_video')
    # the API: the same pipeline, returning the colorized image; the other inputs keep their defaults
    # (its input is a plain file, so a non-image reaches read_photo and gets its one-line message)
    api_in, api_out = gr.File(type='filepath', visible=False), gr.Image(type='filepath', format='png', visible=False)
    api_hints = gr.Textbox('', visible=False)
    gr.Button(visible=False).click(colorize_photo, [api_in, model_in, saturation_in, size_in, api_hints], api_out,
                                   api_name='colorize')

if __name__ == '__main__':
    print(f"colorize demo on http://{host}:{port}/ (models on {dev}; Ctrl-C stops it)", flush=True)
    app.queue(default_concurrency_limit=1)  # one colorization at a time: two users never double the memory
    app.launch(server_name=host, server_port=port, share=False, show_error=True, quiet=True)
