"""Train the conditional-GAN colorizer (Nazeri, Ng, Ebrahimi 2018): a U-Net maps L to ab, a PatchGAN judges cat(L, ab).

    python3 train.py                                   # CIFAR-10 via torchvision, 100 epochs
    python3 train.py --data_dir=../shared/data/cifar10 --width=32 --epochs=10

Any setting below can be overridden as --name=value. Rerunning the same command resumes from the last checkpoint.
"""
import copy
import json
import os
import sys
import time

import torch
from tqdm import tqdm

from checkpoint import atomic_write, best_epoch, load_generator, resume_training_state, run_files, save_training_state
from color import colorized_rgb, rgb_uint8_to_network
from dataset import load_train_val
from metrics import colorfulness, evaluate, mae_rgb
from models import Discriminator, Generator, gan_step, update_ema
from plots import plot_curves, sample_grid, save_png
from utils import autocast_for, configure, resolve_device

# -----------------------------------------------------------------------------
# data
data_dir = 'data'  # image folder with train/ and test/ subfolders; 'data' = torchvision CIFAR-10, downloaded there
image_size = 32  # px; images are center-cropped and resized to this
train_limit = 0  # use this many training images (a fixed random subset), 0 = all
val_size = 1000  # training images held out (never trained on) for the per-epoch validation metrics and sample grid
flip = True  # random horizontal flips, applied on the device
# model
width = 64  # base channel width of G and D; 64 is the paper's
# optimization
epochs = 100
batch_size = 128
lr = 2e-4  # Adam learning rate of G
lr_d = 2e-4  # Adam learning rate of D
lr_decay_epochs = 0  # pix2pix: both learning rates fall linearly towards 0 over the last this-many epochs
beta1 = 0.5
beta2 = 0.999
lambda_l1 = 100.0  # weight of the L1 loss on ab against the adversarial loss
lambda_adv = 1.0  # weight of the adversarial loss; 0 trains the L1-only U-Net baseline (no D at all)
label_smoothing = 0.9  # D's target for real pairs (one-sided: fakes stay at 0)
l1_warmup_epochs = 0  # epochs of L1-only training before the adversarial loss starts
ema_decay = 0.999  # per-step decay of the EMA generator used for validation and sampling, 0 = off
# (it ramps up as (1+step)/(10+step): 0.999 holds only after ~9,000 steps, 24 CIFAR-10 epochs)
# system
device = 'auto'  # auto | cpu | cuda
torch_compile = False  # torch.compile the models (CUDA only; slow first epoch)
seed = 1337
out_dir = '.'  # checkpoints go to <out_dir>/<dataset>_train_{generator,discriminator}/, figures to <out_dir>/images/
resume = True  # continue from the checkpoint in out_dir if there is one
init_from = ''  # fresh runs only: start G and its EMA from these weights (e.g. pretrained/generator.safetensors)
select_color = 0.8  # best.pt = lowest val MAE among epochs with val colorfulness >= this x the real images'; 0: any
keep_snapshots = False  # also keep each epoch's G and EMA G as epochNNN.pt (no optimizer; 133 MB at width 64)
# -----------------------------------------------------------------------------
config = configure(globals(), sys.argv[1:])
for _name in ('epochs', 'batch_size', 'width', 'image_size'):
    if config[_name] < 1:
        sys.exit(f"error: --{_name}={config[_name]} must be at least 1")
if image_size < 4 or image_size & (image_size - 1):
    sys.exit(f"error: --image_size={image_size} must be a power of two >= 4 (the U-Net halves it down to 2x2)")
if not 0 <= lr_decay_epochs <= epochs:
    sys.exit(f"error: --lr_decay_epochs={lr_decay_epochs} must be between 0 and --epochs={epochs}")
if select_color < 0:
    sys.exit(f"error: --select_color={select_color} must be >= 0 (a fraction of the real images' colorfulness)")
if not 0 <= ema_decay < 1:
    sys.exit(f"error: --ema_decay={ema_decay} must be in [0, 1); 0 turns the EMA generator off")

dev = resolve_device(device)
cuda = dev.type == 'cuda'
torch.manual_seed(seed)
if cuda:
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
autocast = autocast_for(dev)
memory_format = torch.channels_last  # faster convolutions with cuDNN and with oneDNN on the CPU at paper width

# -----------------------------------------------------------------------------
# data: whole splits as uint8 RGB on the training device; batches are index slices, turned into Lab there
# validation comes from held-out training images, so choosing a schedule by it never looks at the test split
train, val = load_train_val(data_dir, image_size, val_size, train_limit)
train, val = train.to(dev), val.to(dev)
name = train.name
n_train = len(train)
if batch_size > n_train:
    print(f"note: batch_size {batch_size} is more than the {n_train} training images; using {n_train}")
    batch_size = config['batch_size'] = n_train  # the checkpoint records the batch size actually used
