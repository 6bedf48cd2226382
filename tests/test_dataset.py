"""The image-folder source: loading, caching, grayscale dropping and bad inputs."""
import os

import pytest
import torch

from colorize_gan import color, dataset
from colorize_gan.images import read_image
from colorize_gan.utils import UserError
from conftest import make_images


def test_folder_split_is_uint8_rgb_at_image_size_and_batches_are_network_lab(tiny_data):
    split = dataset.load_split(str(tiny_data), 'train', 32, verbose=False)
    assert len(split) == 48 and split.name == 'tiny'
    pixels = split.images(torch.arange(48))
    assert pixels.shape == (48, 3, 32, 32) and pixels.dtype == torch.uint8
    idx = torch.tensor([3, 0, 47])
    L, ab = split.batch(idx)
    assert L.shape == (3, 1, 32, 32) and ab.shape == (3, 2, 32, 32) and L.dtype == torch.float32
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    want_L, want_ab = color.normalize_lab(color.rgb_to_lab(pixels[idx].float() / 255))
    assert torch.allclose(L, want_L) and torch.allclose(ab, want_ab)


def test_batch_flips_exactly_the_rows_asked_for(tiny_data):
    split = dataset.load_split(str(tiny_data), 'train', 32, verbose=False)
    idx = torch.arange(8)
    flip = torch.tensor([True, False, True, True, False, False, True, False])
    L, ab = split.batch(idx, flip)
    L_plain, ab_plain = split.batch(idx)
    assert torch.equal(L[~flip], L_plain[~flip]) and torch.equal(ab[~flip], ab_plain[~flip])
    assert torch.equal(L[flip], L_plain[flip].flip(3)) and torch.equal(ab[flip], ab_plain[flip].flip(3))
    assert not torch.equal(L[flip], L_plain[flip])  # the test images are not mirror-symmetric


def test_cache_is_a_uint8_file_written_once_and_reused(tiny_data, cache_dir, capsys):
    first = dataset.load_split(str(tiny_data), 'test', 16, limit=10)
    assert 'cached 10 images' in capsys.readouterr().out
    files = sorted(os.listdir(cache_dir))
    assert len(files) == 2 and files[0].endswith('.u8') and files[1] == files[0] + '.json'
    assert '16px' in files[0] and '-10-' in files[0]
    assert os.path.getsize(cache_dir / files[0]) == 10 * 3 * 16 * 16  # 3 bytes a pixel, nothing else
    second = dataset.load_split(str(tiny_data), 'test', 16, limit=10)
    assert 'cached' not in capsys.readouterr().out
    assert torch.equal(first.images(torch.arange(10)), second.images(torch.arange(10)))
    dataset.load_split(str(tiny_data), 'test', 32, limit=10)  # another size is another cache entry
    assert len(os.listdir(cache_dir)) == 4


def test_cache_follows_changed_files_and_a_killed_build_leaves_no_cache(tiny_data, cache_dir, monkeypatch):
    dataset.load_split(str(tiny_data), 'test', 16, verbose=False)
    photo = tiny_data / 'test' / 'cat' / '000.png'
    before = set(os.listdir(cache_dir))
    os.utime(photo, ns=(0, 123456789))  # same name, same count, new modification time: a new cache
    dataset.load_split(str(tiny_data), 'test', 16, verbose=False)
    assert len(set(os.listdir(cache_dir)) - before) == 2

    calls = []

    def dies(args):  # the decoder is killed half way through the build
        calls.append(args)
        if len(calls) > 10:
            raise KeyboardInterrupt
        return dataset._load_square(*args)
    with monkeypatch.context() as patched:
        patched.setattr(dataset, '_load_square_args', dies)
        with pytest.raises(KeyboardInterrupt):
            dataset.load_split(str(tiny_data), 'train', 16, verbose=False)
    train_files = [f for f in os.listdir(cache_dir) if '-train-' in f]
    assert train_files == []  # no temp file left, and nothing that looks complete
    assert len(dataset.load_split(str(tiny_data), 'train', 16, verbose=False)) == 48  # rebuilt whole


