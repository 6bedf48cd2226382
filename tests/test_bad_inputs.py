"""What people feed colorize.py (issue 23): every input gets its own output, outputs are never inputs, numbers are
numbers, every pixel format comes out right or is refused, thin strips stay small, and one bad photo never stops
the rest."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from colorize_gan import checkpoint, images, photo, utils
from colorize_gan.color import luminance
from colorize_gan.models import Generator
from conftest import run, run_script


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """A small exported generator with some colour in its output."""
    torch.manual_seed(0)
    G = Generator(8, 32)
    with torch.no_grad():
        G.out[0].bias.copy_(torch.tensor([0.2, 0.3]))
    path = tmp_path_factory.mktemp('model') / 'g.safetensors'
    checkpoint.export_generator(str(path), G.eval())
    return str(path)


def _gray(h=40, w=56, seed=0):
    yy, xx = np.mgrid[0:h, 0:w]
    g = 60 + 120 * (xx / w) + 40 * np.sin(yy / 5) + np.random.default_rng(seed).normal(0, 6, (h, w))
    return np.clip(g, 0, 255).astype(np.uint8)


def _pngs(folder):
    return sorted(os.path.relpath(os.path.join(r, f), folder) for r, _, fs in os.walk(folder) for f in fs)


def test_inputs_with_the_same_name_in_different_folders_get_their_own_outputs(tmp_path, model):
    for i, sub in enumerate('abc'):
        (tmp_path / 'album' / sub).mkdir(parents=True)
        Image.fromarray(_gray(seed=i)).save(tmp_path / 'album' / sub / 'photo.jpg')
    by_glob = run('colorize.py', str(tmp_path / 'album' / '*' / 'photo.jpg'), f'--out_dir={tmp_path / "g"}',
                  f'--checkpoint={model}')
    assert 'wrote 3, failed 0' in by_glob.stdout
    assert _pngs(tmp_path / 'g') == ['a/photo.png', 'b/photo.png', 'c/photo.png']
    by_name = run('colorize.py', *(tmp_path / 'album' / s / 'photo.jpg' for s in 'abc'), f'--out_dir={tmp_path / "n"}',
                  f'--checkpoint={model}')
    assert 'wrote 3, failed 0' in by_name.stdout and _pngs(tmp_path / 'n') == _pngs(tmp_path / 'g')
    outs = [np.asarray(Image.open(tmp_path / 'n' / s / 'photo.png')) for s in 'abc']
    assert not np.array_equal(outs[0], outs[1])  # three photos, three different results


def test_the_output_folder_inside_the_input_folder_is_never_read_as_input(tmp_path, model):
    album = tmp_path / 'album'
    album.mkdir()
    for i in range(2):
        Image.fromarray(_gray(seed=i)).save(album / f'p{i}.png')
    for extra in ([], ['--overwrite', '--saturation=1.2']):  # the default --out_dir, colorized/, lands inside the
        proc = run('colorize.py', '.', f'--checkpoint={model}', *extra, cwd=album)  # folder being colorized
        assert 'wrote 2, failed 0' in proc.stdout
    assert _pngs(album) == ['colorized/p0.png', 'colorized/p1.png', 'p0.png', 'p1.png']


@pytest.mark.parametrize('value', ['nan', 'inf', '-inf'])
def test_numbers_that_are_not_numbers_are_refused(tmp_path, model, value):
    Image.fromarray(_gray()).save(tmp_path / 'p.png')
    proc = run('colorize.py', tmp_path / 'p.png', f'--saturation={value}', f'--out_dir={tmp_path / "o"}',
               f'--checkpoint={model}', check=False)
    assert proc.returncode == 1 and 'is not a finite number' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / 'o').exists()


def _png16(path, rgb16):
    """Write a 16-bit RGB PNG (Pillow reads them but cannot write them): the chunks by hand, rows unfiltered."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    h, w = rgb16.shape[:2]
    rows = b''.join(b'\0' + rgb16[y].astype('>u2').tobytes() for y in range(h))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0))
                     + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def _formats(tmp_path):
    """(name, file, the 8-bit RGB it shows) for the pixel formats a Pillow image can have."""
    tmp_path.mkdir()
    yy, xx = np.mgrid[0:36, 0:48]
    rgb = np.stack([40 + 3 * xx, 30 + 5 * yy, 200 - 2 * xx], -1).clip(0, 255).astype(np.uint8)
    gray = _gray(36, 48)
    base = Image.fromarray(rgb)
    cases = []

    def add(name, im, shows, ext='png', **save):
        path = tmp_path / f'{name}.{ext}'
        im.save(path, **save)
        cases.append((name, path, shows))
    add('1', Image.fromarray(gray > 128), np.repeat(((gray > 128) * 255).astype(np.uint8)[..., None], 3, 2))
    add('L', Image.fromarray(gray), np.repeat(gray[..., None], 3, 2))
    la = Image.fromarray(gray).convert('LA')
    add('LA', la, np.repeat(gray[..., None], 3, 2))
    p = base.convert('P')
    add('P', p, np.asarray(p.convert('RGB')))
    pt = base.convert('P')
    pt.info['transparency'] = 255  # a palette entry no pixel uses: transparency declared, nothing hidden
    add('P_transparency', pt, np.asarray(pt.convert('RGB')), transparency=255)
    add('RGB', base, rgb)
    add('RGBA', base.convert('RGBA'), rgb)
    for mode in ('CMYK', 'YCbCr', 'LAB'):  # HSV: no file format Pillow writes holds it
        im = base.convert(mode) if mode != 'LAB' else Image.merge('LAB', base.convert('LAB').split())
        jpeg = mode in ('CMYK', 'YCbCr')  # Pillow writes these as JPEG; LAB as TIFF
        add(mode, im, np.asarray(im.convert('RGB')), ext='jpg' if jpeg else 'tif', **({'quality': 100} if jpeg else {}))
    add('I;16', Image.fromarray(gray.astype(np.uint16) * 257), np.repeat(gray[..., None], 3, 2))
    add('I', Image.fromarray(gray.astype(np.int32) * 257, mode='I'), np.repeat(gray[..., None], 3, 2), ext='tif')
    add('F', Image.fromarray(gray.astype(np.float32) / 255), np.repeat(gray[..., None], 3, 2), ext='tif')
    add('F_0_255', Image.fromarray(gray.astype(np.float32)), np.repeat(gray[..., None], 3, 2), ext='tif')
    _png16(tmp_path / 'RGB16.png', rgb.astype(np.uint16) * 257)
    cases.append(('RGB16', tmp_path / 'RGB16.png', rgb))
    # a flat white image stays white; a flat black one black (only they may)
    add('white', Image.new('L', (48, 36), 255), np.full((36, 48, 3), 255, np.uint8))
    add('black', Image.new('L', (48, 36), 0), np.zeros((36, 48, 3), np.uint8))
    return cases


