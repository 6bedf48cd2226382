"""ONNX export (onnx_export.py, export.py --format=onnx) and the torch-free colorize path (light.py): the exported
generator equals PyTorch's through onnxruntime, and light.colorize equals photo.colorize within 1 level of 8 bits."""
import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from colorize_gan import color, light, photo
from colorize_gan.checkpoint import CIFAR10_GENERATOR, PHOTO_GENERATOR, load_generator
from colorize_gan.models import EncoderUNet, Generator, fold_batchnorm
from colorize_gan.onnx_export import export_onnx  # imports onnx when it exports, not here
from colorize_gan.utils import UserError
from conftest import REPO, run

# onnx and onnxruntime are looked up, not imported, at collection: importing onnx costs every worker a second
pytestmark = pytest.mark.skipif(not (importlib.util.find_spec('onnx') and importlib.util.find_spec('onnxruntime')),
                                reason='needs onnx and onnxruntime (requirements-onnx.txt)')

AB_TOLERANCE = 1e-3  # max |ab| difference on the network scale ([-1,1]; x110 in CIE ab units)


def _random_generator(arch, hints, seed=0):
    """A small generator as load_generator(fold=True) gives one, with random BatchNorm statistics and output layer
    (so folding matters and ab is far from 0), in eval mode."""
    torch.manual_seed(seed)
    G = Generator(width=4, image_size=32, hints=hints) if arch == 'unet' else \
        EncoderUNet(width=8, image_size=64, hints=hints, hint_decoder=arch == 'encoder_unet_hint_decoder')
    if getattr(G, 'hint_decoder', False):  # its decoder's hint weights start at zero: make them count
        for block in G.up:
            torch.nn.init.normal_(block.conv[0].weight[:, -3:].detach(), 0, 0.3)
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2)
    G = fold_batchnorm(G.eval())
    torch.nn.init.normal_(G.out[0].weight)
    seen = []  # the output layer's pre-tanh std on a random input, to scale it to about 0.5
    hook = G.out[0].register_forward_hook(lambda module, inputs, output: seen.append(output.std()))
    x = torch.rand(1, 4, 2 * G.multiple, 2 * G.multiple) * 2 - 1
    x[:, 3] = x[:, 3] > 0.6  # a hint mask is 0 or 1
    with torch.no_grad():
        G(x[:, :1], x[:, 1:] * x[:, 3:] if hints else None)
        G.out[0].weight *= 0.5 / seen[0]
    hook.remove()
    return G


@pytest.mark.parametrize('arch,hints', [('unet', False), ('encoder_unet', False), ('encoder_unet', True),
                                        ('unet', True), ('encoder_unet_hint_decoder', True)])
def test_onnx_output_equals_pytorch_at_other_sizes_and_batch_2(arch, hints, tmp_path):
    G = _random_generator(arch, hints)
    path = tmp_path / 'g.onnx'
    model = export_onnx(G, path)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta['config']) == G.config and int(meta['multiple']) == G.multiple
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['L', 'hints'][:1 + hints]
    m = G.multiple
    for h, w in ((m, 3 * m), (3 * m, 2 * m)):  # non-square, neither the traced size (2m x 3m)
        L = torch.rand(2, 1, h, w) * 2 - 1
        feed = {'L': L.numpy()}
        if hints:
            mask = (torch.rand(2, 1, h, w) < 0.2).float()
            feed['hints'] = torch.cat([(torch.rand(2, 2, h, w) - 0.5) * mask, mask], 1).numpy()
        with torch.no_grad():
            expected = G(L, torch.from_numpy(feed['hints']) if hints else None).numpy()
        ab = session.run(['ab'], feed)[0]
        assert ab.shape == (2, 2, h, w)
        assert expected.std() > 0.05  # a real test: the output is not a constant
        assert np.abs(ab - expected).max() < AB_TOLERANCE


