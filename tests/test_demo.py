"""The web demo as a person uses it: the /colorize API through gradio_client, bad files, and a real browser."""
import io
import os
import runpy
import shutil
import socket
import sys
import urllib.parse
import urllib.request
from contextlib import closing

import numpy as np
import pytest
from PIL import Image

from colorize_gan.color import luminance
from conftest import REPO, run

pytestmark = pytest.mark.slow  # every test here runs whole scripts


def Client(*args, **kwargs):
    """gradio_client.Client, imported only when a demo test runs (gradio takes seconds to import)."""
    return pytest.importorskip('gradio_client').Client(*args, **kwargs)


def handle_file(path):
    """gradio_client.handle_file, imported as Client is."""
    return pytest.importorskip('gradio_client').handle_file(path)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def hint_model(tmp_path_factory):
    """A small generator with hint input (random weights: its output moves with the hints), as an export."""
    import torch

    from colorize_gan import checkpoint
    from colorize_gan.models import Generator
    torch.manual_seed(0)
    G = Generator(8, 32, hints=True).eval()
    with torch.no_grad():
        G.down[0][1].weight[:, 1:] *= 30  # hint channels that matter: a hint moves the colour clearly
    path = tmp_path_factory.mktemp('model') / 'hints.safetensors'
    checkpoint.export_generator(str(path), G)
    return path


@pytest.fixture(scope='module')
def server(hint_model):
    """demo.py's app, served in this process on a free port with its own queue, as `python3 demo.py` serves it, with
    a hint model offered beside the shipped ones (--checkpoint)."""
    pytest.importorskip('gradio', reason='the demo needs requirements-demo.txt')
    port = _free_port()
    argv, sys.argv = sys.argv, ['demo.py', '--device=cpu', f'--port={port}', f'--checkpoint={hint_model}']
    try:
        app = runpy.run_path(os.path.join(REPO, 'demo.py'), run_name='demo')['app']
    finally:
        sys.argv = argv
    app.queue(default_concurrency_limit=1)
    app.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True, quiet=True, show_error=True)
    yield f'http://127.0.0.1:{port}/'
    app.close()


@pytest.fixture(scope='module')
def browser():
    """One headless Chromium for the page tests (each opens its own page): a browser start costs seconds."""
    chromium = shutil.which('chromium') or shutil.which('chromium-browser')
    if not chromium:
        pytest.skip('no Chromium installed (Debian: apt-get install chromium)')
    sync_api = pytest.importorskip('playwright.sync_api', reason='playwright is in requirements-demo.txt')
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=['--no-sandbox'])
        yield browser
        browser.close()


def _photo(path, w=640, h=427):
    yy, xx = np.mgrid[0:h, 0:w]
    gray = (128 + 90 * np.sin(xx / 50) * np.cos(yy / 70)).clip(0, 255).astype(np.uint8)
    Image.fromarray(gray).save(path)
    return gray


def test_api_colorizes_like_colorize_py_and_keeps_size_and_lightness(server, tmp_path):
    gray = _photo(tmp_path / 'photo.png')
    result = np.asarray(Image.open(Client(server, verbose=False).predict(handle_file(str(tmp_path / 'photo.png')),
                                                                         api_name='/colorize')))
    assert result.shape == (427, 640, 3)
    assert (luminance(result) - luminance(gray)).abs().max() <= 1.0
    run('colorize.py', tmp_path / 'photo.png', f'--out_dir={tmp_path / "cli"}', '--device=cpu')
    assert np.array_equal(result, np.asarray(Image.open(tmp_path / 'cli' / 'photo.png')))  # one pipeline