def test_holdout_split_is_disjoint_fixed_and_limited(tiny_data):
    split = dataset.load_split(str(tiny_data), 'train', 32, verbose=False)
    split.pixels = split.pixels.clone()
    split.pixels[:, 0, 0, 0] = torch.arange(len(split), dtype=torch.uint8)  # tag each image with its row
    tags = lambda s: set(s.images(torch.arange(len(s)))[:, 0, 0, 0].tolist())  # noqa: E731
    train, val = dataset.holdout_split(split, 10)
    assert len(train) == 38 and len(val) == 10 and not tags(train) & tags(val)
    assert tags(train) | tags(val) == set(range(48))
    train_again, val_again = dataset.holdout_split(split, 10, limit=20)
    assert tags(val_again) == tags(val)  # the same images are held out whatever the limit: resume never trains on them
    assert len(train_again) == 20 and tags(train_again) <= tags(train)
    first_row = train.images(torch.tensor([0]))[0]
    assert torch.equal(first_row, split.images(torch.tensor([min(tags(train))]))[0]) and train.name == 'tiny'
    assert [len(s) for s in dataset.holdout_split(split, 100)] == [32, 16]  # at most a third is held out
    with pytest.raises(UserError, match='training needs at least 2'):
        dataset.holdout_split(split.subset(torch.tensor([0])), 10)


def test_grayscale_images_are_dropped_and_counted(tiny_data, capsys):
    make_images(tiny_data / 'train' / 'gray', 5, seed=9, gray=True)
    split = dataset.load_split(str(tiny_data), 'train', 32, drop_gray=True)
    assert len(split) == 48 and split.dropped_gray == 5
    assert 'dropped 5 grayscale image(s)' in capsys.readouterr().out


def test_corrupt_and_non_image_files_are_skipped_with_one_warning(tiny_data, capsys):
    (tiny_data / 'train' / 'cat' / 'broken.jpg').write_text('this is not a jpeg')
    (tiny_data / 'train' / 'cat' / 'empty.png').write_bytes(b'')
    (tiny_data / 'train' / 'cat' / 'notes.txt').write_text('labels go here')
    (tiny_data / 'train' / 'cat' / 'gone.png').symlink_to(tiny_data / 'no_such.png')  # a link whose photo was removed
    split = dataset.load_split(str(tiny_data), 'train', 32)
    assert len(split) == 48 and split.skipped == 3
    err = capsys.readouterr().err
    assert err.count('warning: skipped 3 unreadable image file(s)') == 1


@pytest.mark.parametrize('layout,message', [
    ('missing', "does not exist"),
    ('a_file', "is a file, not a data folder"),
    ('no_split', "has no train/ subfolder"),
    ('empty', "no images found under"),
    ('all_broken', "could be read"),
])
def test_missing_or_empty_dataset_is_one_clear_error(tmp_path, layout, message):
    root = tmp_path / 'data'
    if layout == 'a_file':
        root.write_bytes(b'a tar or zip of photos, not yet unpacked')
    elif layout != 'missing':
        root.mkdir()
    if layout in ('empty', 'all_broken'):
        (root / 'train').mkdir()
        (root / 'test').mkdir()
    if layout == 'all_broken':
        (root / 'train' / 'x.jpg').write_text('nope')
    with pytest.raises(UserError) as e:
        dataset.load_split(str(root), 'train', 32, verbose=False)
    text = str(e.value)
    assert message in text and '--data_dir' in text and '\n' not in text


def test_read_image_modes(tmp_path):
    import numpy as np
    from PIL import Image
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :2, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'a.png')
    out = read_image(tmp_path / 'a.png')
    assert out.dtype == np.uint8 and (out[:, :2] == [255, 0, 0]).all() and (out[:, 2:] == 255).all()  # over white
    Image.fromarray(np.full((3, 5), 65535 // 2, np.uint16)).save(tmp_path / 'b.png')
    out = read_image(tmp_path / 'b.png')
    assert out.shape == (3, 5) and out.dtype == np.float32 and np.allclose(out, 0.5, atol=1e-3)
