"""colorize.py on people's photos: sizes, modes, EXIF, broken files, luminance kept, inputs untouched."""
import hashlib
import os

import numpy as np
import pytest
import torch
from PIL import Image

from colorize_gan import images, photo
from colorize_gan.checkpoint import export_generator, load_generator
from colorize_gan.color import is_gray as color_is_gray
from colorize_gan.color import luminance, rgb_to_lab
from colorize_gan.models import Generator, fold_batchnorm
from colorize_gan.utils import UserError
from conftest import run


@pytest.fixture(scope='module')
def vivid_generator(tmp_path_factory):
    """A tiny generator whose output is strongly coloured everywhere: the hardest case for keeping L."""
    torch.manual_seed(0)
    G = Generator(8, 32)
    with torch.no_grad():
        G.out[0].bias.copy_(torch.tensor([0.4, 0.5]))  # ab around (42, 51): out of gamut in darks and lights
    path = tmp_path_factory.mktemp('model') / 'vivid.safetensors'
    export_generator(str(path), G)
    return path


def _gray_photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 128 + 100 * np.sin(xx / max(w, 8) * 6) * np.cos(yy / max(h, 8) * 4) + rng.normal(0, 10, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8)


def _digest(folder):
    def one(path):
        return hashlib.sha256(open(path, 'rb').read()).hexdigest() + str(os.stat(path).st_mtime_ns)
    return {p: one(os.path.join(folder, p)) for p in sorted(os.listdir(folder))}


def test_every_mode_and_size_keeps_size_and_luminance(tmp_path, vivid_generator):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    gray = _gray_photo(33, 17)
    Image.fromarray(gray).save(src / 'gray.png')
    Image.fromarray(gray[:1, :1]).save(src / 'one.png')
    Image.fromarray(_gray_photo(900, 1400, 1)).save(src / 'large.jpg', quality=90)
    rgb = np.stack([gray, np.roll(gray, 3, 1), 255 - gray], 2)
    Image.fromarray(rgb).save(src / 'rgb.png')
    Image.fromarray(np.dstack([rgb, np.full_like(gray, 255)])).save(src / 'rgba.png')
    Image.fromarray(gray.astype(np.uint16) * 257).save(src / 'deep16.png')
    Image.fromarray(rgb).convert('P', palette=Image.Palette.ADAPTIVE).save(src / 'palette.png')
    before = _digest(src)
    proc = run('colorize.py', src, f'--out_dir={out}', f'--checkpoint={vivid_generator}', '--device=cpu')
    assert 'wrote 7, failed 0' in proc.stdout
    assert proc.stdout.count('colour inputs are colorized from their luminance') == 1
    assert _digest(src) == before  # inputs untouched
    for name in before:
        stem = os.path.splitext(name)[0]
        result = np.asarray(Image.open(out / 'in' / f'{stem}.png'))
        source = images.read_image(src / name)
        assert result.shape == source.shape[:2] + (3,), name
        L_in, L_out = luminance(source), luminance(result)
        assert (L_out - L_in).abs().mean() <= 1.0, name
    large = np.asarray(Image.open(out / 'in' / 'large.png'))
    lab = torch.from_numpy(large[::10, ::10].copy()).permute(2, 0, 1)[None].float() / 255
    assert rgb_to_lab(lab)[0, 1:].norm(dim=0).mean() > 10  # real colour, not a gray copy


def test_fixed_image_luminance_within_one_L_unit(tmp_path, vivid_generator):
    ramp = np.tile(np.linspace(0, 255, 256).astype(np.uint8), (64, 1))  # every gray level, black to white
    Image.fromarray(ramp).save(tmp_path / 'ramp.png')
    run('colorize.py', tmp_path / 'ramp.png', '--out_dir', tmp_path / 'out', f'--checkpoint={vivid_generator}')
    result = np.asarray(Image.open(tmp_path / 'out' / 'ramp.png'))
    diff = (luminance(result) - luminance(ramp)).abs()
    assert diff.max() <= 1.0 and diff.mean() <= 0.5


def test_exif_rotation_is_respected(tmp_path, vivid_generator):
    img = Image.fromarray(_gray_photo(20, 40))  # stored 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(tmp_path / 'rotated.jpg', exif=exif)
    run('colorize.py', tmp_path / 'rotated.jpg', f'--out_dir={tmp_path / "out"}', f'--checkpoint={vivid_generator}',
               '--image_format=jpg', '--side_by_side')
    result = Image.open(tmp_path / 'out' / 'rotated.jpg')
    assert result.size == (2 * 20, 40)  # displayed 20 wide, 40 high; side by side doubles the width


