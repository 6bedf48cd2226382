"""Colour hints (Zhang et al. 2017, "Real-Time User-Guided Image Colorization with Learned Deep Priors",
arXiv 1705.02999): the generator's extra input channels, and simulated users that place them during training.

A hint map is [N,3,H,W]: hint_ab (network scale, ab / 110) where a hint is placed and 0 elsewhere, then hint_mask
(1 there, 0 elsewhere). No hints is all zeros: exactly the automatic case.
"""
import math

import torch


def sample_hints(ab, rng, p_none=0.5, p_geometric=1 / 8, max_hints=32, max_patch=9):
    """Simulated user hints for a batch of real colours: ab [B,2,H,W] (network scale) -> hints [B,3,H,W] (float32).

    Per image, drawn from `rng` (a torch.Generator on ab's device): no hints with probability p_none, else
    1 + Geometric(p_geometric) hints (mean 1/p, capped at max_hints), each revealing the mean ab of a square patch of
    side 1 to max_patch px (uniform) at a uniformly random place inside the image, painted over that patch (Zhang et al.
    2017, Sec. 3.3; they draw the count from a geometric distribution with p = 1/8 and patches of 1 to 9 px).
    Overlapping patches are averaged. Fully vectorized: a fixed max_hints slots per image, the unused ones masked."""
    B, _, H, W = ab.shape
    dev, K = ab.device, max_hints
    none = torch.rand(B, generator=rng, device=dev) < p_none
    u = torch.rand(B, generator=rng, device=dev).clamp_min(1e-12)
    count = (1 + torch.floor(torch.log(u) / math.log(1 - p_geometric))).clamp(max=K)
    count = torch.where(none, torch.zeros_like(count), count)
    side = torch.randint(1, min(max_patch, H, W) + 1, (B, K), generator=rng, device=dev)
    y0 = (torch.rand(B, K, generator=rng, device=dev) * (H - side + 1)).long()
    x0 = (torch.rand(B, K, generator=rng, device=dev) * (W - side + 1)).long()
    y1, x1 = y0 + side, x0 + side
    active = torch.arange(K, device=dev)[None] < count[:, None]  # [B,K]
    # patch means from an integral image (float64: exact enough for sums over a whole 128x128 image)
    S = torch.nn.functional.pad(ab.double().cumsum(2).cumsum(3), (1, 0, 1, 0)).flatten(2)  # [B,2,(H+1)(W+1)]

    def corner(y, x):
        return S.gather(2, (y * (W + 1) + x)[:, None].expand(-1, 2, -1))  # [B,2,K]
    mean = ((corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)) / (side * side)[:, None]).float()
    rows = ((torch.arange(H, device=dev) >= y0[..., None]) & (torch.arange(H, device=dev) < y1[..., None])
            & active[..., None]).float()  # [B,K,H]
    cols = ((torch.arange(W, device=dev) >= x0[..., None]) & (torch.arange(W, device=dev) < x1[..., None])).float()
    # paint: sum over hints of patch indicator x mean, as batched matrix products (no [B,K,H,W] intermediate)
    painted = torch.einsum('bkh,bck,bkw->bchw', rows, mean, cols)
    cover = torch.einsum('bkh,bkw->bhw', rows, cols)[:, None]  # [B,1,H,W]: how many patches cover each pixel
    mask = (cover > 0).float()
    return torch.cat([painted / cover.clamp_min(1), mask], 1)