steps_per_epoch = n_train // batch_size  # drop the ragged last batch: tiny batches upset BatchNorm
print(f"data: {n_train} training images ({train.dropped_gray} grayscale dropped, {train.skipped} unreadable skipped), "
      f"{len(val)} held-out training images for validation, {image_size}px, {name}")

# -----------------------------------------------------------------------------
# models and optimizers
G = Generator(width, image_size).to(dev, memory_format=memory_format)
D = Discriminator(width).to(dev, memory_format=memory_format)
G_ema = copy.deepcopy(G).requires_grad_(False) if ema_decay > 0 else None
opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=(beta1, beta2))
opt_D = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(beta1, beta2))
# the compiled modules share their parameters with G and D; without torch_compile they are G and D themselves
G_compiled, D_compiled = (torch.compile(G), torch.compile(D)) if torch_compile and cuda else (G, D)
if torch_compile and not cuda:
    print("note: torch_compile=True only applies on CUDA; training uncompiled on CPU")
data_rng = torch.Generator(device=dev).manual_seed(seed)  # permutations and flips

files = run_files(out_dir, name)
images_dir = os.path.join(out_dir, 'images')
start_epoch, step, elapsed_s, history = 0, 0, 0.0, []
ckpt = resume_training_state(files, G, G_ema, D, opt_G, opt_D, lambda_adv > 0) if resume else None
if ckpt is not None:
    start_epoch, step, elapsed_s, history = ckpt['epoch'], ckpt['step'], ckpt['elapsed_s'], ckpt['history']
    torch.set_rng_state(ckpt['rng']['torch'])
    data_rng.set_state(ckpt['rng']['data'])
    if cuda and 'cuda' in ckpt['rng']:
        torch.cuda.set_rng_state(ckpt['rng']['cuda'])
    print(f"resumed from {files['G']} at epoch {start_epoch}, step {step}")
elif os.path.exists(files['G']):
    print(f"resume=False: starting over; {files['G']} will be overwritten")
if init_from and start_epoch == 0:  # fine-tuning: a resumed run already has its own weights
    G_init, description = load_generator(init_from, 'cpu', fold=False)
    if G_init.config != G.config:
        sys.exit(f"error: --init_from={init_from} holds a model with {G_init.config} but this run asks for {G.config}; "
                 "pass the same --width/--image_size")
    G.load_state_dict(G_init.state_dict())
    if G_ema is not None:
        G_ema.load_state_dict(G_init.state_dict())
    print(f"G starts from {description}")
n_params = sum(p.numel() for p in G.parameters()) / 1e6
print(f"G: {n_params:.2f}M parameters, width {width}; D: {sum(p.numel() for p in D.parameters()) / 1e6:.2f}M; "
      f"device {dev}")
atomic_write(os.path.join(out_dir, 'config.json'), lambda f: f.write(json.dumps(config, indent=1) + '\n'), mode='w')

# -----------------------------------------------------------------------------
# helpers that need the globals above


def lr_factor(epoch):
    """pix2pix's schedule: 1 for the first epochs - lr_decay_epochs epochs (0-based `epoch`), then linearly down to
    1/(lr_decay_epochs + 1) in the last one, so no epoch trains at a learning rate of exactly 0."""
    return 1.0 - max(0, epoch + 1 - (epochs - lr_decay_epochs)) / (lr_decay_epochs + 1)


def validate(model, grid=False):
    """Validation metrics of `model`, and a sample grid of its colorizations if asked."""
    model.eval()
    metrics = evaluate(model, val, 500, autocast, baseline=False)[0]
    samples = sample_grid([model], val, autocast=autocast) if grid else None
    model.train()
    return metrics, samples


# val never changes: its grayscale MAE and real colorfulness are measured once
val_L = rgb_uint8_to_network(val.rgb)[0]
val_mae_gray = mae_rgb(colorized_rgb(val_L, torch.zeros_like(val_L).expand(-1, 2, -1, -1)), val.rgb).mean().item()
val_colorfulness_real = colorfulness(val.rgb).mean().item()