def test_every_pixel_format_keeps_size_and_lightness_and_is_never_flattened(tmp_path, model):
    cases = _formats(tmp_path / 'in')
    proc = run('colorize.py', *(c[1] for c in cases), f'--out_dir={tmp_path / "out"}', f'--checkpoint={model}')
    assert f'wrote {len(cases)}, failed 0' in proc.stdout
    for name, path, shows in cases:
        out = np.asarray(Image.open(tmp_path / 'out' / (os.path.splitext(path.name)[0] + '.png')))
        assert out.shape == shows.shape, name
        L_out, L_in = luminance(out), luminance(np.ascontiguousarray(shows))
        assert (L_out - L_in).abs().mean() < 1.0 and (L_out - L_in).abs().max() <= 3.0, name
        flat_in = shows.min() == shows.max()
        assert flat_in or not (out.max() < 8 or out.min() > 247), f'{name} came out uniformly black or white'


def test_a_multi_frame_file_is_refused_with_one_line_and_the_rest_still_go(tmp_path, model):
    frames = [Image.fromarray(_gray(seed=i)) for i in range(3)]
    frames[0].save(tmp_path / 'anim.gif', save_all=True, append_images=frames[1:])
    Image.fromarray(_gray()).save(tmp_path / 'still.png')
    proc = run('colorize.py', tmp_path / 'anim.gif', tmp_path / 'still.png', f'--out_dir={tmp_path / "o"}',
               f'--checkpoint={model}', check=False)
    assert proc.returncode == 1 and 'holds 3 frames' in proc.stderr and 'wrote 1, failed 1' in proc.stdout
    assert _pngs(tmp_path / 'o') == ['still.png']


def test_thin_strips_have_a_bounded_working_size(tmp_path, model):
    for h, w in ((1, 2000), (2000, 1), (4, 4000)):
        assert max(photo.working_size(h, w, 64, 16, 64)) <= utils.MAX_ASPECT * 64
    Image.fromarray(_gray(1, 2000)).save(tmp_path / 'row.png')
    Image.fromarray(_gray(300, 1)).save(tmp_path / 'col.png')
    proc = run('colorize.py', tmp_path / 'row.png', tmp_path / 'col.png', f'--out_dir={tmp_path / "o"}',
               f'--checkpoint={model}')
    assert 'wrote 2, failed 0' in proc.stdout
    assert Image.open(tmp_path / 'o' / 'row.png').size == (2000, 1) and Image.open(tmp_path / 'o' / 'col.png').size \
        == (1, 300)


def test_an_unwritable_output_folder_is_one_line_before_any_work(tmp_path, model):
    Image.fromarray(_gray()).save(tmp_path / 'p.png')
    (tmp_path / 'file').write_text('a file, not a folder')
    proc = run('colorize.py', tmp_path / 'p.png', f'--out_dir={tmp_path / "file" / "out"}', f'--checkpoint={model}',
               check=False)
    assert proc.returncode == 1 and proc.stderr.strip().startswith('error: cannot write to --out_dir=')
    assert len(proc.stderr.strip().splitlines()) == 1 and 'model:' not in proc.stdout  # before the model loads


def test_a_failure_while_colorizing_one_photo_is_one_line_and_the_next_photo_goes_on(tmp_path, model, monkeypatch):
    for name in ('a', 'b', 'c'):
        Image.fromarray(_gray(seed=ord(name))).save(tmp_path / f'{name}.png')
    real = photo.colorize

    def flaky(G, image, *args):
        if image[0, 0] == _gray(seed=ord('b'))[0, 0]:
            raise MemoryError('out of memory')
        return real(G, image, *args)
    monkeypatch.setattr(photo, 'colorize', flaky)
    proc = run('colorize.py', *(tmp_path / f'{n}.png' for n in 'abc'), f'--out_dir={tmp_path / "o"}',
               f'--checkpoint={model}', check=False)
    assert proc.returncode == 1 and "'" + str(tmp_path / 'b.png') + "' could not be colorized" in proc.stderr
    assert 'wrote 2, failed 1' in proc.stdout and _pngs(tmp_path / 'o') == ['a.png', 'c.png']


