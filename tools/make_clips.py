"""Make test videos from real colour photos: slow pans and zooms across scikit-image's sample photos, with sensor noise
and film grain, and a cut to another photo; each as the colour original and as the grayscale input.

    python3 tools/make_clips.py                                  # data/clips/<clip>.mp4 and <clip>_gray.mp4
    python3 tools/make_clips.py --out_dir=/tmp/clips --width=320 --height=180 --seconds=3
    python3 colorize.py data/clips/pan_astronaut_gray.mp4

The camera's path is known exactly (clip_frames yields each frame's crop of the photo), so the motion between any
two frames needs no optical flow: flow_between gives it, whole pixels for the pans. bench.py and the tests make
their clips with these functions; nothing here is stored in the repository.
"""
import os
import sys
from fractions import Fraction

import av
import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skdata

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

from colorize_gan.color import luminance  # noqa: E402
from colorize_gan.utils import atomic_write, configure  # noqa: E402

# -----------------------------------------------------------------------------
out_dir = 'data/clips'  # gets <clip>.mp4 (the colour original) and <clip>_gray.mp4 (the input to colorize) per clip
width = 640  # px of the clips
height = 360  # px
seconds = 5.0  # length of each clip
rate = 25  # frames/s
crf = 12  # x264 quality of the clips (low numbers: they are references)
# -----------------------------------------------------------------------------

# each clip: shots of (photo, frames as a share of the clip, start (x, y) as shares of the free room, pan in px/frame
# (dx, dy), zoom per frame); noise: Gaussian sensor noise, std in 8-bit levels; grain: blurred luminance noise
CLIPS = {
    'pan_astronaut': dict(shots=[('astronaut', 0.7, (0.0, 0.3), (2, 0), 1.0), ('coffee', 0.3, (0.5, 0.0), (0, 1), 1.0)],
                          noise=3.0, grain=0.0),
    'pan_rocket': dict(shots=[('rocket', 0.6, (1.0, 0.5), (-3, 0), 1.0), ('chelsea', 0.4, (0.0, 0.0), (1, 1), 1.0)],
                       noise=0.0, grain=6.0),
    'zoom_chelsea': dict(shots=[('chelsea', 0.6, (0.5, 0.5), (0, 0), 0.997), ('astronaut', 0.4, (0.2, 0.6), (2, 0),
                                                                                1.0)], noise=2.0, grain=4.0),
}
PHOTOS = {'astronaut': skdata.astronaut, 'coffee': skdata.coffee, 'chelsea': skdata.chelsea, 'rocket': skdata.rocket}


def _photo(name, width, height, margin):
    """A sample photo as float32 RGB [3,H,W] (0-255), enlarged (bicubic) so that a width x height view has `margin`
    px to move in along both axes."""
    rgb = torch.from_numpy(PHOTOS[name]()).permute(2, 0, 1).float()
    scale = max((width + margin) / rgb.shape[2], (height + margin) / rgb.shape[1], 1.0)
    size = (int(np.ceil(rgb.shape[1] * scale)), int(np.ceil(rgb.shape[2] * scale)))
    return F.interpolate(rgb[None], size=size, mode='bicubic', align_corners=False)[0].clamp(0, 255)


def clip_frames(name, width=640, height=360, seconds=5.0, rate=25, seed=0):
    """The frames of clip CLIPS[name]: yields (uint8 HxWx3 RGB, geometry), geometry = (shot, x0, y0, scale): frame
    pixel (u, v) shows the shot's enlarged photo at (x0 + u * scale, y0 + v * scale). Noise and grain are drawn anew
    for each frame from `seed`."""
    spec, rng = CLIPS[name], np.random.default_rng(seed)
    n = int(round(seconds * rate))
    counts = [int(round(share * n)) for _, share, *_ in spec['shots']]
    counts[-1] = n - sum(counts[:-1])
    for shot, ((photo, _, start, (dx, dy), zoom), count) in enumerate(zip(spec['shots'], counts)):
        image = _photo(photo, width, height, max(abs(dx), abs(dy)) * count + 2)
        room_x, room_y = image.shape[2] - width, image.shape[1] - height
        x = float(round(min(max(start[0] * room_x, -dx * count, 0), room_x - max(dx * count, 0))))
        y = float(round(min(max(start[1] * room_y, -dy * count, 0), room_y - max(dy * count, 0))))
        scale = 1.0
        for _ in range(count):
            frame = _view(image, x, y, scale, width, height)
            if spec['noise']:
                frame = frame + torch.from_numpy(rng.normal(0, spec['noise'], frame.shape).astype(np.float32))
            if spec['grain']:
                grain = torch.from_numpy(rng.normal(0, 1, (1, 1, height, width)).astype(np.float32))
                grain = F.avg_pool2d(grain, 3, 1, 1, count_include_pad=False)[0] * spec['grain'] * 3
                frame = frame + grain
            yield frame.clamp(0, 255).round().byte().permute(1, 2, 0).numpy(), (shot, x, y, scale)
            cx, cy = x + width * scale / 2, y + height * scale / 2  # zoom about the view's centre
            scale *= zoom
            x, y = cx - width * scale / 2 + dx, cy - height * scale / 2 + dy


