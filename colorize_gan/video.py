"""People's videos: decoding, colorizing each frame with photo.py's full-resolution path, keeping the colour steady from
frame to frame, and encoding H.264 mp4, all streamed (a few frames in memory, whatever the video's length)."""
import os
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F

from .color import AB_SCALE, luminance, normalize_lab
from .images import decode_source, encode_source, source_record
from .photo import colorize, working_size
from .utils import UserError, atomic_write

try:
    import av  # PyAV; requirements.txt has it, a pip install only with the [video] extra (photos do not need it)
except ModuleNotFoundError:
    av = None

# what folders and globs take as videos (an explicitly named file with another extension is read as a photo)
VIDEO_EXTENSIONS = ('.3g2', '.3gp', '.asf', '.avi', '.dv', '.f4v', '.flv', '.m2ts', '.m2v', '.m4v', '.mkv', '.mov',
                    '.mp4', '.mpeg', '.mpg', '.mts', '.mxf', '.ogv', '.ts', '.vob', '.webm', '.wmv')
# audio that players take in mp4 as it is; anything else (PCM from camcorders and AVI/MOV captures, ...) becomes AAC
MP4_AUDIO = ('aac', 'mp3', 'ac3', 'eac3', 'alac', 'opus', 'flac')
TEMPORAL = 0.95  # default stabilization strength: the weight of the earlier frames' colour (0 = per-frame; bench.py)
MAX_TEMPORAL = 0.98  # 1 would freeze the first frame's colour for good
QUALITY = 18  # default x264 CRF: 0 lossless, 18 about visually lossless, 23 x264's own default, 51 worst
BATCH = 8  # frames per generator call: bounded memory, and fewer small calls
SIGMA_L = 8.0  # L units: how much the lightness of a low-resolution pixel may change before its colour history fades
CUT_THRESHOLD = 0.3  # total variation distance of two frames' lightness histograms above which a new shot begins