def test_bad_files_get_a_message_and_the_server_keeps_serving(server, tmp_path):
    client = Client(server, verbose=False)
    (tmp_path / 'notes.txt').write_text('not a photo')
    (tmp_path / 'empty.png').write_bytes(b'')
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / 'dot.png')
    Image.new('L', (8000, 7000)).save(tmp_path / 'huge.png')  # 56 MP of one gray: tiny on disk
    _photo(tmp_path / 'whole.jpg', 640, 427)
    whole = (tmp_path / 'whole.jpg').read_bytes()
    (tmp_path / 'cut.jpg').write_bytes(whole[:len(whole) // 2])  # a download that stopped half way
    for name, message in [('notes.txt', 'not an image'), ('empty.png', 'empty'), ('dot.png', 'only 1x1 pixels'),
                          ('huge.png', 'up to 50 MP'), ('cut.jpg', 'the file is damaged or incomplete')]:
        with pytest.raises(Exception, match=message):
            client.predict(handle_file(str(tmp_path / name)), api_name='/colorize')
    _photo(tmp_path / 'good.png', 64, 48)
    assert Image.open(client.predict(handle_file(str(tmp_path / 'good.png')), api_name='/colorize')).size == (64, 48)
    for saturation, size, message in ((5.0, 0, 'maximum'), (1.0, -16, 'minimum|whole number of pixels')):
        with pytest.raises(Exception, match=message):
            client.predict(handle_file(str(tmp_path / 'good.png')), saturation=saturation, size=size,
                           api_name='/colorize')
    if pytest.importorskip('pillow_heif'):  # a phone photo, as the demo's API receives it
        Image.open(tmp_path / 'good.png').convert('RGB').save(tmp_path / 'phone.heic')
        assert Image.open(client.predict(handle_file(str(tmp_path / 'phone.heic')), api_name='/colorize')).size == \
            (64, 48)


def test_page_in_a_real_browser(server, browser, tmp_path):
    _photo(tmp_path / 'upload.png')
    with closing(browser.new_page(viewport={'width': 1280, 'height': 900})) as page:
        page.goto(server)
        page.get_by_text('Colorize a black-and-white photo').wait_for()
        assert 'faces and pets' in page.content()  # the one line on what the model is good and bad at
        page.locator('input[type=file]').first.set_input_files(str(tmp_path / 'upload.png'))
        page.get_by_role('button', name='Remove Image').wait_for()  # the upload has arrived
        page.get_by_role('button', name='Colorize').click()
        page.get_by_text('upload_color').wait_for(timeout=60000)  # the download appears with the result
        shot = tmp_path / 'demo.png'
        page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == 1280
    if os.environ.get('DEMO_SCREENSHOT'):  # how the README's screenshot is made
        shutil.copy(shot, os.environ['DEMO_SCREENSHOT'])


def _upload_formats(folder):
    """One small photo in each kind of file people upload, as {name: path}: a gray JPEG, a 16-bit gray PNG, a PNG
    with transparent areas, a palette GIF, a TIFF scan and a phone's HEIC, all from one smooth gray pattern."""
    h, w = 72, 96
    yy, xx = np.mgrid[0:h, 0:w]
    gray = (128 + 100 * np.sin(xx / 11) * np.cos(yy / 17)).clip(0, 255).astype(np.uint8)
    rgba = np.dstack([gray, gray, gray, np.where(xx < w // 3, 0, 255).astype(np.uint8)])  # left third transparent
    files = {'gray.jpg': Image.fromarray(gray), 'deep.png': Image.fromarray(gray.astype(np.uint16) * 257),
             'clear.png': Image.fromarray(rgba, 'RGBA'), 'palette.gif': Image.fromarray(gray).convert('P'),
             'scan.tif': Image.fromarray(gray)}
    if pytest.importorskip('pillow_heif'):
        files['phone.heic'] = Image.fromarray(gray).convert('RGB')
    for name, im in files.items():
        im.save(folder / name, **({'quality': 90} if name.endswith(('.jpg', '.heic')) else {}))
    return {name: folder / name for name in files}


def test_page_upload_gives_the_file_colorize_py_writes(server, browser, tmp_path):
    """The page's own upload path (the upload widget, not the API): the downloadable PNG equals colorize.py's output
    for the same file, whatever its format (the widget must not convert or re-encode the upload)."""
    (tmp_path / 'in').mkdir()
    files = _upload_formats(tmp_path / 'in')
    run('colorize.py', tmp_path / 'in', f'--out_dir={tmp_path / "cli"}', '--device=cpu')
    with closing(browser.new_page()) as page:
        page.goto(server)  # one page for every file, as a person uploads one after another
        for i, (name, path) in enumerate(files.items()):
            if i:  # the last photo goes first, with the widget's own button
                page.get_by_role('button', name='Remove Image').first.click()
                page.get_by_role('button', name='Remove Image').wait_for(state='detached')
            page.locator('input[type=file]').first.set_input_files(str(path))
            page.get_by_role('button', name='Remove Image').wait_for()  # the upload has arrived
            page.get_by_role('button', name='Colorize').click()
            page.get_by_text(f'{path.stem}_color').wait_for(timeout=60000)  # the download appears with the result
            href = page.locator(f'a[href*="{path.stem}_color.png"]').first.get_attribute('href')
            with urllib.request.urlopen(urllib.parse.urljoin(server, href)) as response:
                (tmp_path / 'got.png').write_bytes(response.read())
            got = np.asarray(Image.open(tmp_path / 'got.png').convert('RGB')).astype(int)
            want = np.asarray(Image.open(tmp_path / 'cli' / 'in' / f'{path.stem}.png').convert('RGB')).astype(int)
            assert got.shape == want.shape, name
            assert np.abs(got - want).max() <= 1, f'{name}: the page colorized another picture than colorize.py'


HINT_MODEL = 'yours: hints.safetensors'  # how the page names the --checkpoint model


def test_api_takes_hints_as_colorize_py_does(server, hint_model, tmp_path):
    _photo(tmp_path / 'photo.png', 160, 120)
    client = Client(server, verbose=False)
    hints = '[{"x": 40, "y": 30, "color": "#1f4fbf", "radius": 8}, {"x": 120, "y": 90, "color": "red"}]'
    (tmp_path / 'hints.json').write_text(hints)
    got = np.asarray(Image.open(client.predict(handle_file(str(tmp_path / 'photo.png')), HINT_MODEL, 1.0, 0, hints,
                                               api_name='/colorize')))
    run('colorize.py', tmp_path / 'photo.png', f'--checkpoint={hint_model}', f'--hints={tmp_path / "hints.json"}',
        f'--out_dir={tmp_path / "cli"}', '--device=cpu')
    assert np.array_equal(got, np.asarray(Image.open(tmp_path / 'cli' / 'photo.png')))
    plain = np.asarray(Image.open(client.predict(handle_file(str(tmp_path / 'photo.png')), HINT_MODEL,
                                                 api_name='/colorize')))
    assert not np.array_equal(got, plain)  # the hints reached the model
    for model, bad, message in ((HINT_MODEL, '[{"x": 40, "y": 30}]', 'needs x, y and color'),
                                (HINT_MODEL, '{"x": 4', 'not valid JSON'),
                                (HINT_MODEL, '[{"x": 400, "y": 30, "color": "red"}]', 'outside'),
                                (HINT_MODEL, '[{"x": 4, "y": 3, "color": "blurple"}]', 'unknown colour'),
                                ('CIFAR-10 (the paper)', hints, 'has no hint input')):
        with pytest.raises(Exception, match=message):
            client.predict(handle_file(str(tmp_path / 'photo.png')), model, 1.0, 0, bad, api_name='/colorize')


def test_a_click_on_the_photo_places_a_hint_and_the_download_follows_it(server, hint_model, browser, tmp_path):
    """In the browser: choose a hint model, upload, click on the photo; the hint table lists the click's pixel and
    the download equals colorize.py's output with that hint; a click on the table row removes it again."""
    _photo(tmp_path / 'clicked.png', 160, 120)

    def download(page, not_href=None):
        """(the page's current download as uint8 RGB, its address); waits for an address other than not_href."""
        link = page.locator('a[href*="clicked_color.png"]').first
        for _ in range(600):
            href = link.get_attribute('href')
            if href != not_href:
                break
            page.wait_for_timeout(100)
        with urllib.request.urlopen(urllib.parse.urljoin(server, href)) as response:
            return np.asarray(Image.open(io.BytesIO(response.read())).convert('RGB')), href

    with closing(browser.new_page(viewport={'width': 1280, 'height': 1400})) as page:
        page.goto(server)
        page.get_by_role('combobox', name='Model').click()
        page.get_by_role('option', name=HINT_MODEL).click()
        page.locator('input[type=file]').first.set_input_files(str(tmp_path / 'clicked.png'))
        page.get_by_role('button', name='Remove Image').first.wait_for()
        shown = page.get_by_test_id('image').first.locator('img')  # the uploaded photo, as the page shows it
        shown.wait_for()
        page.wait_for_function('img => img.complete && img.naturalWidth > 0', arg=shown.element_handle())
        photo_box = shown.bounding_box()
        shown.click(position={'x': photo_box['width'] * 0.25, 'y': photo_box['height'] * 0.5})
        hint_colour = page.get_by_test_id('cell-0-2').get_by_text('#1f4fbf')  # the hint's row, the picker's colour
        hint_colour.wait_for(timeout=60000)
        page.get_by_text('clicked_color').wait_for(timeout=60000)
        x, y, colour, radius = (page.get_by_test_id(f'cell-0-{i}').inner_text().strip() for i in range(4))
        with_hint, href = download(page)
        hint_colour.click()  # remove it: the photo is colorized again without hints
        hint_colour.wait_for(state='detached', timeout=60000)
        without, _ = download(page, not_href=href)
        shown.click(position={'x': photo_box['width'] * 0.5, 'y': photo_box['height'] * 0.5})
        hint_colour.wait_for(timeout=60000)
        page.locator('button.gallery-item').first.click()  # an example photo: a new photo, so no hints
        hint_colour.wait_for(state='detached', timeout=60000)
    assert (int(x), int(y)) in {(40 + dx, 60 + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}  # photo pixels
    assert (colour, radius) == ('#1f4fbf', '8')
    run('colorize.py', tmp_path / 'clicked.png', f'--checkpoint={hint_model}', f'--hint={x},{y},{colour},{radius}',
        f'--out_dir={tmp_path / "cli"}', '--device=cpu')
    assert np.array_equal(with_hint, np.asarray(Image.open(tmp_path / 'cli' / 'clicked.png')))
    run('colorize.py', tmp_path / 'clicked.png', f'--checkpoint={hint_model}', f'--out_dir={tmp_path / "plain"}',
        '--device=cpu')
    assert np.array_equal(without, np.asarray(Image.open(tmp_path / 'plain' / 'clicked.png')))
    assert np.abs(with_hint.astype(int) - without).max() > 20  # the hint moved the colour



def test_the_video_api_colorizes_a_clip_and_refuses_what_it_cannot_take(server, tmp_path):
    from tools.make_clips import gray, write_clip
    frames = [gray(np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8)) for i in range(10)]
    write_clip(str(tmp_path / 'clip.mp4'), frames, audio_s=0.4)
    client = Client(server, verbose=False)
    out = client.predict(handle_file(str(tmp_path / 'clip.mp4')), api_name='/colorize_video')
    import av
    with av.open(out) as c:
        assert len(list(c.decode(video=0))) == 10 and c.streams.audio  # every frame, and the sound
    (tmp_path / 'notes.mp4').write_text('not a video')
    with pytest.raises(Exception, match='cannot be colorized as a video'):
        client.predict(handle_file(str(tmp_path / 'notes.mp4')), api_name='/colorize_video')
    write_clip(str(tmp_path / 'long.mp4'), frames[:1] * 1600, rate=25)  # 64 s
    with pytest.raises(Exception, match='up to 60 s'):
        client.predict(handle_file(str(tmp_path / 'long.mp4')), api_name='/colorize_video')
