"""Lab conversion against scikit-image, the metrics, checkpoints and the --name=value parser."""
import numpy as np
import pytest
import torch
from skimage import color as skcolor
from skimage.metrics import structural_similarity

import utils


def _rgb_batch(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((3, 3, 19, 11))
    x[0, :, 0, :8] = np.array([[0, 0, 0, 1, 1, 1, 1, 0.5], [0, 1, 0, 1, 0, 1, 1, 0.5], [0, 0, 1, 0, 1, 1, 0, 0.5]])
    x[0, :, 1, :3] = 0.003  # the linear part of the sRGB curve
    return x


def test_rgb_to_lab_matches_skimage():
    x = _rgb_batch()
    ours = utils.rgb_to_lab(torch.tensor(x, dtype=torch.float32)).numpy()
    ref = skcolor.rgb2lab(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert np.abs(ours - ref).max() < 1e-3


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    lab = skcolor.rgb2lab(_rgb_batch(1).transpose(0, 2, 3, 1))
    lab[..., 1:] *= 1.6  # push some colours out of the sRGB gamut so clipping is exercised
    ours = utils.lab_to_rgb(torch.tensor(lab.transpose(0, 3, 1, 2), dtype=torch.float32)).numpy()
    ref = skcolor.lab2rgb(lab).transpose(0, 3, 1, 2)
    assert np.abs(ours - ref).max() < 1e-4


def test_lab_round_trip_and_normalization():
    x = torch.rand(4, 3, 16, 16)
    lab = utils.rgb_to_lab(x)
    assert torch.allclose(utils.lab_to_rgb(lab), x, atol=1e-4)
    L, ab = utils.normalize_lab(lab)
    assert L.shape == (4, 1, 16, 16) and ab.shape == (4, 2, 16, 16)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    assert torch.allclose(utils.denormalize_lab(L, ab), lab, atol=1e-4)


def test_ssim_matches_skimage_gaussian_variant():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 3, 32, 32)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.float32)
    ours = utils.ssim(torch.tensor(a), torch.tensor(b)).numpy()
    ref = [structural_similarity(a[i].transpose(1, 2, 0), b[i].transpose(1, 2, 0), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255, channel_axis=2) for i in range(2)]
    assert np.abs(ours - np.array(ref)).max() < 1e-4
    assert utils.ssim(torch.tensor(a), torch.tensor(a)).allclose(torch.ones(2))


def test_mae_psnr_colorfulness_by_hand():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 10.0)
    assert utils.mae_rgb(a, b).item() == pytest.approx(10.0)
    assert utils.psnr(a, b).item() == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert utils.psnr(b, b).item() == pytest.approx(100.0)
    img = torch.zeros(1, 3, 1, 2)
    img[0, 0] = torch.tensor([[200.0, 0.0]])  # one red pixel, one black
    rg, yb = np.array([200.0, 0]), np.array([100.0, 0])  # R-G and (R+G)/2-B, no abs
    expected = np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert utils.colorfulness(img).item() == pytest.approx(expected)
    assert utils.colorfulness(torch.full((1, 3, 4, 4), 77.0)).item() == 0


def test_pixel_accuracy_thresholds():
    real = torch.zeros(1, 3, 1, 4)
    fake = real.clone()
    fake[0, 0, 0, 1] = 2.4   # L off by 2 after rounding: inside 2%
    fake[0, 1, 0, 2] = 4.6   # a off by 5 after rounding: outside 2.2 x 2 = 4.4, inside 11
    fake[0, 2, 0, 3] = 12.0  # b off by 12: outside both
    assert utils.pixel_accuracy(fake, real, 2).item() == pytest.approx(0.5)
    assert utils.pixel_accuracy(fake, real, 5).item() == pytest.approx(0.75)


