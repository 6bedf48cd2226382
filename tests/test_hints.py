"""Simulated users: the hints train.py feeds the generator (Zhang et al. 2017)."""
import pytest
import torch

from colorize_gan.color import normalize_lab, rgb_to_lab
from colorize_gan.hints import hint_map, load_hints_file, parse_hint, sample_hints


def test_each_hint_reveals_the_mean_colour_of_its_square_patch():
    ab = torch.randn(300, 2, 16, 20)
    hints = sample_hints(ab, torch.Generator().manual_seed(1), p_none=0, max_hints=1)
    sides = set()
    for i in range(len(ab)):
        ys, xs = torch.nonzero(hints[i, 2], as_tuple=True)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        assert len(ys) == (y1 - y0) * (x1 - x0) and y1 - y0 == x1 - x0  # one filled square
        sides.add(int(y1 - y0))
        patch_mean = ab[i, :, y0:y1, x0:x1].mean((1, 2))
        assert torch.allclose(hints[i, :2, y0:y1, x0:x1], patch_mean.view(2, 1, 1).expand(-1, y1 - y0, x1 - x0),
                              atol=1e-5)
        assert (hints[i, :2][:, hints[i, 2] == 0] == 0).all()  # hint_ab is 0 wherever there is no hint
    assert sides == set(range(1, 10))  # patches of 1 to 9 px


def test_what_the_generator_sees_of_a_simulated_hint_is_the_centre_of_its_patch():
    ab = torch.randn(300, 2, 16, 20)
    alone = sample_hints(ab, torch.Generator().manual_seed(1), p_none=0, max_hints=1)
    hints, seen = sample_hints(ab, torch.Generator().manual_seed(1), p_none=0, max_hints=1, model_side=4)
    assert torch.equal(hints, alone)  # the same draws: the full hints are those without model_side
    for i in range(len(ab)):
        ys, xs = torch.nonzero(hints[i, 2], as_tuple=True)
        y0, x0, side = ys.min(), xs.min(), int(ys.max() + 1 - ys.min())
        cut = min(side, 4)
        c0, c1 = y0 + (side - cut) // 2, x0 + (side - cut) // 2
        want = torch.zeros(3, 16, 20)
        want[:, c0:c0 + cut, c1:c1 + cut] = hints[i, :, c0:c0 + cut, c1:c1 + cut]  # the centred square, same colour
        assert torch.equal(seen[i], want)