def is_video(path):
    """True if the file's name ends in one of VIDEO_EXTENSIONS (any case)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


def require_av():
    """Raise UserError, naming the install that adds it, where PyAV is missing (a pip install without [video])."""
    if av is None:
        raise UserError("videos need PyAV, which this install leaves out; pip install 'colorize-gan[video]' (or "
                        "pip install av)")


# -----------------------------------------------------------------------------
# temporal stabilization of the predicted colour (ab only: L is never touched)

def lightness_histogram(L, bins=32):
    """Normalized histogram [bins] of lightness L (any shape, 0-100 L units)."""
    return torch.histc(L.float(), bins, 0, 100) / L.numel()


def is_scene_cut(hist_a, hist_b, threshold=CUT_THRESHOLD):
    """True if two frames' lightness histograms (lightness_histogram) differ by more than `threshold` in total
    variation distance (half the L1 distance, 0 = same, 1 = disjoint): the classic histogram-difference shot-boundary
    test (Zhang, Kankanhalli and Smoliar, "Automatic partitioning of full-motion video", 1993)."""
    return 0.5 * (hist_a - hist_b).abs().sum().item() > threshold


def global_shift(a, b):
    """The translation (dy, dx) in px, floats, that best maps image a [h,w] onto image b [h,w] (b(y, x) ~ a(y - dy,
    x - dx)): phase correlation (Kuglin and Hines, 1975) on Hann-windowed images, refined to subpixel by a parabola
    through the correlation peak and its neighbours along each axis. Shifts wrap at half the image size."""
    h, w = a.shape
    window = torch.hann_window(h, periodic=False, device=a.device)[:, None] * \
        torch.hann_window(w, periodic=False, device=a.device)[None]
    A, B = (torch.fft.rfft2((x - x.mean()) * window) for x in (a.float(), b.float()))
    cross = B * A.conj()
    r = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-9), s=(h, w))  # [h,w], peaks at the shift
    y, x = divmod(int(r.argmax()), w)
    dy = y + _subpixel(float(r[y - 1, x]), float(r[y, x]), float(r[(y + 1) % h, x]))
    dx = x + _subpixel(float(r[y, x - 1]), float(r[y, x]), float(r[y, (x + 1) % w]))
    return (dy + h / 2) % h - h / 2, (dx + w / 2) % w - w / 2


def _subpixel(before, peak, after):
    """Offset in (-1, 1) of a phase-correlation peak from its sample at 0 given the samples either side: Foroosh,
    Zerubia and Berthod (IEEE TIP 2002), eq. 9, d = r1 / (r1 +- r0) on the larger neighbour r1, the root in (0, 1)."""
    side, r1 = (1, after) if after > before else (-1, before)
    if r1 + peak == 0:  # a flat correlation (two uniform frames, e.g. black leader): no offset to find
        return 0.0
    roots = [r1 / (r1 + peak), r1 / (r1 - peak) if r1 != peak else 2.0]
    fits = [d for d in roots if 0 <= d < 1]
    return side * min(fits) if fits else 0.0


def shift_image(x, dy, dx):
    """x [C,h,w] moved by (dy, dx) px, bicubic: out(y, x) = x(y - dy, x - dx); also a mask [h,w] of the pixels whose
    source lies inside x (False where the shift uncovers the border)."""
    C, h, w = x.shape
    ys = torch.arange(h, device=x.device, dtype=torch.float32) - dy
    xs = torch.arange(w, device=x.device, dtype=torch.float32) - dx
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    grid = torch.stack([2 * grid_x / max(w - 1, 1) - 1, 2 * grid_y / max(h - 1, 1) - 1], -1)[None]  # [1,h,w,2]
    moved = F.grid_sample(x[None].float(), grid, mode='bicubic', padding_mode='border', align_corners=True)[0]
    inside = (grid_x >= 0) & (grid_x <= w - 1) & (grid_y >= 0) & (grid_y <= h - 1)
    return moved, inside


class Stabilizer:
    """Keeps a video's predicted colour steady: a recursive filter on the low-resolution ab, motion-compensated for
    the frame's global translation (used where it matches L better than no shift), whose weight falls where the
    lightness changes.

    For each frame, the running colour (and running lightness) of the frames before is moved by the global shift
    from the previous frame to this one (global_shift, on L), then blended per pixel with this frame's prediction:
    running = w * running + (1 - w) * predicted, w = strength * exp(-d^2 / (2 SIGMA_L^2)) with d the 3x3 mean of
    L - running L, so colour settles where the content holds still (after motion compensation) and follows at once
    where lightness changes (moving objects, uncovered borders: w = 0 there). A scene cut (is_scene_cut) starts
    afresh. `strength` is the weight of history where nothing changes, in [0, MAX_TEMPORAL] (0 = per-frame
    colorization): the running colour averages about (1 + strength) / (1 - strength) frames. A temporal, guided form
    of the joint bilateral filter (Tomasi and Manduchi 1998; Eisemann and Durand 2004), run on the prediction only."""

    def __init__(self, strength=TEMPORAL, sigma_L=SIGMA_L):
        if not 0 <= strength <= MAX_TEMPORAL:
            raise ValueError(f"temporal strength {strength} must be between 0 and {MAX_TEMPORAL}")
        self.strength, self.sigma_L = strength, sigma_L
        self.L = self.ab = self.hist = None
        self.cuts = 0  # scene cuts seen (the first frame not counted)

    def __call__(self, L, ab):
        """This frame's lightness L [h,w] (L units, 0-100, at the model's working resolution) and predicted ab
        [2,h,w] (Lab units) -> the stabilized ab [2,h,w]."""
        hist = lightness_histogram(L)
        fresh = self.ab is None or self.ab.shape != ab.shape or is_scene_cut(self.hist, hist)
        self.cuts += self.ab is not None and fresh
        self.hist = hist
        if fresh or self.strength == 0:
            self.L, self.ab = L.float(), ab.float()
            return ab
        moved, inside = shift_image(torch.cat([self.L[None], self.ab]), *global_shift(self.L, L))  # [3,h,w]
        if (L - moved[0])[inside].abs().mean() > (L - self.L).abs().mean():  # a moving object, not the camera
            moved, inside = torch.cat([self.L[None], self.ab]), torch.ones_like(inside)
        change = F.avg_pool2d((L - moved[0])[None, None], 3, 1, 1, count_include_pad=False)[0, 0]  # [h,w]
        weight = self.strength * torch.exp(-0.5 * (change / self.sigma_L) ** 2) * inside  # [h,w]
        self.L = weight * moved[0] + (1 - weight) * L
        self.ab = weight * moved[1:] + (1 - weight) * ab
        return self.ab


# -----------------------------------------------------------------------------
# reading: what a file holds, and its frames upright as RGB

@dataclass
class Source:
    """What probe() finds in a video file: sizes in px as shown (rotation applied, before the even crop)."""
    width: int
    height: int
    rotation: int  # degrees (0, 90, 180, 270) the stored frames are turned counter-clockwise for display
    frames: int  # frame count the container states; 0 where it states none (mkv, webm, avi streams)
    rate: Fraction  # average frame rate, frames/s
    duration_s: float  # the video stream's duration, s (0 where unknown)
    pix_fmt: str  # the decoder's pixel format, e.g. yuv420p, yuv420p10le, gray
    audio: str = ''  # the first audio stream's codec, '' if none
    notes: list = field(default_factory=list)  # what the output will not keep, in words for people


def _open(path):
    """av.open(path) for reading; UserError naming the problem if it is not a media file FFmpeg opens."""
    require_av()
    try:
        return av.open(path, metadata_errors='replace')
    except av.error.EOFError:
        raise UserError("it ends before its first frame (a zero-length video, or cut off at its start)") from None
    except av.FFmpegError as e:
        reason = 'the file is empty' if os.path.getsize(path) == 0 else \
            f"it does not open as a video ({e.strerror or type(e).__name__}: not a video, or damaged or incomplete)"
        raise UserError(reason) from None


def _rotation(frame):
    """How a player turns this frame, from its display matrix: degrees counter-clockwise, one of 0, 90, 180, 270."""
    return int(round(frame.rotation / 90)) % 4 * 90


def recorded_source(path):
    """The record (images.source_record) a video written by colorize_video holds (the mp4's comment), or None if
    none or unreadable."""
    require_av()
    try:
        with av.open(path) as container:
            value = container.metadata.get('comment', '')
    except Exception:
        return None
    return decode_source(value) if '#' in value else None


def probe(path):
    """Source of the video at `path`, from its header and first frame. Raises UserError if it cannot be opened, has
    no video stream (an audio file), or no frame decodes."""
    with _open(path) as container:
        if not container.streams.video:
            kinds = ', '.join(sorted({s.type for s in container.streams})) or 'no streams'
            raise UserError(f"it has no video stream (it holds {kinds}); pass a video file")
        stream = container.streams.video[0]
        first = next(_decoded(container, stream), None)
        if first is None:
            raise UserError("no frame of its video stream decodes (a zero-length video, or damaged from the start)")
        rotation = _rotation(first)
        w, h = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = float(stream.duration * stream.time_base) if stream.duration else \
            (container.duration / 1e6 if container.duration else 0.0)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else ''
        notes = []
        if w % 2 or h % 2:
            notes.append(f"{w}x{h} is cropped to {w // 2 * 2}x{h // 2 * 2} (H.264 yuv420p needs even sizes)")
        depth = max(c.bits for c in first.format.components) if first.format.components else 8
        if depth > 8:
            notes.append(f"its {depth}-bit {first.format.name} frames are written as 8-bit yuv420p")
        if len(container.streams.video) > 1 or len(container.streams.audio) > 1 or container.streams.subtitles:
            notes.append("only its first video and first audio stream are kept")
        return Source(w, h, rotation, stream.frames, Fraction(rate), duration, first.format.name, audio, notes)


def _decoded(container, stream):
    """The video frames of `stream` in presentation order (av.VideoFrame), decoding only that stream."""
    stream.thread_type = 'AUTO'
    for packet in container.demux(stream):
        yield from packet.decode()


def upright_rgb(frame, rotation):
    """uint8 HxWx3 RGB of an av.VideoFrame in any pixel format (gray, 10-bit, full or limited range, ...), turned
    `rotation` degrees counter-clockwise (as players show it) and cropped to even sizes."""
    full_range = frame.color_range == 2 or frame.format.name.startswith('yuvj')
    rgb = frame.to_ndarray(format='rgb24', src_color_range='JPEG' if full_range else None)
    rgb = np.rot90(rgb, rotation // 90) if rotation else rgb
    return np.ascontiguousarray(rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2])


# -----------------------------------------------------------------------------
# writing: H.264 mp4 with the source's timestamps and audio

class _Writer:
    """An H.264 mp4 (yuv420p, BT.709, limited range) written into an open file: frames from uint8 RGB with the
    timestamps given, and the source's audio packets copied unchanged (re-encoded to AAC, with a note, for a codec mp4
    cannot hold)."""

    def __init__(self, file, width, height, rate, time_base, quality, audio=None, comment=''):
        self.out = av.open(file, 'w', format='mp4')
        if comment:
            self.out.metadata['comment'] = encode_source(comment)  # UTF-8 only: any file name's bytes, encoded
        self.video = self.out.add_stream('libx264', rate=rate)
        self.video.width, self.video.height, self.video.pix_fmt = width, height, 'yuv420p'
        self.time_base = self.video.time_base = self.video.codec_context.time_base = time_base  # pts kept as they are
        self.video.options = {'crf': str(quality)}
        cc = self.video.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = 1  # BT.709, also what write() converts with
        cc.color_range = 1  # limited (MPEG) range
        cc.thread_count = torch.get_num_threads()
        self.audio, self.transcode, self.notes, self.durations = None, False, [], {}
        if audio is not None:
            if audio.codec_context.name in MP4_AUDIO and audio.codec_context.name in self.out.supported_codecs:
                self.audio = self.out.add_stream_from_template(audio)
            else:
                self.transcode = True
                rate, layout = audio.codec_context.sample_rate, audio.codec_context.layout
                # AVI and MOV captures name their layout by count ('1 channels'), which the encoder does not take
                layout = {1: 'mono', 2: 'stereo'}.get(layout.nb_channels, layout.name)
                self.audio = self.out.add_stream('aac', rate=rate)
                self.audio.layout, self.audio.format = layout, 'fltp'  # the AAC encoder's planar float
                self.resampler = av.AudioResampler(format='fltp', layout=layout, rate=rate)
                self.notes.append(f"its {audio.codec_context.name} audio does not play from mp4 as it is and is "
                                  "re-encoded as AAC")

    def write(self, rgb, pts, duration=0):
        """Encode one uint8 HxWx3 RGB frame at `pts`, shown for `duration` (time-base units; 0 = unknown)."""
        frame = av.VideoFrame.from_ndarray(rgb, format='rgb24').reformat(
            format='yuv420p', dst_colorspace='ITU709', dst_color_range='MPEG')
        frame.pts, frame.time_base = pts, self.time_base
        self.durations[pts] = duration
        self._mux_video(self.video.encode(frame))

    def _mux_video(self, packets):
        """Mux encoded packets, each with its frame's own duration (x264 does not carry it; the mp4's last sample
        needs it for the duration to be the source's)."""
        for packet in packets:  # the muxer may have given the stream another time base: packets come in that one
            duration = self.durations.pop(round(packet.pts * packet.time_base / self.time_base), 0)
            packet.duration = round(duration * self.time_base / packet.time_base) or packet.duration
            self.out.mux(packet)

    def copy_audio(self, packet):
        """Mux one audio packet of the source (skipping the demuxer's empty flush packets)."""
        if packet.dts is None or packet.size == 0:
            return
        if self.transcode:
            for frame in packet.decode():
                for converted in self.resampler.resample(frame):
                    self.out.mux(self.audio.encode(converted))
        else:
            packet.stream = self.audio
            self.out.mux(packet)

    def close(self):
        """Flush the encoders and write the mp4's index."""
        self._mux_video(self.video.encode(None))
        if self.transcode:
            self.out.mux(self.audio.encode(None))
        self.out.close()


