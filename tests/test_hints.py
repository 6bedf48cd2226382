"""Simulated users: the hints train.py feeds the generator (Zhang et al. 2017)."""
import pytest
import torch

from hints import sample_hints


def test_each_hint_reveals_the_mean_colour_of_its_square_patch():
    ab = torch.randn(300, 2, 16, 20)
    hints = sample_hints(ab, torch.Generator().manual_seed(1), p_none=0, max_hints=1)
    sides = set()
    for i in range(len(ab)):
        ys, xs = torch.nonzero(hints[i, 2], as_tuple=True)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        assert len(ys) == (y1 - y0) * (x1 - x0) and y1 - y0 == x1 - x0  # one filled square
        sides.add(int(y1 - y0))
        patch_mean = ab[i, :, y0:y1, x0:x1].mean((1, 2))
        assert torch.allclose(hints[i, :2, y0:y1, x0:x1], patch_mean.view(2, 1, 1).expand(-1, y1 - y0, x1 - x0),
                              atol=1e-5)
        assert (hints[i, :2][:, hints[i, 2] == 0] == 0).all()  # hint_ab is 0 wherever there is no hint
    assert sides == set(range(1, 10))  # patches of 1 to 9 px


def test_how_many_hints_and_reproducibility():
    ab = torch.rand(4000, 2, 12, 12) - 0.5
    hints = sample_hints(ab, torch.Generator().manual_seed(0), p_none=0.5, max_hints=32, max_patch=1)
    count = hints[:, 2].flatten(1).sum(1)  # 1-px patches: pixels = hints (less the few that land on each other)
    assert (count == 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    some = count[count > 0]
    assert some.mean().item() == pytest.approx(8.0, rel=0.1)  # 1 + Geometric(1/8): mean 8
    assert some.max() <= 32
    again = sample_hints(ab, torch.Generator().manual_seed(0), p_none=0.5, max_hints=32, max_patch=1)
    assert torch.equal(hints, again)  # the same generator state, the same hints: resume stays exact