def test_checkpoint_round_trip_is_exact_and_atomic(tmp_path):
    state = {'w': torch.randn(5, 5), 'epoch': 3, 'nested': {'a': [1, 2.5, 'x']}}
    path = tmp_path / 'sub' / 'ckpt.pt'
    utils.save_checkpoint(path, state)
    back = utils.load_checkpoint(path)
    assert torch.equal(back['w'], state['w']) and back['nested'] == state['nested']
    assert [p.name for p in path.parent.iterdir()] == ['ckpt.pt']  # no temp files left behind

    def boom(f):
        f.write(b'half')
        raise RuntimeError('disk full')
    with pytest.raises(RuntimeError):
        utils.atomic_write(path, boom)
    assert torch.equal(utils.load_checkpoint(path)['w'], state['w'])  # the old file survives a failed write
    assert [p.name for p in path.parent.iterdir()] == ['ckpt.pt']


class Payload:
    """An arbitrary class: unpickling it would run code from the checkpoint's author."""


def test_load_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / 'evil.pt'
    torch.save({'obj': Payload()}, path)
    with pytest.raises(SystemExit, match='cannot load checkpoint'):
        utils.load_checkpoint(path)


def test_overrides_types_and_unknown_names():
    cfg = {'lr': 2e-4, 'epochs': 100, 'resume': True, 'device': 'auto'}
    got = utils.parse_overrides(['--lr=1', '--epochs=3', '--resume=false', '--device', 'cpu'], cfg)
    assert got == {'lr': 1.0, 'epochs': 3, 'resume': False, 'device': 'cpu'}
    assert isinstance(got['lr'], float)
    with pytest.raises(SystemExit, match=r'unknown option --lrr; valid options: --lr, --epochs, --resume, --device'):
        utils.parse_overrides(['--lrr=1'], cfg)
    with pytest.raises(SystemExit, match='not a valid int'):
        utils.parse_overrides(['--epochs=2.5'], cfg)
    with pytest.raises(SystemExit, match='unexpected argument'):
        utils.parse_overrides(['epochs=2'], cfg)
    assert utils.parse_overrides(['--resume'], cfg) == {'resume': True}


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    with pytest.raises(SystemExit, match='no CUDA device'):
        utils.resolve_device('cuda')
    assert utils.resolve_device('auto').type == 'cpu'


def test_image_grid_layout():
    cols = [torch.full((5, 3, 4, 4), v) for v in (0.0, 128.0, 255.0)]
    grid = utils.image_grid(cols, scale=2, groups=2, gap=1)
    assert grid.dtype == np.uint8 and grid.shape == (3 * 9 + 1, 2 * (3 * 9 + 2), 3)
    assert (grid[1:9, 1:9] == 0).all() and (grid[1:9, 10:18] == 128).all()


def test_lr_factor_is_pix2pix_linear_decay():
    assert [utils.lr_factor(e, 5, 0) for e in range(5)] == [1.0] * 5
    assert [utils.lr_factor(e, 6, 3) for e in range(6)] == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])
    assert utils.lr_factor(0, 1, 1) == 0.5


def test_best_epoch_is_the_lowest_mae_among_colourful_enough_epochs():
    # MAE rises with colour, as in a GAN: the rule takes the first epoch over the bar, not the lowest MAE overall
    rows = [(1, 10.8, 0.5), (2, 11.6, 0.75), (3, 12.0, 0.81), (4, 12.3, 0.85), (5, 11.9, 0.79)]
    history = [{'epoch': e, 'val_mae': m, 'val_colorfulness': 30 * r, 'val_colorfulness_real': 30.0} for e, m, r in rows]
    assert utils.best_epoch(history, 0.8) == 3
    assert utils.best_epoch(history, 0.0) == 1
    assert utils.best_epoch(history, 0.9) is None
    old = [{k: v for k, v in h.items() if k != 'val_colorfulness_real'} for h in history]  # logged before the ratio
    assert utils.best_epoch(old, 0.8) is None and utils.best_epoch(old, 0.0) == 1
