"""Measure training, evaluation, Lab conversion and full-resolution colorization speed, each beside a baseline.

    python3 bench.py                 # CPU or GPU, whichever --device=auto finds
    python3 bench.py --as_json

The baseline is the straightforward pipeline: a torch DataLoader whose dataset converts each image to Lab
with scikit-image in __getitem__, fp32, no compile. Baseline and fast path run in this one process, one
after the other, so their ratio holds on a noisy machine. Synthetic images stand in for data: speed does
not depend on the pixels.
"""
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import av
import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from skimage import color as skcolor
from skimage.metrics import structural_similarity

import colorize_gan.script  # noqa: F401  (one-line errors and a quiet Ctrl-C from here on)
from colorize_gan import video
from colorize_gan.checkpoint import PHOTO_GENERATOR, load_generator
from colorize_gan.color import denormalize_lab, normalize_lab, rgb_to_lab, rgb_uint8_to_network
from colorize_gan.dataset import ImageSplit, batches
from colorize_gan.device import autocast_for, resolve_device, training_amp
from colorize_gan.evaluation import evaluate
from colorize_gan.hints import make_hint
from colorize_gan.images import read_image
from colorize_gan.metrics import color_distribution_consistency, color_histograms, warping_error
from colorize_gan.models import Discriminator, EncoderUNet, Generator, fold_batchnorm, gan_step, update_ema
from colorize_gan.photo import colorize
from colorize_gan.utils import UserError, configure
from tools.make_clips import CLIPS, clip_frames, flow_between, gray, write_clip

# -----------------------------------------------------------------------------
device = 'auto'  # auto | cpu | cuda
width = 64  # generator/discriminator base width; 64 is the paper's
batch_size = 128  # training batch
train_steps = 6  # timed training steps per variant (after 2 warm-up steps)
matmul_max = 3072  # largest n (>= 64) of the n x n float32 products timed for the CPU's peak GFLOP/s
eval_images = 2000  # images per timed evaluation
torch_compile = False  # torch.compile the fast path's models (CUDA only)
amp = 'auto'  # the training figures' mixed precision, as train.py's: auto (bf16 on CUDA, AMX CPUs) | bf16 | fp32
colorize_mp = 12.0  # megapixels of the synthetic 4:3 photo for the colorize timing
colorize_checkpoint = ''  # generator of the colorize and video figures (in child processes too); '' = colorize.py's
memory_images = '10000,60000'  # dataset sizes (64 px) at which to measure the training process's anonymous memory
strip_memory = True  # peak RssAnon of colorize.py on a 64x64, a 1x4000 and a 4000x1 gray image
scan_megapixels = 180.0  # peak RssAnon and seconds of colorize.py on a gray scan of this many MP (13:14); 0 = skip
ddp_images = 2048  # training images for the 1 vs 2 processes comparison (train.py itself, on the CPU); 0 = skip
as_json = False  # also print one JSON object
# videos: tools/make_clips.py's pan/zoom clips, colorized per frame and stabilized (video.py)
video_seconds = 5.0  # length of each test clip for the flicker and MAE figures (speed: up to 2 s); 0 = no video
video_clips = ''  # comma-separated names of tools/make_clips.py's clips for those figures; '' = all of them
video_memory = False  # peak RssAnon of colorize.py on a 5 s and a 60 s 1280x720 clip (slow: minutes)
only_video = False  # measure the video figures alone
# the photo model's encoder: what another timm CNN (a bigger EfficientNet-Lite) costs on this machine, then exit
encoders = ''  # e.g. tf_efficientnet_lite0,tf_efficientnet_lite1,tf_efficientnet_lite2; '' = skip
encoder_batch = 16  # --encoders: the training batch timed (16 is the photo model's recipe)
# -----------------------------------------------------------------------------
configure(globals(), sys.argv[1:], flags=('as_json', 'video_memory', 'only_video'))
dev = resolve_device(device)
named_clips = [c.strip() for c in video_clips.split(',') if c.strip()]
clips = named_clips or list(CLIPS)
if encoders and encoder_batch < 2:
    raise UserError(f"--encoder_batch={encoder_batch}: pass at least 2 (BatchNorm needs two images to train)")
if train_steps < 1:
    raise UserError(f"--train_steps={train_steps}: pass at least 1 (the timed training steps)")
if matmul_max < 64:
    raise UserError(f"--matmul_max={matmul_max} is too small to measure a matrix-multiply rate; pass at least 64 "
                    "(default 3072)")
