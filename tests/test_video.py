"""Videos: what colorize.py keeps (size, frames, timestamps, audio, lightness, rotation), the colour stabilizer, the
flicker metrics, and bad inputs, each a line and never a traceback. Clips are made here, a few dozen small frames."""
import json
import os

import av
import numpy as np
import pytest
import torch
from skimage import color as skcolor
from skimage import data as skdata

from colorize_gan import checkpoint, metrics, video
from colorize_gan.models import Generator
from conftest import run
from tools.make_clips import gray, write_clip


class ConstantAB:
    """A generator that predicts the same network-scale ab everywhere, with the attributes the pipelines read."""

    def __init__(self, a=0.2, b=-0.1):
        self.ab, self.config, self.multiple, self.hints = torch.tensor([a, b]).view(1, 2, 1, 1), {'image_size': 32}, \
            16, False

    def __call__(self, L, hints=None):
        return self.ab.expand(L.shape[0], -1, *L.shape[2:])


def pan(n=24, width=96, height=64, step=2):
    """n gray frames (HxWx3 uint8) of a pan across the astronaut photo, `step` px to the right per frame."""
    photo = skdata.astronaut()[::3, ::3]
    return [gray(np.ascontiguousarray(photo[20:20 + height, i * step:i * step + width])) for i in range(n)]


def frames_of(path):
    """(uint8 RGB frames, pts, time base, duration in s) of a video's first video stream."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        decoded = list(c.decode(stream))
        return [f.to_ndarray(format='rgb24') for f in decoded], [f.pts for f in decoded], stream.time_base, \
            stream.duration and stream.duration * stream.time_base


def audio_packets(path):
    """The bytes of every audio packet of a file."""
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


@pytest.fixture(scope='module')
def tiny_generator(tmp_path_factory):
    """A small random generator exported like the shipped ones, for colorize.py --checkpoint."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('g') / 'g.safetensors'
    checkpoint.export_generator(str(path), Generator(8, 32).eval())
    return path


def test_a_video_keeps_its_size_frames_timestamps_duration_audio_and_lightness(tmp_path, tiny_generator):
    src = tmp_path / 'clip.mp4'
    frames = pan()
    steps = [100 if i % 3 else 200 for i in range(len(frames))]  # a variable frame rate
    write_clip(str(src), frames, rate=25, audio_s=1.2, timestamps=list(np.cumsum([0] + steps[:-1])))
    proc = run('colorize.py', src, f'--out_dir={tmp_path / "out"}', f'--checkpoint={tiny_generator}',
               '--video_quality=10', '--device=cpu')
    assert 'wrote 1, failed 0' in proc.stdout and 'clip.mp4 -> ' in proc.stdout
    out_frames, out_pts, out_base, out_seconds = frames_of(tmp_path / 'out' / 'clip.mp4')
    in_frames, in_pts, in_base, in_seconds = frames_of(src)
    assert len(out_frames) == len(in_frames) == 24 and out_frames[0].shape == (64, 96, 3)
    assert out_pts == in_pts and out_base == in_base and out_seconds == in_seconds
    assert audio_packets(tmp_path / 'out' / 'clip.mp4') == audio_packets(src)  # copied, not re-encoded
    L_in = np.stack([skcolor.rgb2lab(f)[..., 0] for f in in_frames])
    L_out = np.stack([skcolor.rgb2lab(f)[..., 0] for f in out_frames])
    assert np.abs(L_out - L_in).mean() < 1.0  # the codec's rounding, chroma subsampling included


def test_the_pipeline_adds_colour_keeps_lightness_and_writes_nothing_when_stopped(tmp_path):
    src, out = tmp_path / 'c.mkv', tmp_path / 'c.mp4'
    write_clip(str(src), pan(12), crf=0)
    result = video.colorize_video(ConstantAB(), str(src), str(out), device='cpu', quality=0, temporal=0.9)
    assert (result.frames, result.width, result.height, result.stopped) == (12, 96, 64, '')
    lab_in = skcolor.rgb2lab(frames_of(src)[0][5])
    lab_out = skcolor.rgb2lab(frames_of(out)[0][5])
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() < 0.6
    assert lab_out[16:-16, 16:-16, 1].mean() == pytest.approx(22, abs=3)  # a = 0.2 x 110
    calls = []

    def stop(done, total):
        calls.append((done, total))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        video.colorize_video(ConstantAB(), str(src), str(tmp_path / 'stopped.mp4'), progress=stop)
    assert calls == [(video.BATCH, 12)] and sorted(p.name for p in tmp_path.iterdir()) == ['c.mkv', 'c.mp4']


