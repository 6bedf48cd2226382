"""The colour maths against scikit-image, the network scaling, luminance of photos and gamut mapping that keeps L."""
import numpy as np
import torch
from skimage import color as skcolor

from colorize_gan import color


def _rgb_batch(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((3, 3, 19, 11))
    x[0, :, 0, :8] = np.array([[0, 0, 0, 1, 1, 1, 1, 0.5], [0, 1, 0, 1, 0, 1, 1, 0.5], [0, 0, 1, 0, 1, 1, 0, 0.5]])
    x[0, :, 1, :3] = 0.003  # the linear part of the sRGB curve
    return x


def test_rgb_to_lab_matches_skimage():
    x = _rgb_batch()
    ours = color.rgb_to_lab(torch.tensor(x, dtype=torch.float32)).numpy()
    ref = skcolor.rgb2lab(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert np.abs(ours - ref).max() < 1e-3


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    lab = skcolor.rgb2lab(_rgb_batch(1).transpose(0, 2, 3, 1))
    lab[..., 1:] *= 1.6  # push some colours out of the sRGB gamut so clipping is exercised
    ours = color.lab_to_rgb(torch.tensor(lab.transpose(0, 3, 1, 2), dtype=torch.float32)).numpy()
    ref = skcolor.lab2rgb(lab).transpose(0, 3, 1, 2)
    assert np.abs(ours - ref).max() < 1e-4


def test_lab_round_trip_and_network_scaling():
    x = torch.rand(4, 3, 16, 16)
    lab = color.rgb_to_lab(x)
    assert torch.allclose(color.lab_to_rgb(lab), x, atol=1e-4)
    L, ab = color.normalize_lab(lab)
    assert L.shape == (4, 1, 16, 16) and ab.shape == (4, 2, 16, 16)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    assert torch.allclose(L, lab[:, :1] / 50 - 1) and torch.allclose(ab, lab[:, 1:] / 110)  # pix2pix's scaling
    assert torch.allclose(color.denormalize_lab(L, ab), lab, atol=1e-4)
    rgb8 = (x * 255).round().to(torch.uint8)
    L8, ab8 = color.rgb_uint8_to_network(rgb8)
    assert torch.allclose(color.colorized_rgb(L8, ab8), rgb8.float(), atol=0.05)


def test_luminance_of_photos_is_lab_L():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    want = skcolor.rgb2lab(rgb)[..., 0]
    assert np.abs(color.luminance(rgb).numpy() - want).max() < 1e-3  # uint8 through the lookup tables
    assert np.abs(color.luminance(rgb.astype(np.float32) / 255).numpy() - want).max() < 1e-3  # float path
    gray = rgb[..., 0]
    assert np.abs(color.luminance(gray).numpy() - skcolor.rgb2lab(np.dstack([gray] * 3))[..., 0]).max() < 1e-3
    assert color.is_gray(np.dstack([gray] * 3)) and not color.is_gray(rgb) and color.is_gray(gray)


def test_gamut_mapping_keeps_L_and_only_lowers_chroma():
    L = torch.linspace(2, 98, 50).view(5, 10)
    ab = torch.stack([torch.full((5, 10), 90.0), torch.full((5, 10), -80.0)])  # far outside sRGB for most L
    rgb = color.lab_to_rgb_keep_L(L, ab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    lab = color.rgb_to_lab(rgb[None])[0]
    assert (lab[0] - L).abs().max() < 0.5  # L kept (clipping R, G, B separately would move it by tens of units)
    chroma_in, chroma_out = ab.norm(dim=0), lab[1:].norm(dim=0)
    assert (chroma_out <= chroma_in + 0.5).all() and chroma_out.mean() > 5