# -----------------------------------------------------------------------------
# training loop
for epoch in range(start_epoch, epochs):
    t0 = time.time()
    adversarial = lambda_adv > 0 and epoch >= l1_warmup_epochs
    # set every epoch from the config, so a resumed run (or one given a new schedule) follows it exactly
    for opt, base_lr in ((opt_G, lr), (opt_D, lr_d)):
        for group in opt.param_groups:
            group['lr'] = base_lr * lr_factor(epoch)
    perm = torch.randperm(n_train, device=dev, generator=data_rng)
    flips = torch.rand(n_train, device=dev, generator=data_rng) < 0.5
    sums = torch.zeros(3, device=dev)  # loss_D, loss_G_adv, loss_G_l1, summed on the device to avoid syncs
    bar = tqdm(range(steps_per_epoch), desc=f'epoch {epoch + 1}/{epochs}', leave=False, mininterval=2,
               disable=None, dynamic_ncols=True)
    for i in bar:
        idx = perm[i * batch_size:(i + 1) * batch_size]
        L, ab_real = train.batch(idx, flips[idx] if flip else None, memory_format)  # [B,1,H,W], [B,2,H,W]
        losses = gan_step(G_compiled, D_compiled, opt_G, opt_D, L, ab_real, lambda_l1,
                          lambda_adv if adversarial else 0.0, label_smoothing, autocast)
        if G_ema is not None:
            update_ema(G_ema, G, min(ema_decay, (1 + step) / (10 + step)))  # short memory early, when G moves fast
        step += 1
        sums += losses
        if bar.n % 20 == 0 and not bar.disable:
            d, g, l1 = (sums / (i + 1)).tolist()
            bar.set_postfix_str(f'D {d:.3f} G_adv {g:.3f} G_l1 {l1:.4f}')
    bar.close()

    # end of epoch: validate, checkpoint, figures
    train_s = time.time() - t0
    elapsed_s += train_s
    loss_D_avg, loss_G_adv_avg, loss_G_l1_avg = (sums / steps_per_epoch).tolist()
    metrics_raw, grid = validate(G, grid=G_ema is None)
    if G_ema is not None:
        metrics, grid = validate(G_ema, grid=True)
    else:
        metrics = metrics_raw
    val_mae, val_mae_raw = metrics['mae'], metrics_raw['mae']
    history.append({'epoch': epoch + 1, 'step': step, 'loss_D': loss_D_avg, 'loss_G_adv': loss_G_adv_avg,
                    'loss_G_l1': loss_G_l1_avg, 'val_mae': val_mae, 'val_mae_raw': val_mae_raw,
                    'val_mae_gray': val_mae_gray, 'val_colorfulness': metrics['colorfulness'],
                    'val_colorfulness_real': val_colorfulness_real,
                    'elapsed_s': elapsed_s})
    rng = {'torch': torch.get_rng_state(), 'data': data_rng.get_state().cpu()}
    if cuda:
        rng['cuda'] = torch.cuda.get_rng_state()
    # a GAN's MAE rises as its color does: keep the epoch that is colorful enough at the lowest MAE, chosen on val
    is_best = best_epoch(history, select_color) == epoch + 1
    save_training_state(files, G, G_ema, D, opt_G, opt_D, rng, epoch=epoch + 1, step=step, elapsed_s=elapsed_s,
                        config=config, history=history, snapshot=keep_snapshots, best=is_best)
    save_png(os.path.join(images_dir, f'{name}_samples_epoch{epoch + 1:03d}.png'), grid)
    plot_curves(os.path.join(images_dir, f'{name}_curves.png'), {name: history})
    tqdm.write(f"epoch {epoch + 1}/{epochs} | step {step} | loss_D {loss_D_avg:.4f} | "
               f"loss_G_adv {loss_G_adv_avg:.4f} | loss_G_l1 {loss_G_l1_avg:.4f} | "
               f"val_mae {val_mae:.3f} (raw G {val_mae_raw:.3f}, gray {val_mae_gray:.3f}) | "
               f"color {metrics['colorfulness'] / val_colorfulness_real:.2f} of real | "
               f"{steps_per_epoch * batch_size / train_s:.0f} img/s | {train_s:.0f}s" + (" | best" if is_best else ""))

if start_epoch >= epochs:
    print(f"already trained {start_epoch} epochs (epochs={epochs}); nothing to do. Raise --epochs to train on.")
else:
    print(f"done: {epochs} epochs, {step} steps, {elapsed_s / 60:.1f} min of training. Checkpoint: {files['G']}")
best = best_epoch(history, select_color)
if best is None:
    print(f"no epoch reached validation colorfulness {select_color} of the real images', so no best.pt; "
          "train longer, or lower --select_color")
else:
    print(f"best.pt: epoch {best} (lowest validation MAE with colorfulness >= {select_color} of real): {files['best']}")
print(f"evaluate it: python3 eval.py --data_dir={data_dir} --checkpoint={files['best' if best else 'G']}")