def test_export_py_writes_onnx_that_light_loads(tmp_path):
    proc = run('export.py', '--format=onnx', f'--checkpoint={CIFAR10_GENERATOR}', f'--out_dir={tmp_path}')
    assert 'ONNX opset 17' in proc.stdout and 'multiples of 16' in proc.stdout
    G = light.load_generator(str(tmp_path / 'generator.onnx'))
    assert G.config == load_generator(CIFAR10_GENERATOR)[0].config and G.multiple == 16 and not G.hints
    again = run('export.py', '--format=onnx', f'--checkpoint={CIFAR10_GENERATOR}', f'--out_dir={tmp_path}', check=False)
    assert again.returncode == 1 and 'exists; pass --overwrite' in again.stderr  # never replaced silently
    assert 'exported' in run('export.py', '--format=onnx', f'--checkpoint={CIFAR10_GENERATOR}', f'--out_dir={tmp_path}',
                             '--overwrite').stdout
    named = run('export.py', '--format=onnx', f'--checkpoint={CIFAR10_GENERATOR}', f'--out_dir={tmp_path}',
                '--out_name=g.safetensors', check=False)
    assert named.returncode == 1 and 'does not end in .onnx' in named.stderr
    (tmp_path / 'a_file').write_text('x')
    blocked = run('export.py', '--format=onnx', f'--checkpoint={CIFAR10_GENERATOR}',
                  f'--out_dir={tmp_path / "a_file" / "sub"}', check=False)
    assert blocked.returncode == 1 and 'cannot write to --out_dir' in blocked.stderr
    wrong = run('colorize.py', CIFAR10_GENERATOR, f'--checkpoint={tmp_path / "generator.onnx"}',
                f'--out_dir={tmp_path / "o"}', check=False)  # an ONNX model on the PyTorch path: says what to do
    assert wrong.returncode == 1 and 'is an ONNX model' in wrong.stderr and '--backend=onnx' in wrong.stderr
    assert 'error: --format=tflite' in run('export.py', '--format=tflite', f'--checkpoint={CIFAR10_GENERATOR}',
                                           check=False).stderr


def test_onnx_generator_refuses_what_the_network_cannot_take(tmp_path):
    with pytest.raises(UserError, match='does not exist'):
        light.load_generator(str(tmp_path / 'missing.onnx'))
    (tmp_path / 'bad.onnx').write_bytes(b'not a model')
    with pytest.raises(UserError, match='cannot load'):
        light.load_generator(str(tmp_path / 'bad.onnx'))
    export_onnx(_random_generator('unet', False), tmp_path / 'g.onnx')
    G = light.load_generator(str(tmp_path / 'g.onnx'))
    with pytest.raises(ValueError, match='multiples of 16'):
        G(np.zeros((1, 1, 16, 40), np.float32))
    with pytest.raises(ValueError, match='no hint input'):
        G(np.zeros((1, 1, 16, 32), np.float32), np.zeros((1, 3, 16, 32), np.float32))
    import onnx
    config = json.loads({p.key: p.value for p in onnx.load(str(tmp_path / 'g.onnx')).metadata_props}['config'])
    for key, value, problem in (  # another tool's ONNX file, or a hand edit: one line at load, never a traceback later
            ('multiple', '0', "'multiple' is 0, not 1-1024"),
            ('multiple', '1000000000', "'multiple' is 1000000000, not 1-1024"),
            ('multiple', '7', 'fails on an input of 7x7 px'),  # positive, not what the network takes: the probe fails
            ('config', '{"width": 4}', 'needs width >= 1 and image_size 1-4096'),
            ('config', json.dumps({**config, 'image_size': 10 ** 9}), 'image_size 1-4096'),
            ('config', '[1, 2]', "'config' is list"),
            ('config', json.dumps({**config, 'hints': True}), "inputs are ['L'], not ['L', 'hints']")):
        model = onnx.load(str(tmp_path / 'g.onnx'))
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, key: value})
        onnx.save(model, str(tmp_path / 'edited.onnx'))
        with pytest.raises(UserError, match=f"cannot load .*{re.escape(problem)}"):
            light.load_generator(str(tmp_path / 'edited.onnx'))


# -----------------------------------------------------------------------------
# light.py's numpy copies of color.py's and photo.py's maths, pinned to them