# -----------------------------------------------------------------------------
# the pipeline

class _Prediction:
    """A stand-in generator that hands photo.colorize a prediction already made (network-scale ab [1,2,h,w]), so each
    frame goes through photo.py's own full-resolution path with its stabilized colour."""

    def __init__(self, ab, G):
        self.ab, self.config, self.multiple, self.hints = ab, G.config, G.multiple, False

    def __call__(self, L, hints=None):
        if L.shape[-2:] != self.ab.shape[-2:]:
            raise RuntimeError(f"photo.colorize works at {tuple(L.shape[-2:])}, the prediction is at "
                               f"{tuple(self.ab.shape[-2:])}")
        return self.ab


@torch.inference_mode()
def colorize_frames(G, frames, stabilizer, size=0, device='cpu', saturation=1.0, upsample='bicubic'):
    """Colorize consecutive frames (uint8 HxWx3 RGB, one size): one generator call for the batch, the predicted ab
    stabilized frame by frame (Stabilizer), then photo.colorize's full-resolution path per frame, so each output
    frame's L is its input's. Returns a list of uint8 HxWx3 RGB."""
    H, W = frames[0].shape[:2]
    h, w = working_size(H, W, size, G.multiple, G.config['image_size'])
    L_small = torch.cat([F.interpolate(luminance(f)[None, None].to(device), size=(h, w), mode='area')
                         for f in frames])  # [B,1,h,w], 0-100, as photo.colorize makes it
    ab = G(normalize_lab(L_small)[0]).float() * AB_SCALE if saturation else \
        torch.zeros(len(frames), 2, h, w, device=L_small.device)  # [B,2,h,w], Lab units
    return [colorize(_Prediction(stabilizer(L_small[i, 0], ab[i])[None] / AB_SCALE, G), frame, size, device,
                     saturation, upsample=upsample) for i, frame in enumerate(frames)]