def _view(image, x0, y0, scale, width, height):
    """The width x height view of image [3,H,W] whose pixel (u, v) samples (x0 + u * scale, y0 + v * scale): an exact
    crop for whole-pixel positions at scale 1, else bilinear."""
    if scale == 1 and x0 == int(x0) and y0 == int(y0):
        return image[:, int(y0):int(y0) + height, int(x0):int(x0) + width].clone()
    ys = y0 + torch.arange(height, dtype=torch.float32) * scale
    xs = x0 + torch.arange(width, dtype=torch.float32) * scale
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    H, W = image.shape[1:]
    grid = torch.stack([2 * gx / (W - 1) - 1, 2 * gy / (H - 1) - 1], -1)[None]
    return F.grid_sample(image[None], grid, mode='bilinear', align_corners=True)[0]


def flow_between(geometry_a, geometry_b, height, width):
    """Where each pixel of frame a is in frame b: [2,H,W] (x, y) in frame b's pixels, from the two frames' clip_frames
    geometries; None across a cut (different shots, no correspondence)."""
    (shot_a, xa, ya, sa), (shot_b, xb, yb, sb) = geometry_a, geometry_b
    if shot_a != shot_b:
        return None
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing='ij')
    return torch.stack([(xa + u * sa - xb) / sb, (ya + v * sa - yb) / sb]).float()


def gray(rgb):
    """uint8 HxWx3 gray frame (R = G = B) whose CIE lightness is the colour frame's (to 8-bit rounding)."""
    L = luminance(rgb).numpy()
    levels = luminance(np.arange(256, dtype=np.uint8)[None]).numpy()[0]  # L of each gray level, increasing
    g = np.clip(np.searchsorted(levels, L), 1, 255)
    g = np.where(np.abs(levels[g - 1] - L) < np.abs(levels[g] - L), g - 1, g).astype(np.uint8)
    return np.repeat(g[..., None], 3, 2)


def write_clip(path, frames, rate=25, pix_fmt='yuv420p', crf=12, rotation=0, audio_s=0.0, audio_codec='aac',
               timestamps=None, codec='libx264', container=None):
    """Encode uint8 HxWx3 RGB frames (any iterable) into a video file (temporary file, then rename).

    rate: frames/s (Fraction or int); timestamps: each frame's pts in units of 1/(rate * 100) for a variable frame
    rate (default: evenly spaced); rotation: display-matrix degrees counter-clockwise, as phones store it; audio_s:
    seconds of a 440 Hz tone in `audio_codec` (0 = no audio stream). Returns the number of frames written."""
    rate = Fraction(rate)
    time_base = 1 / (rate * 100)

    def write(f):
        n = 0
        ext = os.path.splitext(path)[1].lstrip('.').lower()
        with av.open(f, 'w', format=container or {'mkv': 'matroska', 'm2ts': 'mpegts'}.get(ext, ext)) as out:
            stream = None
            if audio_s:
                audio = out.add_stream(audio_codec, rate=16000)
                audio.layout = 'mono'
            for i, rgb in enumerate(frames):
                if stream is None:
                    stream = out.add_stream(codec, rate=rate)
                    stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
                    stream.time_base = stream.codec_context.time_base = time_base
                    if codec == 'libx264':
                        stream.options = {'crf': str(crf)}
                    if rotation:
                        stream.set_display_rotation(rotation)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
                frame.pts = timestamps[i] if timestamps is not None else i * 100
                frame.time_base = time_base
                out.mux(stream.encode(frame))
                n += 1
            if stream is not None:
                out.mux(stream.encode(None))
            if audio_s:
                t = np.arange(int(audio_s * 16000)) / 16000
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                fmt = audio.codec_context.format.name
                for start in range(0, len(tone), 1024):
                    chunk = tone[None, start:start + 1024]
                    if fmt.startswith('s16'):
                        chunk = (chunk * 32767).astype(np.int16)
                    af = av.AudioFrame.from_ndarray(chunk, format=fmt.rstrip('p') if fmt.startswith('s16') else
                                                    fmt, layout='mono')
                    af.sample_rate, af.pts = 16000, start
                    out.mux(audio.encode(af))
                out.mux(audio.encode(None))
        return n

    result = []
    atomic_write(path, lambda f: result.append(write(f)))
    return result[0]


if __name__ == '__main__':
    configure(globals(), sys.argv[1:])
    for name in CLIPS:
        frames = list(clip_frames(name, width, height, seconds, rate))
        write_clip(os.path.join(out_dir, f'{name}.mp4'), (rgb for rgb, _ in frames), rate, crf=crf)
        write_clip(os.path.join(out_dir, f'{name}_gray.mp4'), (gray(rgb) for rgb, _ in frames), rate, crf=crf)
        print(f"{name}: {len(frames)} frames of {width}x{height} at {rate}/s -> {out_dir}/{name}.mp4, {name}_gray.mp4")
