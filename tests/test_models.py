"""Network shapes, ranges, initialization, cost count and save/load round trips."""
import pytest
import torch
import torch.nn as nn

import models
import utils


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


def test_generator_gflop_matches_hand_count():
    # 2 FLOP per multiply-add; stride-2 convs/transposed convs with 4x4 kernels, paper width, 32x32
    by_hand = (2 * 1024 * 64 * 1 * 16 + 2 * 256 * 128 * 64 * 16 + 2 * 64 * 256 * 128 * 16 + 2 * 16 * 512 * 256 * 16
               + 2 * 4 * 512 * 512 * 16  # encoder down to 2x2
               + 2 * 4 * 512 * 512 * 16 + 2 * 16 * 1024 * 256 * 16 + 2 * 64 * 512 * 128 * 16
               + 2 * 256 * 256 * 64 * 16  # decoder: every input pixel scatters a 4x4 kernel
               + 2 * 1024 * 128 * 2)  # the 1x1 output convolution
    assert models.generator_gflop(models.Generator(64, 32)) == pytest.approx(by_hand / 1e9, rel=1e-9)


def test_checkpoint_and_export_round_trips_give_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    G = models.Generator(8, 32)
    G(torch.randn(8, 1, 32, 32))  # move BatchNorm statistics off their defaults
    G = G.to(memory_format=torch.channels_last).eval()  # the layout load_generator returns, so numerics match
    L = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        want = G(L)
    utils.save_checkpoint(tmp_path / 'g' / 'latest.pt', {'G': G.state_dict(), 'G_ema': None, 'epoch': 1,
                                                         'model_config': G.config})
    G2, what = models.load_generator(str(tmp_path / 'g'), fold=False)
    assert 'after epoch 1' in what and 'width 8' in what
    with torch.no_grad():
        assert torch.equal(G2(L), want)
    G_folded, _ = models.load_generator(str(tmp_path / 'g'))  # BatchNorm folded into the convolutions
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in G_folded.modules())
    with torch.no_grad():
        assert (G_folded(L) - want).abs().max() < 1e-5
    models.export_generator(str(tmp_path / 'g.safetensors'), G, {'epochs': 1})
    G3, _ = models.load_generator(str(tmp_path / 'g.safetensors'))
    assert G3.config == G.config
    with torch.no_grad():
        assert (G3(L) - want).abs().max() < 5e-3  # fp16 storage


def test_load_generator_rejects_wrong_files(tmp_path):
    with pytest.raises(SystemExit, match='does not exist'):
        models.load_generator(str(tmp_path / 'nope.pt'))
    (tmp_path / 'junk.pt').write_text('not a checkpoint')
    with pytest.raises(SystemExit, match='cannot load checkpoint'):
        models.load_generator(str(tmp_path / 'junk.pt'))
    utils.save_checkpoint(tmp_path / 'd.pt', {'D': {}, 'epoch': 1})
    with pytest.raises(SystemExit, match='not a generator checkpoint'):
        models.load_generator(str(tmp_path / 'd.pt'))
