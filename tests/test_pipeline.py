"""Checks the rest of the suite would let through: the hue of the full-resolution pipeline (a and b not swapped),
that export writes the EMA generator, eval.py --full_resolution and its grayscale baseline, colorize.py --size and
figures.py."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor
from skimage import data as skdata

from colorize_gan import checkpoint, photo
from colorize_gan.models import Generator
from conftest import run


class ConstantAB(torch.nn.Module):
    """A generator that predicts the same network-scale ab everywhere (and has the attributes photo.colorize reads)."""

    def __init__(self, a, b, size=32):
        super().__init__()
        self.ab = torch.nn.Parameter(torch.tensor([a, b]).view(1, 2, 1, 1))
        self.config, self.multiple, self.hints = {'image_size': size}, 16, False

    def forward(self, L, hints=None):
        return self.ab.expand(L.shape[0], -1, *L.shape[2:])


@pytest.mark.parametrize('a,b', [(0.25, -0.05), (-0.05, 0.25), (-0.2, 0.0)])
def test_the_full_resolution_pipeline_puts_a_in_a_and_b_in_b(a, b):
    # mid-gray input, so nothing is out of gamut: the output's own Lab (scikit-image's) must be ab x 110 exactly
    gray = np.full((90, 130), 128, np.uint8)
    out = photo.colorize(ConstantAB(a, b), gray)
    lab = skcolor.rgb2lab(out)
    assert lab[..., 1].mean() == pytest.approx(110 * a, abs=1.0)
    assert lab[..., 2].mean() == pytest.approx(110 * b, abs=1.0)
    assert np.abs(lab[..., 0] - skcolor.rgb2lab(np.repeat(gray[..., None], 3, 2))[..., 0]).max() < 0.5  # L kept


def test_export_writes_the_ema_generator_not_the_raw_one(tmp_path):
    torch.manual_seed(0)
    G, G_ema = Generator(8, 32), Generator(8, 32)  # two different sets of weights
    checkpoint.save_checkpoint(tmp_path / 'run' / 'state.pt', {'G': G.state_dict(), 'G_ema': G_ema.state_dict(),
                               'model_config': G.config, 'epoch': 1, 'step': 5, 'elapsed_s': 1.0, 'config': {},
                               'history': []})
    run('export.py', f'--checkpoint={tmp_path / "run"}', '--out_name=g.safetensors')
    from safetensors.torch import load_file
    exported = load_file(str(tmp_path / 'run' / 'g.safetensors'))
    convs = [k for k, v in exported.items() if v.dim() == 4]
    assert convs and all(torch.allclose(exported[k].float(), G_ema.state_dict()[k], atol=1e-3) for k in convs)
    assert not all(torch.allclose(exported[k].float(), G.state_dict()[k], atol=1e-3) for k in convs)
    meta_ema = checkpoint._export_info(str(tmp_path / 'run' / 'g.safetensors'))[1]['ema']
    assert meta_ema is True


def _gray_baseline_mae(rgb):
    """The grayscale output's MAE by scikit-image alone: L kept, a = b = 0, back to 8-bit RGB."""
    lab = skcolor.rgb2lab(rgb)
    lab[..., 1:] = 0
    gray = np.round(skcolor.lab2rgb(lab) * 255)
    return np.abs(gray - rgb.astype(float)).mean()


