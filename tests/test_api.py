"""The Python API: the same pixels as colorize.py for the same file, any array or PIL input, hints, lists, and
errors as exceptions (never an exit)."""
import numpy as np
import pytest
import torch
from PIL import Image

from colorize_gan import checkpoint
from colorize_gan.api import Colorizer
from colorize_gan.images import as_pixels, read_image
from colorize_gan.models import Generator
from conftest import run


@pytest.fixture(scope='module')
def hint_model(tmp_path_factory):
    torch.manual_seed(0)
    G = Generator(8, 32, hints=True).eval()
    with torch.no_grad():
        G.down[0][1].weight[:, 1:] *= 30  # hints that visibly matter
    path = tmp_path_factory.mktemp('m') / 'hints.safetensors'
    checkpoint.export_generator(str(path), G)
    return str(path)


def _gray(h=72, w=100):
    yy, xx = np.mgrid[0:h, 0:w]
    return (128 + 90 * np.sin(xx / 9) * np.cos(yy / 13)).clip(0, 255).astype(np.uint8)


def test_the_api_gives_colorize_py_s_pixels_for_the_same_file(tmp_path):
    colorizer = Colorizer()  # the shipped photo model, as colorize.py's default
    Image.fromarray(_gray()).save(tmp_path / 'p.png')
    run('colorize.py', tmp_path / 'p.png', f'--out_dir={tmp_path / "out"}', '--saturation=1.2', '--device=cpu')
    want = np.asarray(Image.open(tmp_path / 'out' / 'p.png'))
    assert np.array_equal(colorizer(Image.open(tmp_path / 'p.png'), saturation=1.2), want)
    assert np.array_equal(colorizer(_gray(), saturation=1.2), want)  # the array itself
    both = colorizer([_gray(), Image.open(tmp_path / 'p.png')], saturation=1.2)
    assert len(both) == 2 and all(np.array_equal(x, want) for x in both)


def test_every_kind_of_array_reads_as_its_file_does(tmp_path):
    gray = _gray()
    rgba = np.dstack([gray, gray, gray, np.where(np.arange(100) < 30, 0, 255).astype(np.uint8)[None].repeat(72, 0)])
    for array in (gray, gray[..., None], np.dstack([gray] * 3), rgba):
        Image.fromarray(array.squeeze()).save(tmp_path / 'a.png')
        assert np.array_equal(as_pixels(array), read_image(tmp_path / 'a.png')), array.shape
    floats = gray.astype(np.float32) / 255
    assert np.allclose(as_pixels(floats), floats) and as_pixels(floats).dtype == np.float32
    deep = Image.fromarray(gray.astype(np.uint16) * 257)  # 16-bit, as scanners write
    assert np.allclose(as_pixels(deep), floats, atol=1e-6)
    for array in (gray.astype(np.uint16) * 3 + 100, gray.astype(np.int32) * 4):  # deep gray arrays, as their files
        Image.fromarray(array).save(tmp_path / 'deep.png' if array.dtype == np.uint16 else tmp_path / 'deep.tif')
        assert np.array_equal(as_pixels(array), read_image(
            tmp_path / ('deep.png' if array.dtype == np.uint16 else 'deep.tif'))), array.dtype
    frames = [Image.fromarray(gray), Image.fromarray(255 - gray)]
    frames[0].save(tmp_path / 'anim.gif', save_all=True, append_images=frames[1:])
    (tmp_path / 'cut.png').write_bytes((tmp_path / 'a.png').read_bytes()[:400])
    with Image.open(tmp_path / 'a.png') as closed:  # opened, never loaded, then closed
        pass
    for bad, message in ((np.zeros((4, 4), np.int64), 'uint8'), (floats * 2, r'\[0, 1\]'),
                         (np.zeros((4, 4, 3), np.uint16), 'not uint16 colour'),
                         (np.zeros((4, 4, 2), np.uint8), 'HxW'), ('photo.jpg', 'PIL image or a numpy array'),
                         (Image.open(tmp_path / 'anim.gif'), 'holds 2 frames .*pass one frame'),
                         (Image.open(tmp_path / 'cut.png'), 'cannot be decoded .*damaged or incomplete'),
                         (closed, 'its file is closed: load it')):
        with pytest.raises(ValueError, match=message):
            as_pixels(bad)