def test_the_numpy_maths_equals_the_torch_maths():
    assert np.array_equal(light.RGB_TO_XYZ, color.RGB_TO_XYZ.numpy()) and (light.L_SCALE, light.AB_SCALE) == \
        (color.L_SCALE, color.AB_SCALE) and np.allclose(light.WHITE_D65, color.WHITE_D65)
    assert light.working_size is photo.working_size  # one function (utils.py), as both need it without PyTorch
    rng = np.random.default_rng(0)
    for n_in, n_out in ((64, 517), (32, 3000), (96, 96), (7, 3)):
        assert np.allclose(light._bicubic_matrix(n_in, n_out), photo._bicubic_matrix(n_in, n_out, 'cpu').numpy(),
                           atol=1e-5)  # float32 rounding: weights up to 1.1
    for (H, W), (h, w) in (((300, 451), (64, 96)), ((20, 13), (64, 32)), ((64, 64), (64, 64))):  # down and up
        x = rng.random((H, W), dtype=np.float32) * 100
        expected = F.interpolate(torch.from_numpy(x)[None, None], size=(h, w), mode='area')[0, 0].numpy()
        assert np.allclose(light._area_matrix(H, h) @ x @ light._area_matrix(W, w).T, expected, atol=1e-4)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for image in (rgb, rgb[..., 0], rgb.astype(np.float32) / 255, np.repeat(rgb[..., :1], 3, 2)):
        assert np.allclose(light.luminance(image), color.luminance(image).numpy(), atol=1e-4)
    lab = np.stack([rng.random(1000) * 100, rng.normal(0, 60, 1000), rng.normal(0, 60, 1000)]).astype(np.float32)
    expected = color.lab_to_rgb(torch.from_numpy(lab)[None, :, None], clip=False)[0, :, 0].numpy()
    assert np.allclose(light._lab_to_rgb(lab[0], lab[1:]), expected, atol=1e-5)


@pytest.fixture(scope='module')
def photo_model(tmp_path_factory):
    """The shipped photo model: (PyTorch generator, the same exported to ONNX and loaded by light.py)."""
    path = tmp_path_factory.mktemp('onnx') / 'photo.onnx'
    G = load_generator(PHOTO_GENERATOR)[0]
    export_onnx(G, path)
    return G, light.load_generator(str(path), threads=1)


def _photos():
    """Real photos: scikit-image's astronaut (RGB), coffee turned gray (uint8 HxW), and a non-square crop."""
    from skimage import data
    coffee_gray = np.round(data.coffee() @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    return {'astronaut': data.astronaut(), 'coffee_gray': coffee_gray, 'crop_301x517': data.astronaut()[:301, :517]}


@pytest.mark.parametrize('name', ['astronaut', 'coffee_gray', 'crop_301x517'])
def test_light_colorize_equals_photo_colorize_within_one_level(name, photo_model):
    G, G_onnx = photo_model
    image = _photos()[name]
    options = [{}, {'saturation': 1.3, 'size': 96}] if name == 'crop_301x517' else [{}]
    for kw in options:
        expected, got = photo.colorize(G, image, **kw), light.colorize(G_onnx, image, **kw)
        assert got.shape == expected.shape == image.shape[:2] + (3,) and got.dtype == np.uint8
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
        assert np.abs(expected.astype(int) - expected.mean(2, keepdims=True)).mean() > 1  # it is colorized


def test_light_colorize_with_a_hint_model_and_gray(tmp_path):
    # a random encoder U-Net with hint input (fed no hints) predicts saturated colours everywhere, far out of gamut:
    # where a gamut-mapping bisection step falls within float rounding of the gamut's edge the two paths may
    # decide it differently (light.py's docstring), so a few pixels may be off by up to 1/128 of their chroma, which
    # is several levels in a channel near 0 (here 1 pixel by 2 levels)
    G = _random_generator('encoder_unet', True)
    export_onnx(G, tmp_path / 'g.onnx')
    G_onnx = light.load_generator(str(tmp_path / 'g.onnx'))
    image = _photos()['crop_301x517']
    for saturation in (1.0, 0.0):
        expected, got = photo.colorize(G, image, saturation=saturation), light.colorize(G_onnx, image, 0, saturation)
        diff = np.abs(got.astype(int) - expected.astype(int))
        assert (diff > 1).mean() < 1e-4  # at most 15 of the 154,112 pixels


@pytest.mark.slow  # a new interpreter
def test_the_light_path_runs_without_torch(tmp_path):
    # in a new interpreter: light.py's command line colorizes a photo and writes it, and torch is never imported
    export_onnx(_random_generator('unet', False), tmp_path / 'g.onnx')
    Image.fromarray(_photos()['coffee_gray'][:100, :150]).save(tmp_path / 'gray.png')
    code = ("import sys; from colorize_gan import light; rc = light.main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'gray.png'), f"--model={tmp_path / 'g.onnx'}",
                           f"--out_dir={tmp_path / 'out'}"], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=120)
    assert proc.returncode == 0, proc.stderr
    missing = subprocess.run([sys.executable, '-m', 'colorize_gan.light', str(tmp_path / 'gray.png'),
                              f"--model={tmp_path / 'nope.onnx'}"], cwd=REPO, capture_output=True, text=True,
                             timeout=120)  # as the README runs it: a user's mistake is one line, not a traceback
    assert missing.returncode == 1 and missing.stderr.startswith('error: model') and 'Traceback' not in missing.stderr
    out = np.asarray(Image.open(tmp_path / 'out' / 'gray.png'))
    G_onnx = light.load_generator(str(tmp_path / 'g.onnx'))
    assert np.array_equal(out, light.colorize(G_onnx, _photos()['coffee_gray'][:100, :150]))