def test_how_many_hints_and_reproducibility():
    ab = torch.rand(4000, 2, 12, 12) - 0.5
    hints = sample_hints(ab, torch.Generator().manual_seed(0), p_none=0.5, max_hints=32, max_patch=1)
    count = hints[:, 2].flatten(1).sum(1)  # 1-px patches: pixels = hints (less the few that land on each other)
    assert (count == 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    some = count[count > 0]
    assert some.mean().item() == pytest.approx(8.0, rel=0.1)  # 1 + Geometric(1/8): mean 8
    assert some.max() <= 32
    again = sample_hints(ab, torch.Generator().manual_seed(0), p_none=0.5, max_hints=32, max_patch=1)
    assert torch.equal(hints, again)  # the same generator state, the same hints: resume stays exact


def test_people_s_hints_parse_from_the_command_line_and_json(tmp_path):
    assert parse_hint('120,80,#1f4fbf') == {'x': 120.0, 'y': 80.0, 'color': (31, 79, 191), 'radius': 0.0}
    assert parse_hint(' 3, 4, red, 5 ')['color'] == (255, 0, 0) and parse_hint('3,4,navy,5')['radius'] == 5
    import numpy as np

    from colorize_gan.hints import make_hint
    # what a browser's colour picker writes (fractions), and a colour read off a photo's pixel (numpy numbers)
    assert make_hint(1, 2, 'rgba(12.5, 200.3, 30.1, 1)')['color'] == (12, 200, 30)
    assert make_hint(1, 2, tuple(np.array([190, 3, 4], np.uint8)))['color'] == (190, 3, 4)
    assert make_hint(1, 2, np.array([255.0, 0, 0]))['color'] == (255, 0, 0)
    for colour in ('rgba(300, 0, 0, 1)', (1, 2), (True, 0, 0), (256, 0, 0), (float('nan'), 0, 0)):
        with pytest.raises(ValueError, match=r'unknown colour .*or rgb\(r, g, b\) with 0-255 values'):
            make_hint(1, 2, colour)
    with pytest.raises(ValueError, match=r'an rgb\(\) colour holds commas: give it as hex here'):
        parse_hint('10,10,rgb(255,0,0)')  # the command line splits it at its commas
    from colorize_gan.hints import hints_from_list
    one = {'x': 1, 'y': 2, 'color': 'red'}
    for per_image in ([[one], []], [[one], None]):  # what a list of images with hints of their own would look like
        with pytest.raises(ValueError, match='one list of hints for every image, not one list per image'):
            hints_from_list(per_image)
    with pytest.raises(ValueError) as refused:  # the command line: no rgb() offered where it cannot be given
        parse_hint('100,100,notacolour')
    assert 'rgb(r, g, b)' not in str(refused.value) and 'an rgb() colour fits in a --hints file' in str(refused.value)
    for bad, message in [('1,2', 'is not x,y,colour'), ('1,2,blurple', "unknown colour 'blurple'"),
                         ('a,2,red', 'must be numbers'), ('1,2,red,-3', 'radius between 0 and 100000'),
                         ('1,2,red,1e300', 'radius between'), ('nan,2,red', 'finite')]:
        with pytest.raises(ValueError, match=message):
            parse_hint(bad)
    (tmp_path / 'h.json').write_text('[{"x": 1, "y": 2, "color": "#ff0000", "radius": 3}]')
    assert load_hints_file(tmp_path / 'h.json')[0]['radius'] == 3
    (tmp_path / 'bom.json').write_bytes(b'\xef\xbb\xbf' + (tmp_path / 'h.json').read_bytes())  # as Notepad saves it
    assert load_hints_file(tmp_path / 'bom.json') == load_hints_file(tmp_path / 'h.json')
    (tmp_path / 'by_name.json').write_text('{"a.jpg": [{"x": 1, "y": 2, "color": "green"}]}')
    assert load_hints_file(tmp_path / 'by_name.json')['a.jpg'][0]['color'] == (0, 128, 0)
    (tmp_path / 'broken.json').write_text('[{"x": 1,\n "y": }]')
    with pytest.raises(ValueError, match='not valid JSON .* at line 2'):
        load_hints_file(tmp_path / 'broken.json')
    (tmp_path / 'no_color.json').write_text('[{"x": 1, "y": 2}]')
    with pytest.raises(ValueError, match=r'\[0\] needs x, y and color'):
        load_hints_file(tmp_path / 'no_color.json')
    (tmp_path / 'typo.json').write_text('[{"x": 1, "y": 2, "color": "red", "radus": 30}]')
    with pytest.raises(ValueError, match=r"\[0\] has 'radus', which a hint does not take"):
        load_hints_file(tmp_path / 'typo.json')


def test_the_hint_map_puts_each_colour_s_ab_at_its_place_on_the_working_grid():
    hints = [parse_hint('150,30,#0000ff'), parse_hint('10,90,red,20')]  # on a 100 x 200 photo, a 32 x 64 grid
    m = hint_map(hints, 100, 200, 32, 64)
    assert m.shape == (1, 3, 32, 64)
    blue = normalize_lab(rgb_to_lab(torch.tensor([0.0, 0, 1]).view(1, 3, 1, 1)))[1].flatten()
    assert torch.allclose(m[0, :2, int(30 * 0.32), int(150 * 0.32)], blue, atol=1e-5) and m[0, 2].sum() > 1
    red_cells = m[0, 2, :, :12].sum()
    assert 60 < red_cells < 130 and m[0, 1, int(90 * .32), int(10 * .32)] > 0.3  # a disk of radius 20 px, b of red > 0
    assert m[0, 2, :16, 20:40].sum() == 0 and (m[0, :2][:, m[0, 2] == 0] == 0).all()  # nothing elsewhere
    with pytest.raises(ValueError, match=r'outside the photo \(200x100 px\)'):
        hint_map([parse_hint('200,5,red')], 100, 200, 32, 64)
    capped = hint_map(hints, 100, 200, 32, 64, max_radius=2)  # what the generator sees: at most 2 cells of radius
    assert 9 <= capped[0, 2, :, :12].sum() <= 13 and capped[0, 2, int(90 * .32), int(10 * .32)] == 1  # ~ pi * 2^2
    assert torch.equal(capped[0, :, :, 32:], m[0, :, :, 32:])  # the point hint (radius 0) is as it was
    # a squeezed grid (cells 3 px tall, 12.5 px wide on a 100 x 800 photo): still 2 cells, not 2 cells' worth of px
    squeezed = hint_map([parse_hint('400,50,red,100')], 100, 800, 32, 64, max_radius=2)
    whole = hint_map([parse_hint('400,50,red,100')], 100, 800, 32, 64)
    # overlaps: a small hint inside a large one wins its cells (in either order); hints of one radius are averaged
    ab_of = lambda name: normalize_lab(rgb_to_lab(torch.tensor(name).view(1, 3, 1, 1) / 255.0))[1].flatten()
    red, green = ab_of([255.0, 0, 0]), ab_of([0, 128.0, 0])
    for order in (1, -1):
        both = hint_map([parse_hint('100,50,green,80'), parse_hint('100,50,red')][::order], 100, 200, 32, 64)
        assert torch.allclose(both[0, :2, 16, 32], red, atol=1e-5)  # the point's cell: red
        assert torch.allclose(both[0, :2, 16, 40], green, atol=1e-5)  # the rest of the disc: green
    same = hint_map([parse_hint('100,50,green,5'), parse_hint('100,50,red,5')], 100, 200, 32, 64)
    assert torch.allclose(same[0, :2, 16, 32], (red + green) / 2, atol=1e-5)
    assert 9 <= squeezed[0, 2].sum() <= 13 and whole[0, 2].sum() > 100


class PassHints(torch.nn.Module):
    """A stand-in generator that answers each hint with its own ab (and gray elsewhere): the pipeline, not learning."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config, self.multiple, self.hints = {'image_size': 32}, 16, True

    def forward(self, L, hints=None):
        return torch.zeros_like(L).expand(-1, 2, -1, -1) if hints is None else hints[:, :2] * hints[:, 2:]


def test_a_hint_s_correction_spreads_over_flat_lightness_fades_with_distance_and_stops_at_edges():
    from colorize_gan.hints import spread_hints
    L = torch.full((1, 1, 40, 80), 30.0)
    L[..., 40:] = 80.0  # an edge of 50 L units down the middle
    ab = torch.zeros(1, 2, 40, 80)
    ab[:, 0] = 5.0  # what the generator predicted: a faint a everywhere
    hints = torch.zeros(1, 3, 40, 80)
    hints[0, :2, 20, 30] = torch.tensor([45.0, -20.0]) / 110  # one hint, left of the edge
    hints[0, 2, 20, 30] = 1
    out = spread_hints(L, ab, hints, spread=0.5)
    assert torch.allclose(out[0, :, 20, 30], torch.tensor([45.0, -20.0]), atol=1e-4)  # the hint's own colour
    change = (out - ab).norm(dim=1)[0, 20]  # along the hint's row
    assert change[29] > 0.5 * change[30] and change[29] > change[20] > change[10] > change[0] > 1  # fades, reaches
    assert change[40:].max() < 0.01 * change[30]  # beyond the edge: untouched
    assert torch.equal(spread_hints(L, ab, hints, spread=0), ab)  # 0: the generator's own use alone
    assert torch.equal(spread_hints(L, ab, torch.zeros_like(hints)), ab)  # no hints: nothing to spread
    for bad in (1e-100, float('nan'), -0.1, 4.5, True, '0.3'):  # too small to reach a cell, or no spread at all
        with pytest.raises(ValueError, match='hint_spread='):
            spread_hints(L, ab, hints, spread=bad)


def test_the_spread_is_round_in_the_photo_where_the_working_grid_squeezes_it():
    from colorize_gan.hints import spread_hints
    # 160 rows x 40 columns of cells 4 px wide and 1 px tall: a 160x160 px photo, flat, one hint in the middle
    L, ab, hints = torch.full((1, 1, 160, 40), 50.0), torch.zeros(1, 2, 160, 40), torch.zeros(1, 3, 160, 40)
    hints[0, 0, 80, 20], hints[0, 2, 80, 20] = 0.5, 1
    change = spread_hints(L, ab, hints, spread=0.25, cell=(1.0, 4.0))[0, 0]
    down, across = change[80 + 40, 20], change[80, 20 + 10]  # both 40 px away in the photo
    assert down > 1 and abs(down - across) < 0.1 * across


def test_the_spread_matches_an_exact_sparse_solve(monkeypatch):
    import numpy as np
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from colorize_gan import hints as hints_module
    g = torch.Generator().manual_seed(0)
    N, h, w, edge, spread = 3, 24, 36, 4.0, 0.5
    L = torch.rand(N, 1, h, w, generator=g) * 20 + torch.linspace(0, 60, w)  # texture on a ramp
    L[1, :, :, 18:] += 30  # and in image 1 an edge down the middle
    ab = torch.randn(N, 2, h, w, generator=g) * 10
    hints = torch.zeros(N, 3, h, w)
    for n, places in enumerate((((3, 4), (12, 30), (20, 15)), ((5, 10), (18, 25)), ((11, 11),))):
        for y, x in places:
            hints[n, :2, y, x], hints[n, 2, y, x] = torch.randn(2, generator=g) * 0.4, 1
    # two images per chunk, so the batch is solved in chunks and its images finish at different iterations
    monkeypatch.setattr(hints_module, '_CHUNK_CELLS', 2 * h * w)
    out = hints_module.spread_hints(L, ab, hints, spread, edge)
    # the same minimisation written out: sum_ij w_ij (x_i - x_j)^2 + sum_i x_i^2 / length^2, x = hint - ab at hints
    idx = np.arange(h * w).reshape(h, w)
    for n in range(N):
        Lf, rows, cols, vals = L[n, 0].double().numpy(), [], [], []
        for a, b, d in ((idx[:, :-1], idx[:, 1:], Lf[:, :-1] - Lf[:, 1:]), (idx[:-1], idx[1:], Lf[:-1] - Lf[1:])):
            wgt = np.exp(-d ** 2 / (2 * edge ** 2)).ravel()
            rows, cols, vals = rows + [a.ravel(), b.ravel()], cols + [b.ravel(), a.ravel()], vals + [wgt, wgt]
        W = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w,) * 2)
        pinned = hints[n, 2].numpy().ravel() > 0
        A = (sp.diags(np.asarray(W.sum(1)).ravel() + 1 / (spread * h) ** 2) - W).tocsr()
        for c in range(2):
            x = np.zeros(h * w)
            x[pinned] = (hints[n, c].double() * 110 - ab[n, c].double()).numpy().ravel()[pinned]
            free = ~pinned
            x[free] = spla.spsolve(A[free][:, free].tocsc(), -A[free][:, pinned] @ x[pinned])
            assert np.abs(ab[n, c].double().numpy().ravel() + x - out[n, c].double().numpy().ravel()).max() < 0.5


def test_a_hint_colours_its_place_keeps_lightness_and_leaves_far_places_alone():
    import numpy as np

    from colorize_gan import photo
    from colorize_gan.color import luminance
    gray = np.full((96, 160), 120, np.uint8)
    without = photo.colorize(PassHints(), gray)
    out = photo.colorize(PassHints(), gray, hints=[parse_hint('40,30,#c02020,12')])
    assert torch.equal(luminance(out), luminance(without)) or (luminance(out) - luminance(without)).abs().max() <= 1
    near, far = out[30, 40].astype(int), out[80, 140].astype(int)
    assert near[0] - near[2] > 40  # reddish around the point
    assert np.abs(far - without[80, 140].astype(int)).max() <= 2  # unchanged far from it


def test_saturation_0_with_a_hint_colours_only_the_hint_s_region():
    import numpy as np

    from colorize_gan import photo
    gray = np.full((96, 160), 120, np.uint8)
    out = photo.colorize(PassHints(), gray, saturation=0, hints=[parse_hint('40,30,#c02020,12')]).astype(int)
    assert out[30, 40, 0] - out[30, 40, 2] > 40  # reddish at the hint
    assert np.abs(out[80, 140] - 120).max() <= 2  # gray far from it
    assert np.abs(photo.colorize(PassHints(), gray, saturation=0).astype(int) - 120).max() <= 1  # no hints: all gray


def test_an_output_made_without_a_spread_names_it_0_when_a_rerun_asks_for_one():
    from colorize_gan.images import output_settings, settings_changes
    hint = [parse_hint('3,3,red')]
    before = output_settings('m', 128, 1.0, hints=hint)  # as colorize.py records --hint_spread=0 (and older outputs)
    assert settings_changes(before, output_settings('m', 128, 1.0, hints=hint, hint_spread=0.25)) == \
        'hint_spread=0, now 0.25'
    # an output made with hints before the hint rule changed (no hint_rule recorded) is not taken as done
    older = before.replace(' hint_rule=2', '')
    assert 'hint_rule' not in older and settings_changes(older, before) == 'hint_rule=1, now 2'
    assert 'hint_rule' not in output_settings('m', 128, 1.0)  # without hints nothing about them changed
    # a rerun without hints over an output made with them: the hints differ, not how hints are used
    spread = output_settings('m', 128, 1.0, hints=hint, hint_spread=0.25)
    assert settings_changes(spread, output_settings('m', 128, 1.0)).startswith('hints=1@') and \
        settings_changes(spread, output_settings('m', 128, 1.0)).endswith(', now none')
    assert settings_changes(output_settings('m', 128, 1.0), spread).count(';') == 0


def test_a_hint_on_a_photo_smaller_than_the_working_grid_covers_its_whole_pixel():
    out = hint_map([parse_hint('1,0,red')], 2, 2, 64, 64)  # a 2x2 photo at 64x64 cells: its pixel is 32x32 of them
    assert out[0, 2].sum() == 32 * 32 and out[0, 2, :32, 32:].all()


def test_hints_need_a_model_with_hint_input_and_must_lie_inside_the_photo(tmp_path):
    import numpy as np
    from PIL import Image

    from colorize_gan import checkpoint
    from colorize_gan.models import Generator
    from conftest import run
    Image.fromarray(np.full((40, 60), 100, np.uint8)).save(tmp_path / 'p.png')
    for name, hints in (('plain', False), ('guided', True)):
        torch.manual_seed(0)
        checkpoint.export_generator(str(tmp_path / f'{name}.safetensors'), Generator(8, 32, hints=hints).eval())
    common = (tmp_path / 'p.png', f'--out_dir={tmp_path / "o"}')
    plain = run('colorize.py', *common, f'--checkpoint={tmp_path / "plain.safetensors"}', '--hint=5,5,red',
                check=False)
    assert plain.returncode == 1 and 'has no hint input' in plain.stderr and not (tmp_path / 'o').exists()
    outside = run('colorize.py', *common, f'--checkpoint={tmp_path / "guided.safetensors"}', '--hint=70,5,red',
                  check=False)
    assert outside.returncode == 1 and 'is outside' in outside.stderr and 'model:' not in outside.stdout
    ok = run('colorize.py', *common, f'--checkpoint={tmp_path / "guided.safetensors"}', '--hint=5,5,red',
             '--hint=50,30,#00ff00,4')
    assert 'wrote 1, failed 0' in ok.stdout and Image.open(tmp_path / 'o' / 'p.png').size == (60, 40)


def test_simulated_users_on_whole_photos_pick_the_real_colour_and_help(tmp_path):
    import numpy as np
    from PIL import Image

    from colorize_gan.evaluation import evaluate_photos
    from colorize_gan.hints import simulated_photo_hints
    rgb = np.zeros((90, 150, 3), np.uint8)
    rgb[:, :75] = (200, 40, 40)  # a red half and a blue half
    rgb[:, 75:] = (40, 60, 200)
    hints = simulated_photo_hints(rgb, 20, np.random.default_rng(0), cell=2.0)
    assert len(hints) == 20 and all(0 <= h['x'] < 150 and 0 <= h['y'] < 90 and 1 <= h['radius'] <= 9 for h in hints)
    for h in hints:  # a patch inside one half has that half's colour
        r, x = int(h['radius']), int(h['x'])
        if x + r < 75 or x - r >= 75:
            assert h['color'] == tuple(rgb[int(h['y']), x])
    Image.fromarray(rgb).save(tmp_path / 'halves.png')
    plain, gray, _ = evaluate_photos(PassHints(), [str(tmp_path / 'halves.png')])
    guided, gray_again, _ = evaluate_photos(PassHints(), [str(tmp_path / 'halves.png')], hints=10)
    assert gray_again == gray and plain['mae'] == pytest.approx(gray['mae'], abs=0.5)  # no hints: PassHints is gray
    assert guided['mae'] < 0.95 * plain['mae']  # the hints' colours reach the output


def test_hints_are_marked_where_they_are():
    import numpy as np

    from colorize_gan.hints import mark_hints
    gray = np.full((60, 90, 3), 128, np.uint8)
    marked = mark_hints(gray, [parse_hint('30,20,#00ff00,6')])
    changed = np.argwhere((marked != gray).any(2))
    assert len(changed) and np.abs(np.hypot(changed[:, 0] - 20, changed[:, 1] - 30) - 7).max() <= 3  # a ring at r 6
    assert (marked == (0, 255, 0)).all(2).any() and np.array_equal(gray, np.full((60, 90, 3), 128, np.uint8))


def test_the_shipped_model_pulls_colour_toward_a_hint_near_it_and_leaves_far_places_alone():
    # the learned behaviour (PassHints above is only the pipeline): one hint on scikit-image's coffee, turned gray
    import numpy as np
    from skimage import data

    from colorize_gan import photo
    from colorize_gan.checkpoint import PHOTO_GENERATOR, load_generator
    from colorize_gan.color import lab_to_rgb_keep_L, luminance, rgb_to_lab
    G = load_generator(PHOTO_GENERATOR)[0]
    gray = np.round(data.coffee() @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)  # 400x600
    ab = lambda rgb: rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0, 1:]  # 2xHxW, CIE
    without = photo.colorize(G, gray)
    distance = torch.from_numpy(np.hypot(*np.mgrid[0:400, 0:600] - np.array([200, 300])[:, None, None]))
    for colour in ('#20a020', '#c02020', '#2040c0'):  # green, red, blue at a bright point of the cup
        out = photo.colorize(G, gray, hints=[parse_hint(f'300,200,{colour},6')])
        assert (luminance(out) - luminance(without)).abs().max() <= 1  # lightness kept
        change = ab(out) - ab(without)
        near = change[:, 195:206, 295:306].mean((1, 2))  # 11x11 px around the point
        # the hint's ab as far as sRGB can show it at the point's lightness (a red on near-white is pale)
        rgb_hint = np.array([[[int(colour[i:i + 2], 16) for i in (1, 3, 5)]]], np.uint8)
        L_point = luminance(without)[195:206, 295:306].mean().reshape(1, 1).float()
        reachable = lab_to_rgb_keep_L(L_point, ab(rgb_hint).float())  # 3x1x1 in [0, 1]
        wanted = ab((reachable.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))[:, 0, 0] \
            - ab(without)[:, 195:206, 295:306].mean((1, 2))
        assert torch.cosine_similarity(near, wanted, 0) > 0.8 and near.norm() > 0.3 * wanted.norm()
        assert change.norm(dim=0)[distance > 120].mean() < 0.5  # ab units, far from the point: little change
        # a large hint (radius 30 px, about 10 working cells): the generator sees 2 cells of it, the spread the rest;
        # seen whole, a patch this size of an unexpected colour makes it recolour the whole photo (5-12 ab)
        big = ab(photo.colorize(G, gray, hints=[parse_hint(f'300,200,{colour},30')])) - ab(without)
        assert big.norm(dim=0)[distance > 150].mean() < 2.5


def test_evaluation_with_hints_shows_the_generator_the_centre_of_each_patch_and_spreads_all_of_it():
    import numpy as np

    from colorize_gan import evaluation
    from colorize_gan.dataset import ImageSplit

    class Recorder(PassHints):
        def forward(self, L, hints=None):
            self.seen = hints.clone()
            return super().forward(L, hints)

    rgb = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8))
    split, G = ImageSplit(rgb, torch.arange(6), 'x', 0, 0), Recorder()
    evaluation.evaluate(G, split, hints=10, seed=3)
    full = sample_hints(rgb_to_lab(rgb.float() / 255)[:, 1:] / 110, torch.Generator().manual_seed(3), count=10)
    assert 0 < G.seen[:, 2].sum() < full[:, 2].sum()  # cut patches (at most 4 px wide) where the whole is larger
    evaluation.evaluate(G, split, hints=10, seed=3, hint_spread=0)  # no spread: the generator sees whole patches
    assert torch.equal(G.seen[:, 2], full[:, 2])
