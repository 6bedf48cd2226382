"""The metrics by hand and against scikit-image, and batched evaluation."""
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from colorize_gan import evaluation, metrics
from colorize_gan.dataset import ImageSplit


def test_ssim_matches_skimage_gaussian_variant():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 3, 32, 32)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.float32)
    ours = metrics.ssim(torch.tensor(a), torch.tensor(b)).numpy()
    ref = [structural_similarity(a[i].transpose(1, 2, 0), b[i].transpose(1, 2, 0), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255, channel_axis=2) for i in range(2)]
    assert np.abs(ours - np.array(ref)).max() < 1e-4
    assert metrics.ssim(torch.tensor(a), torch.tensor(a)).allclose(torch.ones(2))


def test_mae_psnr_colorfulness_by_hand():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 10.0)
    assert metrics.mae_rgb(a, b).item() == pytest.approx(10.0)
    assert metrics.psnr(a, b).item() == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert metrics.psnr(b, b).item() == pytest.approx(100.0)
    img = torch.zeros(1, 3, 1, 2)
    img[0, 0] = torch.tensor([[200.0, 0.0]])  # one red pixel, one black
    rg, yb = np.array([200.0, 0]), np.array([100.0, 0])  # R-G and (R+G)/2-B, no abs
    expected = np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    assert metrics.colorfulness(img).item() == pytest.approx(expected)
    assert metrics.colorfulness(torch.full((1, 3, 4, 4), 77.0)).item() == 0


def test_pixel_accuracy_thresholds():
    real = torch.zeros(1, 3, 1, 4)
    fake = real.clone()
    fake[0, 0, 0, 1] = 2.4   # L off by 2 after rounding: inside 2%
    fake[0, 1, 0, 2] = 4.6   # a off by 5 after rounding: outside 2.2 x 2 = 4.4, inside 11
    fake[0, 2, 0, 3] = 12.0  # b off by 12: outside both
    assert metrics.pixel_accuracy(fake, real, 2).item() == pytest.approx(0.5)
    assert metrics.pixel_accuracy(fake, real, 5).item() == pytest.approx(0.75)


class _Constant(torch.nn.Module):
    """A 'generator' that outputs a fixed ab everywhere."""

    def __init__(self, ab):
        super().__init__()
        self.ab = torch.nn.Parameter(torch.tensor(ab).view(1, 2, 1, 1))

    def forward(self, L):
        return self.ab.expand(len(L), -1, *L.shape[2:])


def test_evaluate_averages_per_image_metrics_over_batches():
    rgb = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (7, 3, 16, 16), dtype=np.uint8))
    split = ImageSplit(rgb, torch.arange(7), 'x', 0, 0)
    gray_model, gray, real = evaluation.evaluate(_Constant([0.0, 0.0]), split, batch_size=3)
    assert gray_model == pytest.approx(gray)  # a model that outputs ab = 0 is the grayscale baseline
    assert gray['colorfulness'] < 0.01 and real == pytest.approx(metrics.colorfulness(rgb).mean().item(), rel=1e-5)
    tinted = evaluation.evaluate(_Constant([0.3, 0.2]), split, batch_size=2, baseline=False)
    assert tinted[1] is None and tinted[0]['colorfulness'] > 10 and tinted[0]['mae'] != pytest.approx(gray['mae'])
    assert evaluation.evaluate(_Constant([0.3, 0.2]), split, batch_size=7)[0] == pytest.approx(tinted[0])


def test_colorfulness_ratios_need_the_real_images_value():
    history = [{'val_colorfulness': c, 'val_colorfulness_real': 30.0} for c in (15.0, 24.0)]
    assert metrics.colorfulness_ratios(history) == [0.5, 0.8]
    assert metrics.colorfulness_ratios([{'val_colorfulness': 15.0}]) is None


def test_ciede2000_matches_scikit_image_and_sharmas_published_pairs():
    # Sharma, Wu and Dalal (2005), Table 1: pairs 1, 7 and 17 and their published dE00
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, 0, 0), (50, -1, 2), 2.3669),
             ((50, 2.5, 0), (56, -27, -3), 31.9030)]
    lab1 = torch.tensor([p[0] for p in pairs], dtype=torch.float32).T.reshape(1, 3, 1, len(pairs))
    lab2 = torch.tensor([p[1] for p in pairs], dtype=torch.float32).T.reshape(1, 3, 1, len(pairs))
    for i, (_, _, want) in enumerate(pairs):
        assert metrics.ciede2000(lab1[..., i:i + 1], lab2[..., i:i + 1]).item() == pytest.approx(want, abs=1e-3)
    # random Lab images: the per-image mean over pixels of scikit-image's own deltaE_ciede2000
    from skimage.color import deltaE_ciede2000
    g = torch.Generator().manual_seed(0)
    a = torch.rand(5, 3, 6, 7, generator=g) * torch.tensor([100, 200, 200]).view(1, 3, 1, 1) - \
        torch.tensor([0, 100, 100]).view(1, 3, 1, 1)
    b = a + torch.randn(5, 3, 6, 7, generator=g) * 8
    want = [deltaE_ciede2000(x.permute(1, 2, 0).double().numpy(), y.permute(1, 2, 0).double().numpy()).mean()
            for x, y in zip(b, a)]
    assert metrics.ciede2000(a, b).tolist() == pytest.approx(want, rel=1e-5)