def test_colorize_py_backend_onnx_writes_what_the_torch_backend_writes(photo_model, tmp_path):
    G, _ = photo_model
    model = tmp_path / 'photo.onnx'
    export_onnx(G, model)
    Image.fromarray(_photos()['crop_301x517']).save(tmp_path / 'crop.png')
    run('colorize.py', tmp_path / 'crop.png', '--backend=onnx', f'--checkpoint={model}', f'--out_dir={tmp_path / "a"}')
    run('colorize.py', tmp_path / 'crop.png', f'--out_dir={tmp_path / "b"}')
    a, b = (np.asarray(Image.open(tmp_path / d / 'crop.png')).astype(int) for d in 'ab')
    assert a.shape == b.shape == (301, 512, 3) and np.abs(a - b).max() <= 1
    refused = run('colorize.py', tmp_path / 'crop.png', '--backend=onnx', f'--checkpoint={model}', '--hint=5,5,red',
                  f'--out_dir={tmp_path / "c"}', check=False)
    assert refused.returncode == 1 and 'no hints; use --backend=torch' in refused.stderr


def test_the_light_path_checks_what_it_is_given(tmp_path):
    export_onnx(_random_generator('unet', False), tmp_path / 'g.onnx')
    G = light.load_generator(str(tmp_path / 'g.onnx'))
    gray = _photos()['coffee_gray'][:64, :96]
    assert np.array_equal(light.colorize(G, Image.fromarray(gray)), light.colorize(G, gray))  # PIL in, as arrays
    for kwargs, message in (({'size': -5}, 'size=-5'), ({'saturation': float('nan')}, 'saturation'),
                            ({'saturation': '1'}, 'must be a number')):
        with pytest.raises(ValueError, match=message):
            light.colorize(G, gray, **kwargs)
    with pytest.raises(ValueError, match='HxW'):
        light.colorize(G, np.zeros((4, 4, 2), np.uint8))
    Image.fromarray(gray).save(tmp_path / 'p.png')
    Image.fromarray(gray).save(tmp_path / 'p.jpg')
    args = [f'--model={tmp_path / "g.onnx"}', f'--out_dir={tmp_path / "out"}']
    with pytest.raises(UserError, match='would both be written'):
        light.main([str(tmp_path / 'p.png'), str(tmp_path / 'p.jpg'), *args])
    with pytest.raises(UserError, match='--size=-5'):
        light.main([str(tmp_path / 'p.png'), *args, '--size=-5'])
    assert light.main([str(tmp_path / 'p.png'), *args]) == 0  # the refused --size=-5 is not kept for the next call
    assert light.size == 0 and light.out_dir == 'colorized'  # nor is any setting: the module keeps its defaults
    with pytest.raises(UserError, match='exists; pass --overwrite'):
        light.main([str(tmp_path / 'p.png'), *args])
    for bad, message in (('--threads=-1', '--threads=-1 must be between'), ('--quality=500', 'between 1 and 100'),
                         (f'--out_dir={tmp_path / "p.png"}', 'is a file; pass a folder')):
        with pytest.raises(UserError, match=message):
            light.main([str(tmp_path / 'p.jpg'), *args, bad])
    with pytest.raises(UserError, match='no --model'):
        light.main([str(tmp_path / 'p.png')])
    hook = sys.excepthook
    assert light.main([str(tmp_path / 'p.png'), *args, '--overwrite']) == 0
    assert sys.excepthook is hook  # a program that calls main() keeps its own error handling