if video_seconds < 0 or 0 < video_seconds < 0.2 or (only_video and not video_seconds):
    raise UserError(f"--video_seconds={video_seconds}: pass at least 0.2 (5 frames at 25 frames/s), or 0 for no video "
                    "figures (then without --only_video)")
if video_clips.strip() and not named_clips:
    raise UserError(f"--video_clips={video_clips!r} names no clip; pass names among {', '.join(CLIPS)}, or nothing "
                    "for all of them")
if set(clips) - set(CLIPS):
    raise UserError(f"--video_clips: {', '.join(sorted(set(clips) - set(CLIPS)))} is not a clip; choose among "
                    f"{', '.join(CLIPS)}")
cuda = dev.type == 'cuda'
device_name = torch.cuda.get_device_name(dev) if cuda else f'cpu ({torch.get_num_threads()} threads)'
if cuda:
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
autocast = autocast_for(dev)  # evaluation: bf16 on CUDA, fp32 on the CPU (as eval.py)
amp = training_amp(amp, dev)
train_autocast = autocast_for(dev, amp)  # training: as train.py
memory_format = torch.channels_last
torch.manual_seed(0)
n_images = max(eval_images, batch_size * (train_steps + 2))
rng = np.random.default_rng(0)
rgb_uint8 = torch.from_numpy(rng.integers(0, 256, (n_images, 3, 32, 32), dtype=np.uint8))  # [N,3,H,W]


def sync():
    """Wait for queued GPU work so wall-clock timings are real."""
    if cuda:
        torch.cuda.synchronize()