def test_hints_settings_and_errors_are_exceptions(hint_model, tmp_path):
    colorizer = Colorizer(hint_model)
    plain = colorizer(_gray())
    hinted = colorizer(_gray(), hints=[{'x': 30, 'y': 20, 'color': 'red', 'radius': 8}])
    assert colorizer.takes_hints and np.abs(hinted.astype(int) - plain).max() > 20  # the hint reached the model
    own = colorizer(_gray(), hints=[{'x': 30, 'y': 20, 'color': 'red', 'radius': 8}], hint_spread=0)
    assert np.array_equal(own, Colorizer(hint_model, hint_spread=0)(_gray(), hints=[{'x': 30, 'y': 20, 'color': 'red',
                                                                                      'radius': 8}]))
    assert not np.array_equal(own, hinted)  # the spread (0.25 by default) reaches past the model's own use
    # numpy's numbers are numbers (np.float32 is no Python float): the same output as the plain floats
    assert np.array_equal(colorizer(_gray(), hints=[{'x': 30, 'y': 20, 'color': 'red', 'radius': 8}],
                                    hint_spread=np.float32(0.25), saturation=np.float32(1), size=np.int64(0)), hinted)
    gray_out = colorizer(_gray(), saturation=0)  # no chroma: every channel is the input's gray, to rounding
    assert np.abs(gray_out.astype(int) - _gray()[..., None]).max() <= 1
    torch.manual_seed(0)
    checkpoint.export_generator(str(tmp_path / 'plain.safetensors'), Generator(8, 32).eval())
    for call, message in ((lambda: colorizer(_gray(), saturation=11), 'saturation'),
                          (lambda: colorizer(_gray(), sharpness=2), 'unknown setting'),
                          (lambda: colorizer(_gray(), hint_spread=1e-100), 'hint_spread=1e-100 must be 0'),
                          (lambda: Colorizer(hint_model, hint_spread=float('nan')), 'hint_spread=nan'),
                          (lambda: colorizer(_gray(), hints=[{'x': 500, 'y': 1, 'color': 'red'}]), 'outside'),
                          (lambda: colorizer(_gray(), hints=[{'x': 5, 'y': 1, 'color': 'blurple'}]), 'unknown colour'),
                          (lambda: Colorizer(str(tmp_path / 'plain.safetensors'))(
                              _gray(), hints=[{'x': 5, 'y': 1, 'color': 'red'}]), 'no hint input')):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(Exception, match='does not exist'):
        Colorizer('/no/such/model.safetensors')


def test_what_a_programmer_may_pass_by_mistake_is_a_value_error(hint_model):
    from colorize_gan.hints import parse_hint
    colorizer = Colorizer(hint_model)
    ours = colorizer(_gray(), hints=[parse_hint('30,20,red,8')])  # the library's own hint objects, (r, g, b) colours
    assert np.array_equal(ours, colorizer(_gray(), hints=[{'x': 30, 'y': 20, 'color': (255, 0, 0), 'radius': 8}]))
    assert np.array_equal(colorizer(_gray(), hints=None), colorizer(_gray()))
    assert Colorizer(None).description == Colorizer().description  # None is the shipped photo model, as '' is
    for wrong in (123, b'model.safetensors'):
        with pytest.raises(ValueError, match='must be a path'):
            Colorizer(wrong)
    for kwargs, message in (({'hints': {'x': 1, 'y': 1, 'color': 'red'}}, 'must be a list'),
                            ({'hints': [{'x': 1, 'y': 1}]}, r'hints\[0\] needs x, y and color'),
                            ({'hints': ['30,20,red']}, r'hints\[0\] needs x, y and color'),
                            ({'hints': [{'x': 1, 'y': 1, 'color': 'red', 'raduis': 3}]}, "'raduis'"),
                            ({'hints': [{'x': 1, 'y': 1, 'color': (300, 0, 0)}]}, 'unknown colour'),
                            ({'saturation': '1.2'}, 'must be a number'), ({'size': None}, 'must be a number'),
                            ({'saturation': True}, 'must be a number')):
        with pytest.raises(ValueError, match=message):
            colorizer(_gray(), **kwargs)
    with pytest.raises(ValueError, match='nothing to colorize'):
        colorizer(Image.new('L', (0, 0)))
    with pytest.raises(ValueError, match='not nested lists'):
        colorizer([[_gray()]])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' is not available"):
            Colorizer(hint_model, device='cuda')