def test_a_rotated_phone_clip_comes_out_upright(tmp_path):
    frame = np.full((48, 80, 3), 60, np.uint8)
    frame[:8, :16] = 220  # a bright corner at the stored frame's top left
    write_clip(str(tmp_path / 'phone.mp4'), [frame] * 6, rotation=90)
    video.colorize_video(ConstantAB(0, 0), str(tmp_path / 'phone.mp4'), str(tmp_path / 'out.mp4'), quality=0)
    out = frames_of(tmp_path / 'out.mp4')[0][0][..., 0].astype(int)
    assert out.shape == (80, 48)  # shown upright, as players show the input: 90 degrees counter-clockwise
    assert out[-4:, :4].mean() > 180 and out[:4, :4].mean() < 100  # the corner went to the bottom left


def test_the_stabilizer_calms_noisy_colour_follows_motion_and_restarts_at_a_cut():
    torch.manual_seed(0)
    L = torch.rand(32, 48).mul(60).add(20)
    L = torch.nn.functional.avg_pool2d(L[None, None], 5, 1, 2)[0, 0]  # smooth texture
    truth = torch.tensor([20.0, -10.0]).view(2, 1, 1)
    stabilizer, per_frame, stable = video.Stabilizer(0.9), [], []
    for t in range(30):
        noisy = truth + torch.randn(2, 32, 48) * 3
        per_frame.append(noisy)
        stable.append(stabilizer(L, noisy))
    flicker = lambda seq: np.mean([(b - a).norm(dim=0).mean() for a, b in zip(seq[10:], seq[11:])])  # noqa: E731
    assert flicker(stable) < 0.3 * flicker(per_frame)
    assert (stable[-1] - truth).norm(dim=0).mean() < 0.5 * (per_frame[-1] - truth).norm(dim=0).mean()
    # a new shot: lightness histogram changes completely, the colour is this frame's own at once
    dark, red = L * 0.2, torch.tensor([40.0, 30.0]).view(2, 1, 1).expand(2, 32, 48)
    assert torch.equal(stabilizer(dark, red), red) and stabilizer.cuts == 1
    # a bright square moves in on the same shot: where L changed, the colour is the new prediction's
    moved = dark.clone()
    moved[8:16, 8:16] += 40
    blue = torch.tensor([-30.0, -40.0]).view(2, 1, 1).expand(2, 32, 48)
    out = stabilizer(moved, blue)
    assert (out[:, 9:15, 9:15] - blue[:, 9:15, 9:15]).abs().max() < 2
    assert (out[:, 24:, 30:] - red[:, 24:, 30:]).abs().max() < 0.2 * 70  # elsewhere it stays close to red
    with pytest.raises(ValueError):
        video.Stabilizer(1.0)


def test_global_shift_finds_a_pan():
    L = torch.from_numpy(skcolor.rgb2lab(skdata.astronaut()[::4, ::4])[..., 0]).float()
    a, b = L[20:84, 10:106], L[23:87, 5:101]  # b(y, x) = a(y + 3, x - 5): a shift of (-3, 5)
    dy, dx = video.global_shift(a, b)
    assert (dy, dx) == (pytest.approx(-3, abs=0.1), pytest.approx(5, abs=0.1))


def test_warping_error_follows_the_motion_and_leaves_out_uncovered_pixels():
    torch.manual_seed(0)
    ab = torch.randn(2, 40, 64) * 10
    moved = torch.roll(ab, 3, dims=2)  # content moved 3 px right; the 3 columns on the left wrap (uncovered)
    moved[:, :, :3] = 99
    flow = torch.stack(torch.meshgrid(torch.arange(40.0), torch.arange(64.0), indexing='ij')[::-1]) + \
        torch.tensor([3.0, 0.0]).view(2, 1, 1)  # each pixel of frame t is 3 px to the right in frame t+1
    assert metrics.warping_error(ab, moved, flow, block=1) == pytest.approx(0, abs=1e-5)
    assert metrics.warping_error(ab, moved, flow, block=8) == pytest.approx(0, abs=1e-5)
    assert metrics.warping_error(ab, moved + torch.tensor([3.0, 4.0]).view(2, 1, 1), flow) == pytest.approx(5)
    still = torch.stack(torch.meshgrid(torch.arange(40.0), torch.arange(64.0), indexing='ij')[::-1])
    assert metrics.warping_error(ab, moved, still, block=1) > 5  # the wrong motion: a large error