def test_eval_full_resolution_scores_whole_photos_beside_a_true_grayscale_baseline(tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    photos = {'coffee': skdata.coffee()[::3, ::3], 'chelsea': skdata.chelsea()[::3, ::3]}
    for name, rgb in photos.items():
        Image.fromarray(rgb).save(folder / f'{name}.png')
    # what a user's folder also holds: each left out of every figure, and named
    (folder / 'empty.jpg').write_bytes(b'')
    Image.fromarray(skdata.coffee()[:5, :7]).save(folder / 'tiny.png')
    Image.fromarray(skdata.camera()[::8, ::8]).save(folder / 'gray.png')
    (folder / 'notes.txt').write_text('x')
    torch.manual_seed(0)
    checkpoint.export_generator(str(tmp_path / 'g.safetensors'), Generator(8, 32).eval())
    proc = run('eval.py', f'--data_dir={folder}', f'--checkpoint={tmp_path / "g.safetensors"}', '--full_resolution',
               '--as_json', '--device=cpu')
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['images'] == 2 and result['full_resolution']
    skipped = next(line for line in proc.stdout.splitlines() if line.startswith('skipped'))
    assert skipped.startswith('skipped 4 file(s) that are not colour photos to score: notes.txt (file of no image '
                              'type)') and 'empty.jpg (unreadable' in skipped and 'gray.png (not an 8-bit colour ' \
        'photo)' in skipped and 'tiny.png (smaller than 11 px' in skipped
    assert len(result['skipped']) == 4  # the JSON lists every file left out
    want = np.mean([_gray_baseline_mae(rgb) for rgb in photos.values()])
    assert result['gray']['mae'] == pytest.approx(want, abs=0.05)  # a baseline computed some other way
    assert result['gray']['colorfulness'] < 0.5 < result['colorfulness_real']
    assert 0 <= result['better_than_gray'] <= 1 and 'ciede2000' in result
    assert 'photos better than gray' in proc.stdout
    G, _ = checkpoint.load_generator(str(tmp_path / 'g.safetensors'))
    mae = lambda rgb, saturation: np.abs(photo.colorize(G, rgb, saturation=saturation).astype(float) - rgb).mean()
    ratios = {name: mae(rgb, 1.0) / mae(rgb, 0.0) for name, rgb in photos.items()}
    worst = max(ratios, key=ratios.get)  # the photo the table names, with its own ratio to the grayscale output
    assert result['worst_vs_gray'][0].endswith(f'{worst}.png')
    assert result['worst_vs_gray'][1] == pytest.approx(ratios[worst], rel=1e-3)
    assert f'{worst}.png' in proc.stdout


def test_colorize_size_sets_the_working_resolution(tmp_path):
    Image.fromarray(np.full((100, 150), 90, np.uint8)).save(tmp_path / 'p.png')
    torch.manual_seed(0)
    checkpoint.export_generator(str(tmp_path / 'g.safetensors'), Generator(8, 32).eval())
    seen = []
    original = photo.working_size
    try:
        photo.working_size = lambda *args: seen.append(args) or original(*args)
        run('colorize.py', tmp_path / 'p.png', f'--checkpoint={tmp_path / "g.safetensors"}', '--size=64',
            f'--out_dir={tmp_path / "out"}')
    finally:
        photo.working_size = original
    assert seen == [(100, 150, 64, 16, 32)]  # short side 64 (not the model's 32), in multiples of 16
    assert photo.working_size(100, 150, 64, 16, 64) == (64, 96)
    assert Image.open(tmp_path / 'out' / 'p.png').size == (150, 100)
    # never above the photo's own short side, unless that is below the model's size
    assert photo.working_size(100, 150, 4096, 16, 32) == photo.working_size(100, 150, 100, 16, 32) == (96, 144)
    assert photo.working_size(3, 3, 2048, 16, 128) == (128, 128) and photo.working_size(3, 3, 0, 16, 128) == (128, 128)
    big = run('colorize.py', tmp_path / 'p.png', f'--checkpoint={tmp_path / "g.safetensors"}', '--size=4096',
              f'--out_dir={tmp_path / "big"}')
    assert "note: --size=4096 is above the short side of" in big.stdout and "(100 px): it is worked at 100 px" in \
        big.stdout
    same = run('colorize.py', tmp_path / 'p.png', f'--checkpoint={tmp_path / "g.safetensors"}', '--size=100',
               f'--out_dir={tmp_path / "big"}')  # the size it was worked at is what the output records
    assert 'already done 1' in same.stdout


def test_figures_redraws_both_figures(tmp_path):
    torch.manual_seed(0)
    checkpoint.export_generator(str(tmp_path / 'g.safetensors'), Generator(8, 32).eval())
    run('figures.py', f'--checkpoint={tmp_path / "g.safetensors"}', f'--out_dir={tmp_path}', '--height=48')
    for name in ('colorize_examples.png', 'saturation.png'):
        image = Image.open(tmp_path / name)
        assert image.height >= 48 and image.width > image.height
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.png')) == ['colorize_examples.png', 'saturation.png']


def test_guided_upsampling_keeps_L_matches_bicubic_on_flat_colour_and_stops_at_edges():
    # flat colour on a flat photo: both upsamplings give the same pixels (within 1 level)
    flat = np.full((80, 120), 128, np.uint8)
    G = ConstantAB(0.2, -0.1)
    a, b = photo.colorize(G, flat), photo.colorize(G, flat, upsample='guided')
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # a photo with a sharp vertical edge, a generator whose colour changes at the edge (red left, blue right):
    # the guided output keeps L like bicubic, and its colour crosses over in fewer columns
    photo_edge = np.full((64, 256), 90, np.uint8)
    photo_edge[:, 128:] = 170

    class EdgeAB(ConstantAB):
        def forward(self, L, hints=None):
            ab = torch.zeros(L.shape[0], 2, *L.shape[2:])
            ab[:, 0] = torch.where(L > L.mean(), -0.15, 0.3)[:, 0]
            ab[:, 1] = torch.where(L > L.mean(), -0.3, 0.1)[:, 0]
            return ab
    out_bicubic, out_guided = (photo.colorize(EdgeAB(0.0, 0.0), photo_edge, upsample=u) for u in ('bicubic', 'guided'))
    L_in = skcolor.rgb2lab(np.repeat(photo_edge[..., None], 3, 2))[..., 0]
    for out in (out_bicubic, out_guided):
        assert np.abs(skcolor.rgb2lab(out)[..., 0] - L_in).max() < 1.0  # L kept either way
    a_cols = {u: skcolor.rgb2lab(o)[32, :, 1] for u, o in (('bicubic', out_bicubic), ('guided', out_guided))}
    mixed = {u: int(((a > -10) & (a < 25)).sum()) for u, a in a_cols.items()}  # columns neither red nor blue
    assert mixed['guided'] < mixed['bicubic']
    with pytest.raises(ValueError, match='unknown upsampling'):
        photo.colorize(G, flat, upsample='nearest')
