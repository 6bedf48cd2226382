"""The networks (a U-Net generator L -> ab, a conditional PatchGAN on cat(L, ab)), their init and the GAN step."""
from contextlib import nullcontext

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


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

    def __init__(self, width=64, image_size=32):
        super().__init__()
        self.config = {'width': width, 'image_size': image_size}
        n_down = max(1, (image_size // 2).bit_length() - 1)  # 32 -> 4 stride-2 blocks, bottleneck 2x2
        widths = [width * min(2 ** i, 8) for i in range(n_down + 1)]  # 32x32: 64, 128, 256, 512, 512
        self.down = nn.ModuleList([_down(1, widths[0], stride=1, norm=False)])
        self.down.extend(_down(widths[i], widths[i + 1]) for i in range(n_down))
        self.up = nn.ModuleList()
        c_in = widths[-1]
        for i, c_out in enumerate(reversed(widths[:-1])):  # 512, 256, 128, 64
            self.up.append(_up(c_in, c_out, dropout=0.5 if i < 2 else 0.0))
            c_in = 2 * c_out  # decoder output concatenated with its skip
        self.out = nn.Sequential(nn.Conv2d(c_in, 2, 1), nn.Tanh())
        init_weights(self)

    def forward(self, L):
        skips = []
        x = L
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not concatenated with itself
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], 1)
        return self.out(x)


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
             autocast=nullcontext, D_frozen=None):
    """One D step and one G step of the conditional GAN on a batch: L [B,1,H,W], ab_real [B,2,H,W].

    lambda_adv = 0 skips D entirely (L1-only U-Net). Returns the detached losses [loss_D, loss_G_adv, loss_G_l1].
    Under DistributedDataParallel, pass the wrapped G and D and, as D_frozen, D's own module: G's step runs
    through it with D's weights frozen, so no gradient reaches D's parameters and D's reducer, which finished
    with D's backward, is never asked to reduce again. D runs twice in its step (real, then generated pairs) but
    has one backward, which DDP allows; every parameter of G and D gets a gradient in its own backward, so no
    unused-parameter search is needed."""
    with autocast():
        ab_fake = G(L)
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
    (nn.SyncBatchNorm does the same on GPUs only; this one also runs on CPU processes with gloo.)"""

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
    """For inference only: fold every BatchNorm's running statistics into the convolution before it, in place.

    The outputs stay the same (to float rounding) and each block makes one pass over memory less."""
    for block in list(G.down) + list(G.up):
        for i in range(1, len(block)):
            conv, bn = block[i - 1], block[i]
            if not (isinstance(bn, nn.BatchNorm2d) and isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d))):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # [C_out]
            out_dim = 1 if isinstance(conv, nn.ConvTranspose2d) else 0  # where C_out sits in the weight
            shape = [1, 1, 1, 1]
            shape[out_dim] = -1
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.bias)
            with torch.no_grad():
                conv.weight.mul_(scale.view(shape))
                conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
            block[i] = nn.Identity()
    return G