def test_cdc_is_the_mean_js_divergence_of_rgb_histograms_at_gaps_1_2_4():
    from scipy.spatial.distance import jensenshannon
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) // (1 + i % 3) for i in range(9)]
    hists = torch.stack([metrics.color_histograms(f) for f in frames])
    want = np.mean([np.mean([np.mean([jensenshannon(hists[i, c], hists[i + g, c]) ** 2 for c in range(3)])
                             for i in range(len(frames) - g)]) for g in (1, 2, 4)])
    assert metrics.color_distribution_consistency(hists) == pytest.approx(want, rel=1e-6)
    assert metrics.color_distribution_consistency(torch.stack([hists[0]] * 5)) == 0


def test_bad_videos_get_one_line_each_and_the_others_go_through(tmp_path, tiny_generator):
    folder = tmp_path / 'in'
    folder.mkdir()
    noise = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(30)]
    (folder / 'text.mp4').write_text('not a video at all')
    write_clip(str(folder / 'audio_only.mp4'), [], audio_s=0.5)
    with av.open(str(folder / 'empty.mkv'), 'w', format='matroska') as out:  # a video stream with no frames
        stream = out.add_stream('libx264', rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, 'yuv420p'
        out.start_encoding()
    write_clip(str(folder / 'whole.mkv'), noise)
    data = (folder / 'whole.mkv').read_bytes()
    (folder / 'cut.mkv').write_bytes(data[:len(data) * 2 // 3])
    (folder / 'whole.mkv').unlink()
    write_clip(str(folder / 'cut_mp4.mp4'), noise)
    data = (folder / 'cut_mp4.mp4').read_bytes()
    (folder / 'cut_mp4.mp4').write_bytes(data[:len(data) // 2])  # its index (moov) is at the end: lost
    write_clip(str(folder / 'odd.mp4'), [f[:47, :63] for f in noise[:5]], pix_fmt='yuv444p')
    write_clip(str(folder / 'ten_bit.mp4'), noise[:5], pix_fmt='yuv420p10le')
    write_clip(str(folder / 'gray.mkv'), [gray(f) for f in noise[:5]], pix_fmt='gray', codec='ffv1')
    proc = run('colorize.py', folder, f'--out_dir={tmp_path / "out"}', f'--checkpoint={tiny_generator}',
               '--device=cpu', check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert 'Traceback' not in proc.stderr and proc.returncode == 1
    assert len(errors) == 5, proc.stdout + proc.stderr
    said = {name: next(line for line in errors if f"/{name}'" in line) for name in
            ('text.mp4', 'audio_only.mp4', 'empty.mkv', 'cut.mkv', 'cut_mp4.mp4')}
    assert 'does not open as a video' in said['text.mp4'] and 'does not open as a video' in said['cut_mp4.mp4']
    assert 'no video stream (it holds audio)' in said['audio_only.mp4']
    assert 'ends before its first frame' in said['empty.mkv']
    assert 'damaged or incomplete' in said['cut.mkv'] and 'kept' in said['cut.mkv']
    assert 'wrote 4, failed 4' in proc.stdout and '1 partial' in proc.stdout
    out = tmp_path / 'out' / 'in'  # folders keep their name, as for photos
    assert sorted(p.name for p in out.iterdir()) == ['cut.partial.mp4', 'gray.mp4', 'odd.mp4', 'ten_bit.mp4']
    kept = frames_of(out / 'cut.partial.mp4')[0]
    assert 5 <= len(kept) < 30 and f'{len(kept)} frames before' in said['cut.mkv']
    assert frames_of(out / 'odd.mp4')[0][0].shape == (46, 62, 3) and 'cropped to 62x46' in proc.stdout
    assert '10-bit' in proc.stdout and len(frames_of(out / 'ten_bit.mp4')[0]) == 5
    assert len(frames_of(out / 'gray.mp4')[0]) == 5
    again = run('colorize.py', folder / 'cut.mkv', f'--out_dir={tmp_path / "out"}', f'--checkpoint={tiny_generator}',
                '--device=cpu', check=False)  # a rerun: the damaged input is tried again, never taken as done
    assert again.returncode == 1 and '1 partial' in again.stdout and 'already done' not in again.stdout


@pytest.mark.slow
def test_bench_reports_flicker_mae_and_speed_of_videos():
    proc = run('bench.py', '--only_video', '--video_seconds=0.2', '--video_clips=pan_astronaut', '--device=cpu',
               '--as_json')
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    mean = result['video_scores']['mean']
    assert set(result['video_scores']) == {'pan_astronaut', 'mean'}
    for kind in ('real', 'gray', 'per_frame', 'stabilized'):
        assert mean[kind]['warp'] >= 0 and mean[kind]['mae'] > 0 and mean[kind]['cdc'] >= 0, kind
    assert mean['gray']['warp'] < 0.5 < mean['per_frame']['warp']  # gray has no colour to flicker
    assert result['video_fps_640x360'] > result['video_fps_1280x720'] > 0
    for args, message in ((['--video_clips=,'], "--video_clips=',' names no clip"),
                          (['--video_clips=pan_astronaut,nope'], 'nope is not a clip'),
                          (['--video_seconds=0'], 'or 0 for no video figures (then without --only_video)'),
                          (['--video_seconds=0.01'], 'pass at least 0.2'), (['--matmul_max=0'], 'at least 64')):
        bad = run('bench.py', '--only_video', *args, '--device=cpu', check=False)
        assert bad.returncode == 1 and message in bad.stderr and 'frames/s' not in bad.stdout, args


def test_black_leader_pcm_audio_in_avi_and_transport_streams_go_through(tmp_path, tiny_generator):
    """What old films and digitized tapes hold: black frames (a flat correlation for the stabilizer's motion
    estimate), PCM audio as camcorder MOV and AVI captures hold it (re-encoded to AAC: mp4 players do not take PCM),
    and MPEG-TS files."""
    folder = tmp_path / 'in'
    folder.mkdir()
    picture = pan(5)
    write_clip(str(folder / 'leader.mp4'), [np.zeros((64, 96, 3), np.uint8)] * 6 + picture)
    write_clip(str(folder / 'capture.mov'), picture, audio_s=0.5, audio_codec='pcm_s16le')
    write_clip(str(folder / 'broadcast.ts'), picture, container='mpegts')
    proc = run('colorize.py', folder, f'--out_dir={tmp_path / "out"}', f'--checkpoint={tiny_generator}',
               '--device=cpu', check=False)
    assert proc.returncode == 0 and 'wrote 3, failed 0' in proc.stdout, proc.stdout + proc.stderr
    out = tmp_path / 'out' / 'in'
    assert len(frames_of(out / 'leader.mp4')[0]) == 11 and len(frames_of(out / 'broadcast.mp4')[0]) == 5
    with av.open(str(out / 'capture.mp4')) as c:
        assert c.streams.audio[0].codec_context.name == 'aac'
    assert 'pcm_s16le audio does not play from mp4 as it is and is re-encoded as AAC' in proc.stdout


@pytest.mark.slow  # a separate process, stopped by a signal
def test_sigterm_during_a_video_drops_it_and_leaves_no_temporary_file(tmp_path, tiny_generator):
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO
    write_clip(str(tmp_path / 'long.mp4'), pan(24) * 25)  # 600 frames: seconds of work
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'colorize.py'), str(tmp_path / 'long.mp4'),
                             f'--out_dir={tmp_path / "o"}', f'--checkpoint={tiny_generator}', '--device=cpu'],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    deadline = time.time() + 60  # until the video's temporary file exists: it is being written
    while time.time() < deadline and not (tmp_path / 'o').exists() or not os.listdir(tmp_path / 'o'):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and 'Traceback' not in err and 'SIGTERM: stopping' in err, err  # 128 + 15
    assert os.listdir(tmp_path / 'o') == []  # neither a half-written video nor its temporary file


def test_a_video_output_made_from_another_input_is_not_taken_as_done(tmp_path, tiny_generator):
    write_clip(str(tmp_path / 'basic.mp4'), pan(4))
    write_clip(str(tmp_path / 'basic.mov'), pan(4, step=3))
    args = (f'--out_dir={tmp_path / "o"}', f'--checkpoint={tiny_generator}', '--device=cpu')
    run('colorize.py', tmp_path / 'basic.mp4', *args)
    other = run('colorize.py', tmp_path / 'basic.mov', *args, check=False)
    assert other.returncode == 1 and "was made from another input ('basic.mp4')" in other.stderr
    assert 'already done 1' in run('colorize.py', tmp_path / 'basic.mp4', *args).stdout


def test_a_video_whose_name_is_not_utf8_is_colorized_and_then_taken_as_done(tmp_path, tiny_generator):
    # old archives carry Latin-1 names; the mp4's metadata takes UTF-8 only, so the recorded source is encoded
    name = os.fsdecode(b'latin\xe9.mp4')
    write_clip(os.path.join(str(tmp_path), name), pan(3))
    args = (os.path.join(str(tmp_path), name), f'--out_dir={tmp_path / "o"}', f'--checkpoint={tiny_generator}',
            '--device=cpu')
    assert 'wrote 1, failed 0' in run('colorize.py', *args).stdout
    assert 'already done 1' in run('colorize.py', *args).stdout
