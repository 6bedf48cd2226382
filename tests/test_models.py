"""The networks, and the GAN step and EMA checked against hand-written references."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from colorize_gan import models


@pytest.mark.parametrize('width,size', [(8, 32), (4, 64), (8, 16)])
def test_generator_and_discriminator_shapes_and_ranges(width, size):
    torch.manual_seed(0)
    G, D = models.Generator(width, size), models.Discriminator(width)
    L = torch.rand(3, 1, size, size) * 2 - 1
    ab = G(L * 50)  # large inputs drive tanh to its limits
    assert ab.shape == (3, 2, size, size)
    assert ab.abs().max() <= 1
    logits = D(L, ab)
    assert logits.shape == (3, 1, size // 8, size // 8)


def test_paper_generator_widths_and_dropout():
    G = models.Generator(64, 32)
    down = [next(m for m in block if isinstance(m, nn.Conv2d)) for block in G.down]
    assert [(c.out_channels, c.stride[0]) for c in down] == [(64, 1), (128, 2), (256, 2), (512, 2), (512, 2)]
    assert [next(m for m in b if isinstance(m, nn.ConvTranspose2d)).out_channels for b in G.up] == [512, 256, 128, 64]
    assert [any(isinstance(m, nn.Dropout) for m in b) for b in G.up] == [True, True, False, False]
    assert isinstance(G.out[0], nn.Conv2d) and G.out[0].kernel_size == (1, 1) and isinstance(G.out[1], nn.Tanh)


def test_weights_start_from_normal_0_002():
    torch.manual_seed(0)
    G = models.Generator(64, 32)
    w = G.up[1][0].weight  # 1024x256x4x4: plenty of samples
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3


def _setup(seed=0, lr=2e-4):
    torch.manual_seed(seed)
    G, D = models.Generator(8, 16), models.Discriminator(8)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    L = torch.rand(6, 1, 16, 16) * 2 - 1
    ab_real = (torch.rand(6, 2, 16, 16) - 0.5) * 0.6
    return G, D, opt_G, opt_D, L, ab_real


def _clone(G, D, lr=2e-4):
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    return (G2, D2, torch.optim.Adam(G2.parameters(), lr=lr, betas=(0.5, 0.999)),
            torch.optim.Adam(D2.parameters(), lr=lr, betas=(0.5, 0.999)))


def _same(a, b):
    pairs = zip(a.state_dict().values(), b.state_dict().values())
    return all(torch.allclose(x, y, rtol=0, atol=1e-7) for x, y in pairs)


def test_gan_step_is_the_papers_loss_step_for_step():
    # a hand-written reference of one pix2pix step: D on real (target 0.9) and detached fake pairs, then G on
    # adversarial + 100 x L1 through the updated D. gan_step must land on the same weights.
    G, D, opt_G, opt_D, L, ab_real = _setup()
    G_ref, D_ref, opt_G_ref, opt_D_ref = _clone(G, D)
    torch.manual_seed(1)  # the same dropout masks in both
    losses = models.gan_step(G, D, opt_G, opt_D, L, ab_real, lambda_l1=100.0, lambda_adv=1.0, label_smoothing=0.9)
    torch.manual_seed(1)
    ab_fake = G_ref(L)
    logits_real, logits_fake = D_ref(L, ab_real), D_ref(L, ab_fake.detach())
    loss_D = 0.5 * (F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, 0.9))
                    + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
    opt_D_ref.zero_grad()
    loss_D.backward()
    opt_D_ref.step()
    grads_D = [p.grad.clone() for p in D_ref.parameters()]
    logits = D_ref(L, ab_fake)
    loss_G_adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    loss_G_l1 = (ab_fake - ab_real).abs().mean()
    opt_G_ref.zero_grad()
    (loss_G_adv + 100.0 * loss_G_l1).backward()
    opt_G_ref.step()
    assert _same(D, D_ref) and _same(G, G_ref)
    assert losses.tolist() == pytest.approx([loss_D.item(), loss_G_adv.item(), loss_G_l1.item()], rel=1e-5)
    # G's step ran through a frozen D: D's gradients are still those of its own loss
    assert all(torch.allclose(p.grad, g, rtol=0, atol=1e-7) for p, g in zip(D.parameters(), grads_D))


def test_gan_step_moves_D_and_G_in_the_expected_directions():
    G, D, opt_G, opt_D, L, ab_real = _setup(lr=1e-4)
    G.eval()  # no dropout, BatchNorm from running statistics: the before/after losses see the same function
    with torch.no_grad():
        ab_before = G(L)
        real_before, fake_before = D(L, ab_real).mean(), D(L, ab_before).mean()
    G.train()
    models.gan_step(G, D, opt_G, opt_D, L, ab_real, lambda_l1=100.0, lambda_adv=1.0)
    G.eval()
    with torch.no_grad():
        # D now scores the real pairs higher and the old fakes lower
        assert D(L, ab_real).mean() > real_before and D(L, ab_before).mean() < fake_before
        ab_after = G(L)
        # G's new output is closer to the real colours, and D (as it is now) finds it more real than the old one
        assert (ab_after - ab_real).abs().mean() < (ab_before - ab_real).abs().mean()
        assert D(L, ab_after).mean() > D(L, ab_before).mean()


def test_gan_step_without_adversarial_loss_is_exactly_an_l1_step_and_leaves_D_alone():
    G, D, opt_G, opt_D, L, ab_real = _setup()
    G_ref, D_ref, opt_G_ref, _ = _clone(G, D)
    torch.manual_seed(1)
    losses = models.gan_step(G, D, opt_G, opt_D, L, ab_real, lambda_l1=100.0, lambda_adv=0.0)
    torch.manual_seed(1)
    loss = 100.0 * (G_ref(L) - ab_real).abs().mean()
    opt_G_ref.zero_grad()
    loss.backward()
    opt_G_ref.step()
    assert _same(G, G_ref)
    assert _same(D, D_ref) and not opt_D.state  # D never stepped
    assert losses[0] == 0 and losses[1] == 0 and losses[2] == pytest.approx(loss.item() / 100, rel=1e-5)


def test_update_ema_moves_weights_and_batchnorm_statistics_by_the_decay():
    torch.manual_seed(0)
    G, G_ema = models.Generator(8, 16), models.Generator(8, 16)
    G(torch.randn(4, 1, 16, 16))  # G's BatchNorm statistics now differ from G_ema's
    before, live = copy.deepcopy(G_ema.state_dict()), G.state_dict()
    models.update_ema(G_ema, G, 0.9)
    after = G_ema.state_dict()
    bn_stats = [k for k in after if k.endswith(('running_mean', 'running_var'))]
    assert bn_stats
    for k, v in after.items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.9 * before[k] + 0.1 * live[k], atol=1e-7), k
            if not torch.equal(before[k], live[k]):
                assert not torch.equal(v, before[k]), f'{k} did not move'
        else:
            assert torch.equal(v, before[k])  # counters are not averaged


def test_fold_batchnorm_keeps_the_outputs():
    torch.manual_seed(0)
    G = models.Generator(8, 32)
    G(torch.randn(8, 1, 32, 32))
    G.eval()
    L = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        want = G(L)
        folded = models.fold_batchnorm(copy.deepcopy(G))
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert (folded(L) - want).abs().max() < 1e-5