def timed(fn):
    """Seconds that fn() takes, synchronized."""
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def generator_gflop(G, image_size=32):
    """Forward cost of G per image in GFLOP (2 per multiply-add), counted from its conv layers."""
    flop = 0

    def count(m, inp, out):
        nonlocal flop
        if isinstance(m, nn.ConvTranspose2d):  # every input pixel scatters a kernel into the output
            flop += 2 * inp[0][0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        else:
            flop += 2 * out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    was_training = G.training
    G.eval()
    with torch.no_grad():
        G(torch.zeros(1, 1, image_size, image_size, device=next(G.parameters()).device))
    G.train(was_training)
    for h in hooks:
        h.remove()
    return flop / 1e9


def matmul_gflops(dtype, reps=3):
    """Peak dense matrix-multiply rate in GFLOP/s on this device: the best over sizes and repeats, so the
    efficiency it anchors is not flattered by one slow measurement."""
    best = 0.0
    sizes = [n for n in (1024, 2048, 3072) if n <= matmul_max] or [matmul_max]
    for n in sizes if dev.type == 'cpu' else (4096, 8192):
        a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
        a @ b
        seconds = min(timed(lambda: [a @ b for _ in range(reps)]) for _ in range(3))
        best = max(best, 2 * n ** 3 * reps / seconds / 1e9)
    return best


class SkimageLab(torch.utils.data.Dataset):
    """The baseline dataset: one uint8 RGB image per item, converted to normalized Lab with scikit-image."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i].permute(1, 2, 0).numpy()  # [H,W,3]
        lab = torch.from_numpy(skcolor.rgb2lab(image).astype(np.float32)).permute(2, 0, 1)[None]  # [1,3,H,W]
        L, ab = normalize_lab(lab)
        return L[0], ab[0], self.images[i]


def new_models(channels_last):
    """Fresh G, D and their Adam optimizers (paper settings)."""
    G = Generator(width).to(dev)
    D = Discriminator(width).to(dev)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    opt = lambda m: torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999))  # noqa: E731
    return G, D, opt(G), opt(D)


# -----------------------------------------------------------------------------
# training: baseline DataLoader + fp32 vs on-device Lab tensors + index slices (+ bf16/channels_last/compile on CUDA)
def bench_train_baseline():
    """Images/s of GAN steps fed by the per-item scikit-image DataLoader, fp32."""
    G, D, opt_G, opt_D = new_models(False)
    loader = torch.utils.data.DataLoader(SkimageLab(rgb_uint8), batch_size=batch_size, shuffle=True, drop_last=True)
    batches = iter(loader)

    def step():
        L, ab, _ = next(batches)
        gan_step(G, D, opt_G, opt_D, L.to(dev), ab.to(dev))

    for _ in range(2):
        step()
    return batch_size * train_steps / timed(lambda: [step() for _ in range(train_steps)])


def bench_train_fast():
    """Images/s of train.py's hot path, with train.py's own pieces: the uint8 split on the device, dataset.batches
    (index slices of a permutation, flips and Lab per batch, the next batch prefetched), models.gan_step (compiled
    with torch_compile on CUDA) and models.update_ema."""
    G, D, opt_G, opt_D = new_models(True)
    G_ema = Generator(width).to(dev, memory_format=torch.channels_last).requires_grad_(False)
    G_compiled, D_compiled = (torch.compile(G), torch.compile(D)) if torch_compile and cuda else (G, D)
    split = ImageSplit(rgb_uint8, torch.arange(len(rgb_uint8)), 'bench', 0, 0).to(dev)
    perm = torch.randperm(len(split), device=dev)
    flips = torch.rand(len(split), device=dev) < 0.5
    stream = batches(split, perm, flips, batch_size, 0, dev, memory_format)

    def step():
        L, ab = next(stream)
        gan_step(G_compiled, D_compiled, opt_G, opt_D, L, ab, autocast=train_autocast, D_frozen=D)
        update_ema(G_ema, G, 0.999)

    for _ in range(2):
        step()
    return batch_size * train_steps / timed(lambda: [step() for _ in range(train_steps)])


# -----------------------------------------------------------------------------
# evaluation: baseline per-item scikit-image pipeline vs eval.py's batched torch path
def bench_eval_baseline(G):
    """Images/s of a straightforward eval: DataLoader with scikit-image, fp32, per-image numpy/scikit-image metrics."""
    loader = torch.utils.data.DataLoader(SkimageLab(rgb_uint8[:eval_images]), batch_size=500)

    def run():
        with torch.no_grad():
            for L, _, rgb in loader:
                ab = G(L.to(dev)).cpu().numpy()
                for j in range(len(L)):
                    lab = denormalize_lab(L[j:j + 1], torch.from_numpy(ab[j:j + 1]))[0].permute(1, 2, 0).numpy()
                    fake = skcolor.lab2rgb(lab) * 255
                    real = rgb[j].permute(1, 2, 0).numpy().astype(np.float64)
                    np.abs(fake - real).mean()
                    10 * np.log10(255 ** 2 / max(((fake - real) ** 2).mean(), 1e-10))
                    structural_similarity(fake, real, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=255, channel_axis=2)
    return eval_images / timed(run)


def bench_eval_fast(G):
    """Images/s of eval.py's path: Lab tensors on the device, batched inference, metrics batched in torch."""
    split = ImageSplit(rgb_uint8[:eval_images], torch.arange(eval_images), 'bench', 0, 0).to(dev)
    evaluate(G, split, 500, autocast)  # warm-up
    return eval_images / min(timed(lambda: evaluate(G, split, 500, autocast)) for _ in range(2))


def bench_generator_only(G):
    """Images/s of G's forward pass alone at the evaluation batch size: the compute floor of evaluation."""
    L = torch.rand(500, 1, 32, 32, device=dev) * 2 - 1
    with torch.inference_mode(), autocast():
        G(L)
        return 500 * 2 / min(timed(lambda: [G(L) for _ in range(2)]) for _ in range(2))


def bench_lab():
    """Images/s of the batched uint8 RGB -> network-scale Lab conversion that every training batch goes through."""
    rgb = rgb_uint8.to(dev)
    rgb_uint8_to_network(rgb[:batch_size])
    batches = range(0, len(rgb), batch_size)
    return len(rgb) / timed(lambda: [rgb_uint8_to_network(rgb[i:i + batch_size]) for i in batches])


def bench_colorize(G):
    """Seconds to colorize a gray photo of colorize_mp megapixels (12: 4000x3000) from decoded pixels, to decode +
    encode it, and to colorize it with 10 colour hints (spread as colorize.py does; None for a model without)."""
    h = int(round((colorize_mp * 1e6 * 3 / 4) ** 0.5))
    w = h * 4 // 3
    yy, xx = np.mgrid[0:h, 0:w]
    photo = (128 + 90 * np.sin(xx / 300) * np.cos(yy / 200) + rng.normal(0, 6, (h, w))).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format='JPEG', quality=90)
    colorize(G, photo, device=dev)  # warm-up
    seconds = min(timed(lambda: colorize(G, photo, device=dev)) for _ in range(2))
    out = colorize(G, photo, device=dev)

    def io_roundtrip():
        buffer.seek(0)
        read_image(buffer)
        Image.fromarray(out).save(io.BytesIO(), format='PNG')
    hints = [make_hint(rng.integers(0, w), rng.integers(0, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
             for _ in range(10)]
    with_hints = min(timed(lambda: colorize(G, photo, device=dev, hints=hints)) for _ in range(2)) if G.hints else None
    return seconds, timed(io_roundtrip), with_hints


def bench_colorize_onnx(G):
    """Seconds to colorize bench_colorize's kind of photo (colorize_mp megapixels, gray) with light.py: G exported
    to ONNX, run by onnxruntime on the CPU with torch's thread count, the pipeline in numpy; None without onnx and
    onnxruntime."""
    import importlib.util
    if not (importlib.util.find_spec('onnx') and importlib.util.find_spec('onnxruntime')):
        return None
    from colorize_gan import light
    from colorize_gan.onnx_export import export_onnx
    h = int(round((colorize_mp * 1e6 * 3 / 4) ** 0.5))
    w = h * 4 // 3
    yy, xx = np.mgrid[0:h, 0:w]
    noise = np.random.default_rng(0).normal(0, 6, (h, w))
    photo = (128 + 90 * np.sin(xx / 300) * np.cos(yy / 200) + noise).clip(0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(G, os.path.join(folder, 'generator.onnx'))
        G_onnx = light.load_generator(os.path.join(folder, 'generator.onnx'), threads=torch.get_num_threads())
    light.colorize(G_onnx, photo)  # warm-up
    return min(timed(lambda: light.colorize(G_onnx, photo)) for _ in range(2))


# -----------------------------------------------------------------------------
# memory and processes: the training data path in a child process, and train.py at 1 and 2 processes
MEMORY_CHILD = """
import json, sys, torch
from colorize_gan.dataset import ImageSplit, batches
from colorize_gan.models import Discriminator, Generator, gan_step
n, path = int(sys.argv[1]), sys.argv[2]
def anon():
    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('RssAnon'))
pixels = torch.from_file(path, shared=False, size=n * 3 * 64 * 64, dtype=torch.uint8).view(n, 3, 64, 64)
split = ImageSplit(pixels, torch.arange(n), 'synthetic', 0, 0)
G, D = Generator(4, 64), Discriminator(4)
opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
perm, flips = torch.randperm(n), torch.rand(n) < 0.5
peak = anon()
for i, (L, ab) in enumerate(batches(split, perm, flips, 64, 0, torch.device('cpu'), torch.channels_last)):
    if i % 50 == 0:  # a GAN step now and then; every batch reads its images, so the whole file is touched
        gan_step(G, D, opt_G, opt_D, L, ab)
    peak = max(peak, anon())
print(json.dumps({'peak_rss_anon_mb': peak / 1024}))
"""


def bench_memory(n):
    """Peak anonymous memory (RssAnon, MB) of a process that reads every image of an n-image 64 px memory-mapped
    split in training batches (with GAN steps): it should not grow with n, the page cache holds the pixels."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'pixels.u8')
        chunk = np.random.default_rng(0).integers(0, 256, (1000, 3, 64, 64), dtype=np.uint8).tobytes()
        with open(path, 'wb') as f:
            for i in range(0, n, 1000):
                f.write(chunk[:min(1000, n - i) * 3 * 64 * 64])
        env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
        out = subprocess.run([sys.executable, '-c', MEMORY_CHILD, str(n), path], capture_output=True, text=True,
                             env=env, cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])['peak_rss_anon_mb']


STRIP_CHILD = """
import json, runpy, sys, threading, time
def anon():
    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('RssAnon'))
peak, done, t0 = [anon()], [], time.time()
def sample():
    while not done:
        peak[0] = max(peak[0], anon())
        time.sleep(0.002)
threading.Thread(target=sample, daemon=True).start()
sys.argv = ['colorize.py', sys.argv[1], '--out_dir=' + sys.argv[2], '--checkpoint=' + sys.argv[3], '--device=cpu']
try:
    runpy.run_path('colorize.py', run_name='__main__')
except SystemExit as e:
    if e.code:  # colorize.py failed (its message is on stderr): no figure
        raise
done.append(1)
print(json.dumps({'peak_rss_anon_mb': max(peak[0], anon()) / 1024, 'seconds': time.time() - t0}))
"""


def colorize_in_child(path, out_dir):
    """STRIP_CHILD's {'peak_rss_anon_mb', 'seconds'} for colorize.py on `path` with --colorize_checkpoint, run in a
    new process with this one's thread count."""
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.run([sys.executable, '-c', STRIP_CHILD, path, out_dir, colorize_checkpoint], capture_output=True,
                          text=True, env=env, cwd=os.path.dirname(os.path.abspath(__file__)))
    if proc.returncode:
        raise UserError(f"colorize.py failed in its child process (status {proc.returncode}): "
                        f"{(proc.stderr.strip().splitlines() or ['no message'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_colorize_process(height, width, smooth=False):
    """(peak anonymous memory in MB, RssAnon sampled every 2 ms; wall seconds) of colorize.py with
    --colorize_checkpoint on one gray PNG of height x width px, in a child process, from start-up to the written
    output. Noise pixels by default; smooth=True draws a gentle gradient instead (a scan's paper and tones: a small
    file for a huge image). A thin strip must cost about what a small square does, and a huge scan a bounded
    multiple of its own pixels."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'scan.png')
        if smooth:
            rows = np.linspace(60, 200, height, dtype=np.float32)[:, None]
            image = (rows + np.linspace(0, 40, width, dtype=np.float32)[None]).astype(np.uint8)
        else:
            image = np.random.default_rng(0).integers(0, 256, (height, width), dtype=np.uint8)
        Image.fromarray(image).save(path, compress_level=1)
        del image
        result = colorize_in_child(path, os.path.join(folder, 'out'))
    return result['peak_rss_anon_mb'], result['seconds']


def bench_processes(n_images):
    """Images/s of train.py's second epoch with 1 process and with 2 gloo processes (torchrun) on the CPU, on a
    folder of n_images synthetic 32 px images, width 16, global batch 64."""
    speeds = {}
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        for split, n in (('train', n_images), ('test', 8)):
            os.makedirs(os.path.join(folder, 'data', split))
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    os.path.join(folder, 'data', split, f'{i:05d}.png'))
        for nproc in (1, 2):
            launcher = [sys.executable] if nproc == 1 else \
                [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}']
            threads = max(1, (os.cpu_count() or 2) // nproc)
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), COLORIZE_CACHE_DIR=os.path.join(folder, 'cache'))
            out = subprocess.run([*launcher, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'train.py'),
                                  f'--data_dir={os.path.join(folder, "data")}', '--width=16', '--batch_size=64',
                                  '--epochs=2', '--val_size=64', '--device=cpu', '--log_seconds=0',
                                  f'--out_dir={os.path.join(folder, f"run{nproc}")}'],
                                 capture_output=True, text=True, env=env, check=True).stdout
            line = next(ln for ln in out.splitlines() if ln.startswith('epoch 2/2'))
            speeds[nproc] = float(line.split(' img/s')[0].rsplit('| ', 1)[1])
    return speeds[1], speeds[2]


# -----------------------------------------------------------------------------
# videos: flicker, MAE, speed and memory of video.colorize_video on clips made from real photos

def _ab(rgb):
    """ab [2,H,W] (Lab units) of a uint8 HxWx3 RGB frame."""
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0, 1:]


def video_scores(path, truth):
    """Flicker and error of a video against its clip_frames truth [(rgb, geometry)]: warping error on ab (8x8 block
    means, frame pairs within a shot, motion from the clip's known camera path), CDC, and MAE (RGB 0-255) against the
    real colour frames, all averaged over the frames."""
    warps, maes, hists, previous = [], [], [], None
    with av.open(path) as container:
        for i, frame in enumerate(container.decode(video=0)):
            rgb = frame.to_ndarray(format='rgb24')
            ab = _ab(rgb)
            if previous is not None:
                flow = flow_between(truth[i - 1][1], truth[i][1], *rgb.shape[:2])
                if flow is not None:
                    warps.append(warping_error(previous, ab, flow))
            previous = ab
            maes.append(np.abs(rgb.astype(np.float32) - truth[i][0]).mean())
            hists.append(color_histograms(rgb))
    return {'warp': float(np.mean(warps)), 'cdc': color_distribution_consistency(torch.stack(hists)),
            'mae': float(np.mean(maes))}


def bench_video_quality(G):
    """Per clip of tools/make_clips.py (640x360, video_seconds, 25 frames/s): video_scores of the real colour clip,
    of the grayscale input, and of per-frame (--temporal=0) and stabilized (video.TEMPORAL) colorization, both
    encoded at the same CRF (video.QUALITY); plus their mean over the clips."""
    scores = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in clips:
            truth = list(clip_frames(name, 640, 360, video_seconds))
            real, gray_in = os.path.join(folder, f'{name}.mp4'), os.path.join(folder, f'{name}_gray.mp4')
            write_clip(real, (rgb for rgb, _ in truth), crf=video.QUALITY)
            write_clip(gray_in, (gray(rgb) for rgb, _ in truth), crf=video.QUALITY)
            scores[name] = {'real': video_scores(real, truth), 'gray': video_scores(gray_in, truth)}
            for label, strength in (('per_frame', 0.0), ('stabilized', video.TEMPORAL)):
                out = os.path.join(folder, f'{name}_{label}.mp4')
                video.colorize_video(G, gray_in, out, device=dev, temporal=strength)
                scores[name][label] = video_scores(out, truth)
    kinds = scores[next(iter(scores))]
    scores['mean'] = {kind: {k: float(np.mean([scores[c][kind][k] for c in clips])) for k in kinds[kind]}
                      for kind in kinds}
    return scores


def bench_video_fps(G, width, height, seconds):
    """Frames/s of video.colorize_video (decode, colorize, stabilize, encode) on a gray pan of width x height."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'pan.mp4')
        n = write_clip(path, (gray(rgb) for rgb, _ in clip_frames('pan_astronaut', width, height, seconds)))
        return n / timed(lambda: video.colorize_video(G, path, os.path.join(folder, 'out.mp4'), device=dev))


def bench_video_memory(seconds):
    """Peak anonymous memory (RssAnon, MB, sampled every 2 ms) of colorize.py with --colorize_checkpoint on a gray
    1280x720 25 frames/s clip of `seconds` (a moving pattern with noise), in a child process (STRIP_CHILD)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:720, 0:1280]

    def frames():
        for t in range(int(seconds * 25)):
            g = 128 + 80 * np.sin((xx + 3 * t) / 60) * np.cos(yy / 45) + rng.normal(0, 4, (720, 1280))
            yield np.repeat(g.clip(0, 255).astype(np.uint8)[..., None], 3, 2)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'clip.mp4')
        write_clip(path, frames(), crf=23)
        return colorize_in_child(path, os.path.join(folder, 'out'))['peak_rss_anon_mb']


def video_section(G):
    """The video figures as {name: value} and as table rows (label, value, format)."""
    scores = bench_video_quality(G)
    found = {'video_scores': scores, 'video_fps_640x360': bench_video_fps(G, 640, 360, min(2.0, video_seconds)),
             'video_fps_1280x720': bench_video_fps(G, 1280, 720, min(2.0, video_seconds))}
    if video_memory:
        found['video_rss_anon_mb_5s'] = bench_video_memory(5)
        found['video_rss_anon_mb_60s'] = bench_video_memory(60)
    rows = []
    for kind in ('real', 'gray', 'per_frame', 'stabilized'):
        m = scores['mean'][kind]
        rows.append((f'video {kind}: warping error (ab, 8x8 blocks)', m['warp'], '.3f'))
        rows += [(f'video {kind}: CDC', m['cdc'], '.5f'), (f'video {kind}: MAE (RGB)', m['mae'], '.2f')]
    rows += [('video 640x360, frames/s', found['video_fps_640x360'], '.1f'),
             ('video 1280x720, frames/s', found['video_fps_1280x720'], '.1f')]
    rows += [(f'colorize.py peak RssAnon, 720p clip of {k.rsplit("_", 1)[1]}, MB', v, '.0f') for k, v in found.items()
             if k.startswith('video_rss_anon_mb_')]
    return found, rows


def bench_encoder(encoder):
    """The photo model (models.EncoderUNet on timm's `encoder`, width 32, 128 px, hint input; PatchGAN width 32) with
    random weights: (training img/s of models.gan_step at 128 px; ms of the folded generator on one 128x224
    input, a 16:9 frame's working size; generator parameters, M); the batch is encoder_batch."""
    G = EncoderUNet(encoder, 32, 128, hints=True).to(dev, memory_format=memory_format)
    D = Discriminator(32).to(dev, memory_format=memory_format)
    opt_G, opt_D = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (G, D))
    n = encoder_batch
    L, ab, hints = (t.contiguous(memory_format=memory_format) for t in (  # as train.py's batches
        torch.rand(n, 1, 128, 128, device=dev) * 2 - 1, torch.rand(n, 2, 128, 128, device=dev) - 0.5,
        torch.zeros(n, 3, 128, 128, device=dev)))
    step = lambda: gan_step(G, D, opt_G, opt_D, L, ab, autocast=train_autocast, hints=hints)  # noqa: E731
    step(), step()
    img_s = n * train_steps / timed(lambda: [step() for _ in range(train_steps)])
    G_eval = fold_batchnorm(G.eval())
    x = torch.rand(1, 1, 128, 224, device=dev) * 2 - 1
    with torch.inference_mode():
        G_eval(x, None)
        ms = min(timed(lambda: [G_eval(x, None) for _ in range(5)]) for _ in range(2)) / 5 * 1000
    return img_s, ms, sum(p.numel() for p in G.parameters()) / 1e6


if encoders:
    import timm
    names = [name.strip() for name in encoders.split(',') if name.strip()]
    unknown = [name for name in names if not timm.is_model(name)]
    if unknown or not names:
        raise UserError(f"--encoders: {', '.join(repr(n) for n in unknown) or repr(encoders) + ' names no'} is not a "
                        "timm model; e.g. --encoders=tf_efficientnet_lite0,tf_efficientnet_lite1")
    for name in names:  # the U-Net needs a CNN with features at strides 2-32: refuse others before timing any
        try:
            with torch.no_grad():
                EncoderUNet(name, 32, 128, hints=True).eval()(torch.zeros(1, 1, 128, 128))
        except Exception as e:
            raise UserError(f"--encoders: {name} does not work as the U-Net's encoder ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:100]}); pass CNNs with features at strides 2-32, e.g. "
                            "tf_efficientnet_lite1 or resnet18") from None
    print(f"device {device_name}, training in {amp}")
    wide = max(len('encoder'), *map(len, names))  # the name column fits the longest name
    print(f"| {'encoder':<{wide}} | {'train img/s':>11} | {'G ms, 128x224':>13} | {'G params, M':>11} |")
    print(f"|{'-' * (wide + 2)}|{'-' * 13}|{'-' * 15}|{'-' * 13}|")
    found = {}
    for name in names:
        found[name] = dict(zip(('train_img_s', 'generator_ms_128x224', 'params_m'), bench_encoder(name)))
        print(f"| {name:<{wide}} | {found[name]['train_img_s']:>11.1f} | {found[name]['generator_ms_128x224']:>13.1f} "
              f"| {found[name]['params_m']:>11.2f} |")
    if as_json:
        print(json.dumps({'device': device_name, 'amp': amp, 'encoders': found}), flush=True)
    sys.exit(0)


# the model of the colorize and video figures, loaded (so checked) before any timing; the colorize.py child processes
# run from this clone, so they get its absolute path
colorize_checkpoint = os.path.abspath(os.path.expanduser(colorize_checkpoint)) if colorize_checkpoint else ''
try:
    G_photo, colorize_model = load_generator(colorize_checkpoint or PHOTO_GENERATOR, dev)
except UserError as e:
    raise UserError(f"--colorize_checkpoint: {e}") from None

if only_video:
    print(f"device {dev} ({torch.get_num_threads()} threads), model {colorize_model}")
    found, rows = video_section(G_photo)
    for label, value, fmt in rows:
        print(f"| {label:<56} | {value:>10{fmt}} |")
    if as_json:
        print(json.dumps({'device': device_name, 'model': colorize_model, **found}), flush=True)
    sys.exit(0)


# -----------------------------------------------------------------------------
print(f"device {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if cuda else f" ({torch.get_num_threads()} threads)")
      + f", width {width}, batch {batch_size}, training in {amp}")
# as load_generator returns it
G_eval = fold_batchnorm(Generator(width).to(dev, memory_format=torch.channels_last).eval())
G_plain = Generator(width).to(dev).eval()
results = {'device': device_name, 'width': width, 'amp': amp}
results['matmul_gflops'] = matmul_gflops(torch.float32)
if cuda:
    results['matmul_gflops_bf16'] = matmul_gflops(torch.bfloat16)
results['gflop_per_image'] = generator_gflop(G_eval)
results['train_img_s_baseline'] = bench_train_baseline()
results['train_img_s'] = bench_train_fast()
results['eval_img_s_baseline'] = bench_eval_baseline(G_plain)
results['eval_img_s'] = bench_eval_fast(G_eval)
results['generator_img_s'] = bench_generator_only(G_eval)
results['eval_efficiency'] = results['eval_img_s'] * results['gflop_per_image'] / results['matmul_gflops']
results['lab_img_s'] = bench_lab()
results['colorize_model'] = colorize_model
results['colorize_12mp_s'], results['colorize_12mp_io_s'], results['colorize_12mp_hints_s'] = bench_colorize(G_photo)
results['colorize_12mp_onnx_s'] = bench_colorize_onnx(G_photo)  # None without onnxruntime
for n in (int(x) for x in memory_images.split(',') if x):
    results[f'peak_rss_anon_mb_{n}'] = bench_memory(n)
if strip_memory:
    for h, w in ((64, 64), (1, 4000), (4000, 1)):
        results[f'colorize_rss_anon_mb_{h}x{w}'] = bench_colorize_process(h, w)[0]
if scan_megapixels:  # an archive's scan: 13:14, as the 14000x13000 one people brought
    scan_h = int(round((scan_megapixels * 1e6 * 13 / 14) ** 0.5))
    scan_w = int(round(scan_megapixels * 1e6 / scan_h))
    results['scan_size'] = f'{scan_w}x{scan_h}'
    results['scan_rss_anon_mb'], results['scan_s'] = bench_colorize_process(scan_h, scan_w, smooth=True)
if ddp_images and not cuda:
    results['train_img_s_1_process'], results['train_img_s_2_processes'] = bench_processes(ddp_images)
video_found, video_rows = video_section(G_photo) if video_seconds else ({}, [])
results.update(video_found)

rows = [('training step, img/s', 'train_img_s', 'train_img_s_baseline', '.0f'),
        ('evaluation, img/s', 'eval_img_s', 'eval_img_s_baseline', '.0f')]
other = [('generator forward alone, img/s', results['generator_img_s'], '.0f'),
         ('generator cost, GFLOP/image', results['gflop_per_image'], '.3f'),
         ('fp32 matmul, GFLOP/s', results['matmul_gflops'], '.0f'),
         ('eval efficiency (eval img/s x GFLOP / matmul)', results['eval_efficiency'], '.2f'),
         ('RGB -> Lab, img/s', results['lab_img_s'], '.0f'),
         (f'colorize {colorize_mp:g} MP, s (decoded -> colorized)', results['colorize_12mp_s'], '.2f'),
         (f'decode JPEG + encode PNG of {colorize_mp:g} MP, s', results['colorize_12mp_io_s'], '.2f')]
if cuda:
    other.insert(3, ('bf16 matmul, GFLOP/s', results['matmul_gflops_bf16'], '.0f'))
if results['colorize_12mp_hints_s'] is not None:
    other.append((f'colorize {colorize_mp:g} MP with 10 hints (spread), s', results['colorize_12mp_hints_s'], '.2f'))
if results['colorize_12mp_onnx_s'] is not None:
    other.append((f'colorize {colorize_mp:g} MP, onnxruntime + numpy, s', results['colorize_12mp_onnx_s'], '.2f'))
other += [(f'peak RssAnon, {k.rsplit("_", 1)[1]} images at 64 px, MB', v, '.0f') for k, v in results.items()
          if k.startswith('peak_rss_anon_mb_')]
other += [(f'colorize.py peak RssAnon, {k.rsplit("_", 1)[1]} gray, MB', v, '.0f') for k, v in results.items()
          if k.startswith('colorize_rss_anon_mb_')]
if 'scan_s' in results:
    other += [(f"colorize.py on a {results['scan_size']} gray scan, s", results['scan_s'], '.1f'),
              (f"colorize.py on a {results['scan_size']} gray scan, peak RssAnon MB", results['scan_rss_anon_mb'],
               '.0f')]
if 'train_img_s_2_processes' in results:
    other += [('train.py, 1 process, img/s', results['train_img_s_1_process'], '.0f'),
              ('train.py, 2 gloo processes (torchrun), img/s', results['train_img_s_2_processes'], '.0f')]
other += video_rows
wide = max(len(label) for label, *_ in rows + other)  # the measure column fits its longest label
print(f"| {'measure':<{wide}} | {'fast path':>10} | {'baseline':>10} | {'ratio':>6} |")
print(f"|{'-' * (wide + 2)}|{'-' * 12}|{'-' * 12}|{'-' * 8}|")
for label, fast, base, fmt in rows:
    ratio = results[fast] / results[base]
    print(f"| {label:<{wide}} | {results[fast]:>10{fmt}} | {results[base]:>10{fmt}} | {ratio:>5.1f}x |")
for label, value, fmt in other:
    print(f"| {label:<{wide}} | {value:>10{fmt}} | {'':>10} | {'':>6} |")
if as_json:
    print(json.dumps(results), flush=True)