def test_phone_photos_in_heic_open_like_jpegs(tmp_path, model):
    pytest.importorskip('pillow_heif')
    rgb = np.stack([_gray(), _gray(seed=1), _gray(seed=2)], -1)
    Image.fromarray(rgb).save(tmp_path / 'phone.heic', quality=95)
    assert '.heic' in images.IMAGE_EXTENSIONS
    run('colorize.py', str(tmp_path), f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert Image.open(tmp_path / 'o' / f'{tmp_path.name}' / 'phone.png').size == (56, 40)


@pytest.mark.slow
def test_file_names_whatever_their_bytes_never_crash_the_run(tmp_path, model):
    folder = os.fsencode(str(tmp_path))
    name = folder + b'/caf\xe9 \xff.png'  # Latin-1 bytes: not UTF-8
    Image.fromarray(_gray()).save(name.decode('utf-8', 'surrogateescape'))
    proc = run_script('colorize.py', str(tmp_path), f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert 'wrote 1, failed 0' in proc.stdout and 'caf\\xe9 \\xff.png' in proc.stdout and 'Traceback' not in proc.stderr


def test_names_that_differ_in_case_or_share_a_stem_in_one_folder_never_collide(tmp_path, model):
    album = tmp_path / 'case'
    album.mkdir()
    for i, ext in enumerate(('jpg', 'JPG', 'Jpg', 'png')):
        Image.fromarray(_gray(seed=i)).save(album / f'photo.{ext}', format='PNG' if ext == 'png' else 'JPEG')
    proc = run('colorize.py', album, f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert 'wrote 4, failed 0' in proc.stdout
    written = _pngs(tmp_path / 'o')
    assert len(written) == 4 and all(w.startswith('case/photo') for w in written)  # no absolute path nested inside


def test_a_file_added_beside_one_of_the_same_stem_leaves_the_first_output_s_name_alone(tmp_path, model):
    album = tmp_path / 'st'
    album.mkdir()
    Image.fromarray(_gray(seed=1)).save(album / 'photo.jpg', format='JPEG')  # a jpg alone: photo.png
    args = (album, f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    run('colorize.py', *args)
    Image.fromarray(_gray(seed=2)).save(album / 'photo.png')  # a png joins it: it takes photo_png.png, not the jpg's
    again = run('colorize.py', *args)
    assert 'wrote 1, failed 0, already done 1' in again.stdout and again.returncode == 0
    assert _pngs(tmp_path / 'o') == ['st/photo.png', 'st/photo_png.png']
    assert images.parse_record(images.recorded_source(str(tmp_path / 'o' / 'st' / 'photo.png')))[0] == \
        images.source_id(str(album / 'photo.jpg'))
    fresh = run('colorize.py', album, f'--out_dir={tmp_path / "new"}', f'--checkpoint={model}')  # no earlier output:
    assert f"photo.png -> {tmp_path / 'new' / 'st' / 'photo.png'}" in fresh.stdout  # the output's own type keeps it
    # a file named as the jpg's output joins: the jpg keeps photo_jpg.png, the newcomer takes a free name
    Image.fromarray(_gray(seed=1)).save(tmp_path / 'new' / 'st' / 'x.png')  # (a stray file there changes nothing)
    run('colorize.py', album, f'--out_dir={tmp_path / "o2"}', f'--checkpoint={model}')
    Image.fromarray(_gray(seed=3)).save(album / 'photo_jpg.png')
    third = run('colorize.py', album, f'--out_dir={tmp_path / "o2"}', f'--checkpoint={model}')
    assert 'wrote 1, failed 0, already done 2' in third.stdout and third.returncode == 0
    assert f"photo_jpg.png -> {tmp_path / 'o2' / 'st' / 'photo_jpg_png.png'}" in third.stdout
    assert 'already done 3' in run('colorize.py', album, f'--out_dir={tmp_path / "o2"}', f'--checkpoint={model}').stdout
    # photo.png goes; two newcomers of that stem come: neither takes the gone input's photo.png, nor is refused
    (album / 'photo.png').unlink()
    for ext in ('bmp', 'webp'):
        Image.fromarray(_gray(seed=len(ext))).save(album / f'photo.{ext}')
    fourth = run('colorize.py', album, f'--out_dir={tmp_path / "o2"}', f'--checkpoint={model}')
    assert fourth.returncode == 0 and 'wrote 2, failed 0' in fourth.stdout
    assert {'st/photo_bmp.png', 'st/photo_webp.png'} <= set(_pngs(tmp_path / 'o2'))
    # a folder where an output goes: named, not written through
    (tmp_path / 'o3' / 'photo.png' / 'inner').mkdir(parents=True)
    folder = run('colorize.py', album / 'photo.jpg', f'--out_dir={tmp_path / "o3"}', '--overwrite',
                 f'--checkpoint={model}', check=False)
    assert folder.returncode == 1 and 'is a folder; move it, or pass another --out_dir' in folder.stderr


def test_deep_pixel_values_are_scaled_by_the_range_they_use(tmp_path, model):
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (32, 1))
    Image.fromarray(ramp * 1.5).save(tmp_path / 'float_over_1.tif')  # a float image a little over 0-1
    Image.fromarray((ramp * 1020).astype(np.int32), mode='I').save(tmp_path / 'int_0_1020.tif')
    Image.fromarray(ramp * 2 - 1).save(tmp_path / 'float_signed.tif')
    run('colorize.py', tmp_path, f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    for name in ('float_over_1', 'int_0_1020', 'float_signed'):
        L = luminance(np.asarray(Image.open(tmp_path / 'o' / tmp_path.name / f'{name}.png')))
        assert L[:, -1].mean() - L[:, 0].mean() > 80, name  # the ramp spans the range: not near-black
    import tifffile  # scikit-image's own TIFF library: Pillow cannot write a 16-bit MinIsWhite file
    deep = (ramp * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / 'white_is_zero.tif', deep, photometric='miniswhite')  # old scanners write these
    tifffile.imwrite(tmp_path / 'white_is_zero_8.tif', (deep >> 8).astype(np.uint8), photometric='miniswhite')
    sixteen, eight = (images.read_image(tmp_path / f'white_is_zero{end}.tif') for end in ('', '_8'))
    assert np.abs(sixteen * 255 - eight).max() < 1.5  # as viewers show them: 0 is white in both, not in 8-bit alone
    holes = ramp.copy()
    holes[:4, :4] = np.nan  # pixels with no value: refused, not made black
    Image.fromarray(holes).save(tmp_path / 'nan.tif')
    proc = run('colorize.py', tmp_path / 'nan.tif', f'--out_dir={tmp_path / "n"}', f'--checkpoint={model}',
               check=False)
    assert proc.returncode == 1 and '16 of its F pixels hold no number (NaN or inf); fill them first' in proc.stderr


def test_linked_folders_are_followed_once_and_camera_mpo_jpegs_open(tmp_path, model):
    (tmp_path / 'album' / 'real').mkdir(parents=True)
    (tmp_path / 'elsewhere').mkdir()
    Image.fromarray(_gray()).save(tmp_path / 'album' / 'real' / 'a.png')
    Image.fromarray(_gray(seed=1)).save(tmp_path / 'elsewhere' / 'b.png')
    os.symlink(tmp_path / 'elsewhere', tmp_path / 'album' / 'linked')
    os.symlink(tmp_path / 'album', tmp_path / 'album' / 'real' / 'loop')  # a loop back up
    frames = [Image.fromarray(np.stack([_gray(seed=s)] * 3, -1)) for s in (2, 3)]
    frames[0].save(tmp_path / 'album' / 'camera.jpg', format='MPO', save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / 'album' / 'camera.jpg').format == 'MPO'
    proc = run('colorize.py', tmp_path / 'album', f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert 'wrote 3, failed 0' in proc.stdout
    assert _pngs(tmp_path / 'o') == ['album/camera.png', 'album/linked/b.png', 'album/real/a.png']


def test_hints_keyed_by_path_and_malformed_hints_files(tmp_path):
    import json

    from colorize_gan import checkpoint as ckpt
    torch.manual_seed(0)
    ckpt.export_generator(str(tmp_path / 'h.safetensors'), Generator(8, 32, hints=True).eval())
    for sub in 'ab':
        (tmp_path / 'album' / sub).mkdir(parents=True)
        Image.fromarray(_gray()).save(tmp_path / 'album' / sub / 'photo.png')
    common = (tmp_path / 'album', f'--checkpoint={tmp_path / "h.safetensors"}', f'--out_dir={tmp_path / "o"}')
    cases = {'ambiguous.json': ({'photo.png': [{'x': 1, 'y': 1, 'color': 'red'}]}, 'names 2 inputs'),
             'bool.json': ([{'x': True, 'y': 1, 'color': 'red'}], 'not true/false'),
             'one.json': ({'x': 1, 'y': 1, 'color': 'red'}, 'holds one hint object; put it in a list')}
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(json.dumps(content))
        proc = run('colorize.py', *common, f'--hints={tmp_path / name}', check=False)
        assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, name
    (tmp_path / 'latin1.json').write_bytes(b'[{"x": 1, "y": 1, "color": "r\xe9d"}]')
    proc = run('colorize.py', *common, f'--hints={tmp_path / "latin1.json"}', check=False)
    assert proc.returncode == 1 and 'is not UTF-8 text' in proc.stderr
    proc = run('colorize.py', *common, '--hint=3,3,red', '--hint_spread=-1', check=False)
    assert proc.returncode == 1 and '--hint_spread=-1.0 must be 0 (the model' in proc.stderr
    (tmp_path / 'ok.json').write_text(json.dumps({'a/photo.png': [{'x': 3, 'y': 3, 'color': 'red', 'radius': 4}]}))
    assert 'wrote 2, failed 0' in run('colorize.py', *common, f'--hints={tmp_path / "ok.json"}').stdout
    # an input's own path is a key too (absolute here)
    (tmp_path / 'path.json').write_text(json.dumps({str(tmp_path / 'album' / 'b' / 'photo.png'): [
        {'x': 3, 'y': 3, 'color': 'blue'}]}))
    proc = run('colorize.py', *common, f'--hints={tmp_path / "path.json"}', '--overwrite')
    assert 'wrote 2, failed 0' in proc.stdout
    # --hints given twice: both files' hints apply (a: 1 from ok.json; b: 1 from path.json, 1 from the list)
    (tmp_path / 'all.json').write_text(json.dumps([{'x': 1, 'y': 2, 'color': 'green'}]))
    run('colorize.py', *common, f'--hints={tmp_path / "ok.json"}', f'--hints={tmp_path / "path.json"}',
        f'--hints={tmp_path / "all.json"}', '--overwrite')
    counts = [images.parse_record(images.recorded_source(str(tmp_path / 'o' / 'album' / sub / 'photo.png')))[1]
              .split('hints=')[1].split('@')[0] for sub in 'ab']
    assert counts == ['2', '2']


def test_odd_output_folders(tmp_path, model):
    Image.fromarray(_gray()).save(tmp_path / 'p.png')
    empty = run('colorize.py', tmp_path / 'p.png', '--out_dir=', f'--checkpoint={model}', check=False, cwd=tmp_path)
    assert empty.returncode == 1 and '--out_dir is empty' in empty.stderr
    dotted = run('colorize.py', tmp_path / 'p.png', f'--out_dir={tmp_path / "new" / "x" / ".." / "y"}',
                 f'--checkpoint={model}')
    assert 'wrote 1, failed 0' in dotted.stdout and (tmp_path / 'new' / 'y' / 'p.png').exists()
    inside = run('colorize.py', tmp_path / 'new', f'--out_dir={tmp_path / "new"}', f'--checkpoint={model}',
                 check=False)
    assert inside.returncode == 1 and 'are under --out_dir' in inside.stderr
    (tmp_path / 'nl').mkdir()
    Image.fromarray(_gray()).save(tmp_path / 'nl' / 'new\nline.png')
    proc = run('colorize.py', tmp_path / 'nl', f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert 'new\\nline.png' in proc.stdout and all('line.png' not in line or 'new' in line
                                                    for line in proc.stdout.splitlines())


def test_a_rerun_keeps_what_is_done_and_never_replaces_a_file_silently(tmp_path, model):
    b = 'b é ' + '猫' * 78  # EXIF text is ASCII: the name an output records must survive it; 243 bytes long
    for name in ('a', b):
        Image.fromarray(_gray(seed=ord(name[0]))).save(tmp_path / f'{name}.png')
    args = (tmp_path / 'a.png', tmp_path / f'{b}.png', f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    run('colorize.py', *args)
    again = run('colorize.py', *args)
    assert 'wrote 0, failed 0, already done 2' in again.stdout and again.returncode == 0
    assert images.parse_record(images.recorded_source(str(tmp_path / 'o' / f'{b}.png')))[0] == \
        images.source_id(str(tmp_path / f'{b}.png'))
    os.utime(tmp_path / 'o' / f'{b}.png', (0, 0))  # older than its input, but of the same bytes: still done
    assert 'wrote 0, failed 0, already done 2' in run('colorize.py', *args).stdout
    # the input replaced by another photo whose date is older than the output's (as cp -p, rsync -t or unzip give)
    Image.fromarray(_gray(seed=99)).save(tmp_path / f'{b}.png')
    os.utime(tmp_path / f'{b}.png', (0, 0))
    refused = run('colorize.py', *args, check=False)
    assert refused.returncode == 1 and 'the input file changed since (sha1 ' in refused.stderr and '--overwrite' in \
        refused.stderr and os.path.getmtime(tmp_path / 'o' / f'{b}.png') == 0
    redone = run('colorize.py', *args, '--overwrite')  # redoes the stale one; a.png's is as this run would make it
    assert 'wrote 1, failed 0, already done 1' in redone.stdout and os.path.getmtime(tmp_path / 'o' / f'{b}.png') > 0
    # an output from before outputs recorded their input's digest is judged by the dates, as then
    out = tmp_path / 'o' / 'a.png'
    with Image.open(out) as im:
        exif, pixels = im.getexif(), im.copy()
    exif[0x010D] = ' '.join(w for w in exif[0x010D].split() if not w.startswith('input_sha1='))
    pixels.save(out, exif=exif)
    assert 'already done 2' in run('colorize.py', *args).stdout
    os.utime(out, (0, 0))
    stale = run('colorize.py', *args, check=False)
    assert stale.returncode == 1 and "'a.png' exists and is older than its input" in stale.stderr.replace(
        str(tmp_path / 'o') + os.sep, "'")
    # a file colorize.py did not write is never taken as done, however new
    Image.fromarray(_gray(seed=5)).save(out)
    foreign = run('colorize.py', *args, check=False)
    assert foreign.returncode == 1 and 'was not written by colorize.py (it records no input)' in foreign.stderr
    assert 'already done' in foreign.stdout and 'already done 2' not in foreign.stdout


def test_an_output_made_from_another_input_is_never_taken_as_done_or_replaced_silently(tmp_path, model):
    """Two runs into one folder: a/photo.jpg, then b/photo.png (both named photo.png there). The second is refused in
    one line naming the input the output came from; --overwrite replaces it; the first's rerun is 'already done'."""
    for folder, seed in (('a', 1), ('b', 2)):
        (tmp_path / folder).mkdir()
        Image.fromarray(_gray(seed=seed)).save(tmp_path / folder / ('photo.jpg' if folder == 'a' else 'photo.png'))
    args = (f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    run('colorize.py', tmp_path / 'a' / 'photo.jpg', *args)
    first = (tmp_path / 'o' / 'photo.png').read_bytes()
    other = run('colorize.py', tmp_path / 'b' / 'photo.png', *args, check=False)
    assert other.returncode == 1 and "was made from another input ('photo.jpg')" in other.stderr
    assert (tmp_path / 'o' / 'photo.png').read_bytes() == first and 'already done' not in other.stdout
    assert 'already done 1' in run('colorize.py', tmp_path / 'a' / 'photo.jpg', *args).stdout
    assert 'wrote 1, failed 0' in run('colorize.py', tmp_path / 'b' / 'photo.png', *args, '--overwrite').stdout
    assert images.parse_record(images.recorded_source(str(tmp_path / 'o' / 'photo.png')))[0] == \
        images.source_id(str(tmp_path / 'b' / 'photo.png'))


def test_a_rerun_with_other_settings_keeps_the_outputs_and_names_the_settings_that_differ(tmp_path, model):
    for i in range(2):
        Image.fromarray(_gray(seed=i)).save(tmp_path / f'p{i}.png')
    args = (tmp_path / 'p0.png', tmp_path / 'p1.png', f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    run('colorize.py', *args)
    first = (tmp_path / 'o' / 'p0.png').read_bytes()
    other = run('colorize.py', *args, '--saturation=1.3', check=False)  # not 'already done': another result
    assert other.returncode == 1 and (tmp_path / 'o' / 'p0.png').read_bytes() == first
    assert other.stderr.strip() == (f"error: 2 output(s) in '{tmp_path / 'o'}' were made with other settings or inputs "
                                    f"(e.g. '{tmp_path / 'o' / 'p0.png'}': saturation=1.0, now 1.3); pass --overwrite "
                                    "to redo them with these, or another --out_dir")
    assert 'wrote 0, failed 0, 2 made with other settings or inputs (kept)' in other.stdout
    guided = run('colorize.py', *args, '--upsample=guided', '--saturation=0.9', check=False)
    assert guided.returncode == 1 and "p0.png': saturation=1.0, now 0.9; upsample=bicubic, now guided)" in guided.stderr
    assert 'already done 2' in run('colorize.py', *args).stdout  # the same settings: done
    assert 'already done 2' in run('colorize.py', *args, '--size=32', '--saturation=1').stdout  # the same, spelt out
    assert 'wrote 2, failed 0' in run('colorize.py', *args, '--saturation=1.3', '--overwrite').stdout
    assert 'already done 2' in run('colorize.py', *args, '--saturation=1.3').stdout
    # --overwrite redoes what was made otherwise only: a stopped --overwrite run continues where it stopped
    Image.fromarray(_gray(seed=7)).save(tmp_path / 'p1.png')  # p1 is now another photo: its output is redone
    again = run('colorize.py', *args, '--saturation=1.3', '--overwrite').stdout
    assert 'wrote 1, failed 0, already done 1' in again
    retrained = tmp_path / 'g.safetensors'  # the same file name, other weights: another model
    G = checkpoint.load_generator(model, fold=False)[0]
    with torch.no_grad():
        G.out[0].bias.add_(0.1)
    checkpoint.export_generator(str(retrained), G)
    again = run('colorize.py', *args[:3], f'--checkpoint={retrained}', '--saturation=1.3', check=False)
    assert again.returncode == 1 and "p0.png': model=g.safetensors@" in again.stderr
    assert ', now g.safetensors@' in again.stderr
    # an output written before settings were recorded (its record names the input only) stays done, as it was
    rgb = np.asarray(Image.open(tmp_path / 'o' / 'p0.png'))
    images.write_colorized(str(tmp_path / 'o' / 'p0.png'), rgb, str(tmp_path / 'p0.png'), 'g.safetensors')
    assert 'already done 1' in run('colorize.py', tmp_path / 'p0.png', *args[2:], '--saturation=0.5').stdout


def test_what_a_folder_holds_beside_photos_is_skipped_and_named_in_one_line(tmp_path, model):
    album = tmp_path / 'album'
    (album / '.thumbnails').mkdir(parents=True)
    (album / '@eaDir').mkdir()
    Image.fromarray(_gray()).save(album / 'p.png')
    Image.fromarray(_gray()).save(album / '.thumbnails' / 'p_thumb.png')
    Image.fromarray(_gray()).save(album / '@eaDir' / 'SYNOPHOTO_THUMB.png')
    (album / 'notes.txt').write_text('not a photo')
    proc = run('colorize.py', album, f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert 'wrote 1, failed 0' in proc.stdout and _pngs(tmp_path / 'o') == ['album/p.png']
    line = next(line for line in proc.stdout.splitlines() if line.startswith('skipped'))
    assert '2 hidden or system folders (.thumbnails, @eaDir)' in line and '1 file of no image type (notes.txt)' in line


def test_a_rerun_into_another_out_dir_leaves_the_first_run_s_outputs_out(tmp_path, model):
    album = tmp_path / 'album'
    album.mkdir()
    for i in range(2):
        Image.fromarray(_gray(seed=i)).save(album / f'p{i}.png')
    (album / 'a.txt').write_text('x')
    (album / 'b.txt').write_text('y')
    common = (f'--checkpoint={model}',)
    run('colorize.py', '.', *common, cwd=album)  # writes album/colorized/
    vivid = run('colorize.py', '.', '--out_dir=vivid', '--saturation=1.3', *common, cwd=album)
    assert 'wrote 2, failed 0' in vivid.stdout and sorted(os.listdir(album / 'vivid')) == ['p0.png', 'p1.png']
    line = next(line for line in vivid.stdout.splitlines() if line.startswith('skipped'))
    assert line == ('skipped 2 files of no image type (a.txt, b.txt); 2 colorized outputs of an earlier run (p0.png, '
                    'p1.png)')
    for arg in ('colorized', 'colorized/*.png'):  # nothing else to take: said so
        none = run('colorize.py', arg, '--out_dir=other', *common, cwd=album, check=False)
        assert none.returncode == 1 and 'its 2 file(s) are colorized outputs of an earlier run; name such a file ' \
            'itself' in none.stderr and not (album / 'other').exists()
    named = run('colorize.py', 'colorized/p0.png', '--out_dir=other', *common, cwd=album)  # named itself: taken
    assert 'wrote 1, failed 0' in named.stdout


def test_a_folder_takes_every_file_a_decoder_opens_whatever_its_extension(tmp_path, model):
    """The same picture as .jpg, .jfif, .jpe and .avif in one folder: each gets its output (no silent skip)."""
    album = tmp_path / 'album'
    album.mkdir()
    picture = Image.fromarray(_gray()).convert('RGB')
    for name in ('a.jpg', 'b.jfif', 'c.jpe', 'e.avif'):
        picture.save(album / name, format='AVIF' if name.endswith('.avif') else 'JPEG')
    proc = run('colorize.py', album, f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert 'wrote 4, failed 0' in proc.stdout and 'skipped' not in proc.stdout
    assert _pngs(tmp_path / 'o') == ['album/a.png', 'album/b.png', 'album/c.png', 'album/e.png']


def test_tilde_means_home_in_every_path_option(tmp_path, model, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    Image.fromarray(_gray()).save(tmp_path / 'p.png')
    run('colorize.py', '~/p.png', '--out_dir=~/colorized', f'--checkpoint={model}', cwd=tmp_path / '..')
    assert (tmp_path / 'colorized' / 'p.png').exists() and not (tmp_path / '..' / '~').exists()


def test_images_over_the_megapixel_limit_are_refused_in_one_plain_line(tmp_path, model):
    Image.new('L', (3000, 2000), 128).save(tmp_path / 'scan.png')  # 6 MP of one gray: tiny on disk
    Image.fromarray(_gray()).save(tmp_path / 'small.png')
    proc = run('colorize.py', tmp_path / 'scan.png', tmp_path / 'small.png', '--max_megapixels=5',
               f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}', check=False)
    assert proc.returncode == 1 and f"error: '{tmp_path / 'scan.png'}' is 3000x2000 (6 MP), over --max_megapixels=5;" \
        " raise that to colorize it" in proc.stderr and 'readable' not in proc.stderr  # it is readable: just large
    assert 'wrote 1, failed 1' in proc.stdout
    small = run('colorize.py', tmp_path / 'small.png', '--max_megapixels=0.001', f'--out_dir={tmp_path / "o2"}',
                f'--checkpoint={model}', '--quality=50', check=False)
    assert 'note: --quality=50 is for --image_format=jpg; PNG outputs are lossless' in small.stdout
    assert '56x40 (0.00224 MP), over --max_megapixels=0.001' in small.stderr  # a small photo's size is not rounded to 0


@pytest.mark.slow
def test_ctrl_c_stops_after_the_photo_in_hand_and_a_rerun_continues(tmp_path, model):
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO
    for i in range(40):
        Image.fromarray(_gray(200, 300, seed=i)).save(tmp_path / f'p{i:02d}.png')
    args = [sys.executable, os.path.join(REPO, 'colorize.py'), str(tmp_path), f'--out_dir={tmp_path / "o"}',
            f'--checkpoint={model}', '--device=cpu']
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / 'o').exists() or not os.listdir(tmp_path / 'o'):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    done = [f for f in _pngs(tmp_path / 'o') if f.endswith('.png')]
    assert proc.returncode == 130 and 'Traceback' not in err and 'interrupted:' in err and 'rerun the same' in err
    assert 0 < len(done) < 40 and not [f for f in _pngs(tmp_path / 'o') if f.endswith('.tmp')]
    for f in done:
        assert Image.open(tmp_path / 'o' / f).size == (300, 200)  # every output written is whole
    again = run('colorize.py', str(tmp_path), f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}')
    assert f'wrote {40 - len(done)}, failed 0, already done {len(done)}' in again.stdout
    # Ctrl-C twice (the second stops at once) and Ctrl-C while the model loads: one line each, never a traceback
    for wait_for_output in (True, False):
        proc = subprocess.Popen(args[:-3] + [f'--out_dir={tmp_path / "o2"}', *args[-2:], '--overwrite'], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1'))  # lines as printed
        line = proc.stdout.readline()  # 'override: ...': the settings are read; the model loads next
        while wait_for_output and ' -> ' not in line:  # a photo is written: the next is in hand
            line = proc.stdout.readline()
        assert line
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode in (130, -signal.SIGINT) and 'Traceback' not in err and 'interrupted' in err, err
        assert not [f for f in _pngs(tmp_path / 'o2') if f.endswith('.tmp')] if (tmp_path / 'o2').exists() else True


def test_resolution_exif_and_colour_profile_stay_with_the_photo(tmp_path, model):
    from PIL import ImageCms
    exif = Image.Exif()
    exif[0x0110] = 'Brownie 127'  # Model
    exif[0x0132] = '1952:06:14 10:00:00'  # DateTime
    exif[0x0112] = 6  # Orientation: rotate; the output is already upright
    Image.fromarray(_gray(40, 60)).save(tmp_path / 'scan.jpg', dpi=(600, 600), exif=exif.tobytes(), quality=95)
    for fmt in ('png', 'jpg'):
        run('colorize.py', tmp_path / 'scan.jpg', f'--out_dir={tmp_path / fmt}', f'--image_format={fmt}',
            f'--checkpoint={model}')
        out = Image.open(tmp_path / fmt / f'scan.{fmt}')
        assert out.size == (40, 60)  # rotated by its orientation
        assert tuple(round(v) for v in out.info['dpi']) == (600, 600), fmt
        tags = out.getexif()
        assert tags[0x0110] == 'Brownie 127' and tags[0x0132] == '1952:06:14 10:00:00' and 0x0112 not in tags, fmt
        assert tags[0x0131].startswith('colorize-gan') and 'colorized' in tags[0x010E]
        assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(
            __import__('io').BytesIO(out.info['icc_profile']))).strip().startswith('sRGB')
    # a float TIFF: its descriptive tags come along, the ones describing its own pixel layout do not
    tiff = Image.fromarray(_gray(30, 40).astype(np.float32) / 255)
    tiff_tags = Image.Exif()
    tiff_tags[0x013B] = 'A. Photographer'  # Artist
    tiff.save(tmp_path / 'float.tif', exif=tiff_tags)
    assert {258, 339, 273} <= set(Image.open(tmp_path / 'float.tif').getexif())  # bits, sample format, strips
    run('colorize.py', tmp_path / 'float.tif', f'--out_dir={tmp_path / "tif"}', f'--checkpoint={model}')
    tags = Image.open(tmp_path / 'tif' / 'float.png').getexif()
    assert tags[0x013B] == 'A. Photographer' and not set(tags) & images.LAYOUT_TAGS
    # an embedded profile is applied: a gray ramp tagged as linear gray (gamma 1.0) comes out as a colour-managed
    # viewer shows it (much lighter than its raw numbers), within 3 levels
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    linear = _gray_profile(1.0)
    Image.fromarray(ramp).save(tmp_path / 'ramp.png', icc_profile=linear)
    shown = np.asarray(ImageCms.profileToProfile(Image.fromarray(ramp), ImageCms.ImageCmsProfile(
        __import__('io').BytesIO(linear)), ImageCms.createProfile('sRGB'), outputMode='RGB'))
    run('colorize.py', tmp_path / 'ramp.png', f'--out_dir={tmp_path / "t"}', '--saturation=0', f'--checkpoint={model}')
    out = np.asarray(Image.open(tmp_path / 't' / 'ramp.png')).astype(int)
    assert np.abs(out - shown).max() <= 3 and np.abs(out[..., 0] - ramp).max() > 50


def _gray_profile(gamma):
    """A minimal ICC v2 gray display profile with tone-curve `gamma` (Pillow makes only sRGB, LAB and XYZ ones)."""
    import struct

    def s15(v):
        return struct.pack('>i', round(v * 65536))
    text = b'linear gray\0'
    desc = b'desc' + b'\0' * 4 + struct.pack('>I', len(text)) + text + b'\0' * 78
    tags = [(b'desc', desc), (b'wtpt', b'XYZ ' + b'\0' * 4 + s15(0.9642) + s15(1.0) + s15(0.8249)),
            (b'kTRC', b'curv' + b'\0' * 4 + struct.pack('>IH', 1, round(gamma * 256)) + b'\0\0'),
            (b'cprt', b'text' + b'\0' * 4 + b'none\0' + b'\0' * 3)]
    offset, table, data = 128 + 4 + 12 * len(tags), b'', b''
    for sig, body in tags:
        body += b'\0' * (-len(body) % 4)
        table += sig + struct.pack('>II', offset + len(data), len(body))
        data += body
    header = struct.pack('>I', offset + len(data)) + b'none' + bytes([2, 0x10, 0, 0]) + b'mntrGRAYXYZ ' + b'\0' * 12 \
        + b'acsp' + b'\0' * 24 + struct.pack('>I', 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b'\0' * 48
    return header + struct.pack('>I', len(tags)) + table + data


def test_a_rerun_removes_what_a_killed_run_left_half_written_and_nothing_else(tmp_path, model):
    Image.fromarray(_gray()).save(tmp_path / 'p.png')
    out = tmp_path / 'o'
    out.mkdir()
    left = out / '.p.png.k1ll3d.tmp'  # atomic_write's temp file of p.png's output, from a run killed mid-write
    left.write_bytes(b'half')
    os.utime(left, (0, 0))
    live = out / '.p.png.l1v3.tmp'  # touched just now: perhaps another run's, writing
    live.write_bytes(b'half')
    other = out / '.q.png.0ld.tmp'  # no output of this run's
    other.write_bytes(b'half')
    os.utime(other, (0, 0))
    proc = run('colorize.py', tmp_path / 'p.png', f'--out_dir={out}', f'--checkpoint={model}')
    assert 'removed 1 half-written temp file(s) a stopped run left (.p.png.k1ll3d.tmp)' in proc.stdout
    assert not left.exists() and live.exists() and other.exists() and (out / 'p.png').exists()


def test_a_sound_file_named_by_hand_is_called_one(tmp_path, model):
    (tmp_path / 'song.m4a').write_bytes(b'\x00\x00\x00\x18ftypM4A ')
    proc = run('colorize.py', tmp_path / 'song.m4a', f'--out_dir={tmp_path / "o"}', f'--checkpoint={model}',
               check=False)
    assert proc.returncode == 1 and 'is a sound file, with no pictures to colorize; pass photos or videos' in \
        proc.stderr and not (tmp_path / 'o').exists()
