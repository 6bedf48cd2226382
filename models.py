"""The networks: a U-Net generator L -> ab and a conditional PatchGAN discriminator on cat(L, ab)."""
import json
import os
from contextlib import nullcontext

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.abspath(__file__))
PRETRAINED = os.path.join(REPO, 'pretrained', 'generator.safetensors')


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
             autocast=nullcontext):
    """One D step and one G step of the conditional GAN on a batch: L [B,1,H,W], ab_real [B,2,H,W].

    lambda_adv = 0 skips D entirely (L1-only U-Net). Returns the detached losses [loss_D, loss_G_adv, loss_G_l1]."""
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
            loss_D = 0.5 * (F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, label_smoothing))
                            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        D.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
    # G step: fool D, and stay near the real colours
    with autocast():
        loss_G_l1 = (ab_fake.float() - ab_real.float()).abs().mean()
        if lambda_adv > 0:
            logits = D(L, ab_fake)
            loss_G_adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        loss_G = lambda_adv * loss_G_adv + lambda_l1 * loss_G_l1
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    return torch.stack([loss_D.detach().float(), loss_G_adv.detach().float(), loss_G_l1.detach()])


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


def generator_gflop(G, image_size=32):
    """Forward cost of G per image in GFLOP (2 per multiply-add), counted from its conv layers."""
    flop = 0
    hooks = []

    def count(m, inp, out):
        nonlocal flop
        if isinstance(m, nn.ConvTranspose2d):  # every input pixel scatters a kernel into the output
            flop += 2 * inp[0][0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        else:
            flop += 2 * out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    for m in G.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            hooks.append(m.register_forward_hook(count))
    was_training = G.training
    G.eval()
    with torch.no_grad():
        G(torch.zeros(1, 1, image_size, image_size, device=next(G.parameters()).device))
    G.train(was_training)
    for h in hooks:
        h.remove()
    return flop / 1e9


# ----------------------------------------------------------------------------------------------
# Loading and shipping generators

def export_generator(path, G, extra=None):
    """Write G's weights as fp16 safetensors with its architecture config (and `extra` info) in the metadata."""
    from safetensors.torch import save
    from utils import atomic_write
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in G.state_dict().items()}
    meta = {'config': json.dumps(G.config), 'info': json.dumps(extra or {})}
    blob = save(tensors, metadata=meta)
    atomic_write(path, lambda f: f.write(blob))


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


def checkpoint_file(path):
    """A train.py checkpoint folder stands for its latest.pt; any other path for itself."""
    return os.path.join(path, 'latest.pt') if os.path.isdir(path) else path


def training_history(path):
    """The per-epoch training record (train.py's history list) of a checkpoint, its folder or an export; None if absent."""
    from utils import load_checkpoint
    path = checkpoint_file(path)
    if path.endswith('.safetensors'):
        from safetensors import safe_open
        with safe_open(path, framework='pt') as f:
            return json.loads(f.metadata().get('info', '{}')).get('history')
    return load_checkpoint(path).get('history')


def load_generator(path, device='cpu', fold=True):
    """Rebuild a Generator from a train.py checkpoint (its EMA weights when present), its folder, or a .safetensors export.

    Returns (G in eval mode on `device`, a short description of what was loaded). With fold=True (for
    inference) BatchNorm is folded into the convolutions; pass fold=False to get the trainable structure."""
    from utils import load_checkpoint
    path = checkpoint_file(path)
    if path.endswith('.safetensors'):
        from safetensors import safe_open
        if not os.path.exists(path):
            raise SystemExit(f"error: checkpoint '{path}' does not exist; pass --checkpoint=PATH to a generator checkpoint")
        try:
            with safe_open(path, framework='pt') as f:
                config = json.loads(f.metadata()['config'])
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:
            raise SystemExit(f"error: cannot read '{path}' as a generator export ({type(e).__name__}); "
                             "pass a .safetensors file written by export_generator or a train.py checkpoint")
        what = 'weights'
    else:
        ckpt = load_checkpoint(path)
        if not isinstance(ckpt, dict) or 'G' not in ckpt or 'model_config' not in ckpt:
            raise SystemExit(f"error: '{path}' is not a generator checkpoint from train.py "
                             "(its discriminator checkpoint, perhaps?); pass <out_dir>/<dataset>_train_generator/latest.pt")
        config = ckpt['model_config']
        use_ema = ckpt.get('G_ema') is not None
        state = ckpt['G_ema'] if use_ema else ckpt['G']
        what = f"{'EMA ' if use_ema else ''}weights after epoch {ckpt['epoch']}"
    G = Generator(**config)
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    G = G.to(device, memory_format=torch.channels_last).eval()  # oneDNN and cuDNN both run faster in NHWC
    if fold:
        fold_batchnorm(G)
    return G, f"{path} ({what}, width {config['width']}, {config['image_size']}px)"