def test_broken_files_are_named_and_the_rest_still_written(tmp_path, vivid_generator):
    src = tmp_path / 'album'
    src.mkdir()
    Image.fromarray(_gray_photo(30, 40)).save(src / 'good.jpg')
    (src / 'broken.jpg').write_text('this is a text file')
    (src / 'empty.png').write_bytes(b'')
    proc = run('colorize.py', src, tmp_path / 'missing.png', f'--out_dir={tmp_path / "out"}',
                      f'--checkpoint={vivid_generator}', check=False)
    assert proc.returncode != 0
    assert "'" + str(src / 'broken.jpg') + "' is not a readable image" in proc.stderr
    assert "empty.png' is not a readable image (the file is empty)" in proc.stderr
    assert f"'{tmp_path / 'missing.png'}' does not exist" in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'wrote 1, failed 3' in proc.stdout
    assert (tmp_path / 'out' / 'album' / 'good.png').exists()
    assert sorted(os.listdir(tmp_path / 'out' / 'album')) == ['good.png']  # nothing half-written


def test_refuses_to_overwrite_an_input(tmp_path, vivid_generator):
    Image.fromarray(_gray_photo(10, 10)).save(tmp_path / 'x.png')
    before = _digest(tmp_path)
    proc = run('colorize.py', tmp_path / 'x.png', f'--out_dir={tmp_path}', f'--checkpoint={vivid_generator}',
                      check=False)
    assert proc.returncode != 0 and 'would overwrite an input' in proc.stderr
    assert _digest(tmp_path) == before


def test_full_resolution_bicubic_matches_interpolate():
    ab = torch.randn(2, 9, 13)
    rows, cols = photo._bicubic_matrix(9, 70, 'cpu'), photo._bicubic_matrix(13, 101, 'cpu')
    want = torch.nn.functional.interpolate(ab[None], size=(70, 101), mode='bicubic', align_corners=False)[0]
    assert torch.allclose(rows @ ab @ cols.T, want, atol=1e-5)


def _chroma(rgb):
    lab = rgb_to_lab(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255)[0]
    return lab[1:].norm(dim=0)


def test_saturation_scales_chroma_and_keeps_luminance(tmp_path, vivid_generator):
    photo_in = tmp_path / 'in.png'
    gray = _gray_photo(48, 64, 2)
    Image.fromarray(gray).save(photo_in)
    outputs = {}
    for s in ('0', '0.5', '1', '1.3'):
        run('colorize.py', photo_in, f'--out_dir={tmp_path / s}', f'--checkpoint={vivid_generator}',
            f'--saturation={s}')
        outputs[s] = np.asarray(Image.open(tmp_path / s / 'in.png'))
    assert color_is_gray(outputs['0'])  # no chroma at all
    chroma = {s: _chroma(rgb).mean().item() for s, rgb in outputs.items()}
    assert chroma['0'] < 0.5 < chroma['0.5'] < chroma['1'] < chroma['1.3']
    for rgb in outputs.values():
        assert (luminance(rgb) - luminance(gray)).abs().max() <= 1.0  # L kept to 8-bit rounding, whatever the chroma
    bad = run('colorize.py', photo_in, f'--out_dir={tmp_path / "neg"}', f'--checkpoint={vivid_generator}',
              '--saturation=-0.5', check=False)
    assert bad.returncode != 0 and bad.stderr.strip().startswith('error: --saturation=-0.5 must be between 0 and 10')
    assert not (tmp_path / 'neg').exists()


def test_default_model_is_the_photo_model(tmp_path):
    Image.fromarray(_gray_photo(40, 60)).save(tmp_path / 'p.png')
    proc = run('colorize.py', tmp_path / 'p.png', f'--out_dir={tmp_path / "out"}')
    assert os.path.join('pretrained', 'photo_generator.safetensors (') in proc.stdout
    assert '128px' in proc.stdout  # it works at its own training size unless --size says otherwise


def test_int8_export_colorizes_like_full_precision_and_damage_is_one_line(tmp_path):
    torch.manual_seed(0)
    G = Generator(8, 32)
    G(torch.randn(8, 1, 32, 32))  # BatchNorm statistics off their defaults
    G.eval()
    export_generator(str(tmp_path / 'q.safetensors'), G, precision='int8')
    G_int8, description = load_generator(str(tmp_path / 'q.safetensors'))
    assert 'int8 weights' in description
    assert os.path.getsize(tmp_path / 'q.safetensors') < 0.3 * sum(v.numel() * 4 for v in G.state_dict().values())
    image = _gray_photo(90, 120, 3)
    full, small = photo.colorize(fold_batchnorm(G), image), photo.colorize(G_int8, image)
    diff = np.abs(full.astype(int) - small.astype(int))
    assert diff.max() <= 3 and diff.mean() < 0.5  # the stated tolerance: 3 levels of 255 at most
    blob = (tmp_path / 'q.safetensors').read_bytes()
    (tmp_path / 'truncated.safetensors').write_bytes(blob[:len(blob) // 2])
    (tmp_path / 'corrupt.safetensors').write_bytes(b'\xff' * 16 + blob[16:])
    for name in ('truncated', 'corrupt'):
        with pytest.raises(UserError) as e:
            load_generator(str(tmp_path / f'{name}.safetensors'))
        assert 'truncated or corrupt' in str(e.value) and '\n' not in str(e.value)