@dataclass
class Result:
    """What colorize_video wrote."""
    frames: int  # frames written
    width: int  # px, of the output
    height: int
    stopped: str = ''  # where a damaged or truncated stream stopped decoding, in words; '' if it decoded to the end
    notes: list = field(default_factory=list)  # what the output does not keep, in words


def colorize_video(G, path, out_path, size=0, device='cpu', saturation=1.0, temporal=TEMPORAL, quality=QUALITY,
                   upsample='bicubic', side_by_side=False, progress=None, settings=''):
    """Colorize the video at `path` into an H.264 mp4 at `out_path` (temporary file, then rename); returns a Result.

    Frames are decoded, colorized in batches of BATCH (colorize_frames) and encoded as they go, so memory does not
    grow with the video's length. The output keeps the frames (all of them, upright as players show them, sizes
    cropped to even), their timestamps (so the frame rate, a variable one too, and the duration), and the first audio
    stream's packets unchanged. `temporal` is the Stabilizer's strength (0 = per-frame), `quality` x264's CRF,
    `side_by_side` puts the input left of the output. `progress(done, total)` is called after each batch (total 0 if
    unknown); an exception it raises stops the work and leaves no output. A stream that breaks off is colorized up to
    where it decodes (Result.stopped says where). The mp4's comment holds images.source_record(path, settings).
    Raises UserError for a file that is not a video, has no video
    stream or no frames, or an unusable setting."""
    if not 0 <= quality <= 51:
        raise UserError(f"video quality (CRF) {quality} must be between 0 (lossless) and 51; 18 is about visually "
                        "lossless")
    if not 0 <= temporal <= MAX_TEMPORAL:
        raise UserError(f"temporal strength {temporal} must be between 0 (per-frame) and {MAX_TEMPORAL}")
    source = probe(path)
    stabilizer = Stabilizer(temporal)
    width, height = source.width // 2 * 2 * (2 if side_by_side else 1), source.height // 2 * 2
    total = source.frames or int(source.duration_s * source.rate)
    result = Result(0, width, height, notes=list(source.notes))

    def transcode(file):
        with _open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = 'AUTO'
            audio = container.streams.audio[0] if container.streams.audio else None
            writer = _Writer(file, width, height, source.rate, stream.time_base, quality, audio,
                             source_record(path, settings))
            result.notes += writer.notes
            step = max(1, round(1 / (source.rate * stream.time_base)))  # one frame, in time-base units
            batch, first_pts, last_pts, last_duration, coded = [], None, None, 0, None

            def flush():
                colored = colorize_frames(G, [rgb for rgb, _, _ in batch], stabilizer, size, device, saturation,
                                          upsample)
                for (rgb, pts, duration), out in zip(batch, colored):
                    writer.write(np.concatenate([rgb, out], 1) if side_by_side else out, pts, duration)
                result.frames += len(batch)
                batch.clear()
                if progress:
                    progress(result.frames, total)

            try:
                for packet in container.demux(*[s for s in (stream, audio) if s is not None]):
                    if packet.stream is not stream:
                        writer.copy_audio(packet)
                        continue
                    for frame in packet.decode():
                        coded = coded or (frame.width, frame.height)
                        if (frame.width, frame.height) != coded:  # a size change mid-stream: back to the first
                            frame = frame.reformat(width=coded[0], height=coded[1])
                        pts = frame.pts if frame.pts is not None else (last_pts + step if last_pts is not None else 0)
                        last_pts = pts if last_pts is None else max(pts, last_pts + 1)  # strictly increasing
                        first_pts = last_pts if first_pts is None else first_pts
                        last_duration = frame.duration or step
                        batch.append((upright_rgb(frame, source.rotation), last_pts, frame.duration or 0))
                        if len(batch) == BATCH:
                            flush()
            except av.FFmpegError as e:
                reason = e.strerror or type(e).__name__
                result.stopped = f"decoding stopped after frame {result.frames + len(batch)} ({reason})"
            if batch:
                flush()
            writer.close()
            decoded_s = float((last_pts + last_duration - first_pts) * stream.time_base) if result.frames else 0.0
            if not result.stopped and (source.frames > result.frames or
                                       decoded_s < source.duration_s - max(2 / source.rate, 0.1)):
                result.stopped = (f"it breaks off after frame {result.frames}" + (f" of {source.frames}" if
                                  source.frames else '') + f" ({decoded_s:.2f} s of {source.duration_s:.2f} s)")
            if result.frames == 0:
                raise UserError(f"no frame decodes ({result.stopped or 'the video stream is empty'})")

    atomic_write(out_path, transcode)
    return result
