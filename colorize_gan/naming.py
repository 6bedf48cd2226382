"""The names colorize.py gives its outputs: one per input, stable across reruns while inputs come and go."""
import itertools
import os

from .images import parse_record, source_id
from .images import recorded_source as image_source
from .video import is_video
from .video import recorded_source as video_source


def output_names(planned, out_dir, image_format):
    """{input path: output path under out_dir}, all distinct, for `planned` [(input path, its name relative to the
    folder or glob it came from)]; photos as `image_format` (png | jpg), videos as mp4. A stem shared by several
    inputs gets the shortest tail of their absolute folders that tells them apart (album/a/photo.jpg,
    album/b/photo.jpg -> a/photo, b/photo), and a stem shared within one folder the input's extension for all but
    one (photo.jpg, photo.png -> photo_jpg, photo): the one an earlier output there was made from, else one of the
    output's type. An input keeps any name an earlier run gave it, and no newcomer takes the output of an input that
    is gone, so adding or removing files never moves an earlier output's name."""
    stems = {path: os.path.splitext(rel)[0] for path, rel in planned}
    groups = {}
    for path, stem in stems.items():
        groups.setdefault(stem, []).append(path)
    for stem, paths in groups.items():
        if len({os.path.dirname(os.path.abspath(p)) for p in paths}) < 2:
            continue  # one folder: the extension tells them apart, below
        folders = [os.path.dirname(os.path.abspath(p)).split(os.sep) for p in paths]
        for depth in range(1, max(len(f) for f in folders) + 1):
            tails = [os.path.join(*f[-depth:], os.path.basename(stem)) if f[-depth:] else stem for f in folders]
            if len(set(tails)) == len(tails) or depth == max(len(f) for f in folders):
                break
        for path, tail in zip(paths, tails):
            stems[path] = tail
    plain = {path: os.path.join(out_dir, f"{stem}.{'mp4' if is_video(path) else image_format}")
             for path, stem in stems.items()}
    claims = {}
    for path, out in plain.items():
        claims.setdefault(out, []).append(path)
    collided = {path for paths in claims.values() if len(paths) > 1 for path in paths}
    outputs = {}
    # an input of a clash keeps the name an earlier run gave it (photo_jpg.png stays photo.jpg's when a photo_jpg.png
    # joins the folder); then each plain name goes to one input; the others get their extension (photo_jpg.png)
    for path in sorted(collided):
        for out in itertools.islice(names_for(path, plain[path], stems[path], out_dir), 8):
            if out not in outputs.values() and made_from(out, path):
                outputs[path] = out
                break
    for out, paths in claims.items():
        free = [path for path in paths if path not in outputs]
        if len(paths) > 1 and os.path.exists(out) and not any(made_from(out, path) for path in paths):
            continue  # an earlier run's output of an input no longer here: a clash's newcomers get their own names
        if free and out not in outputs.values():
            outputs[free[0] if len(free) == 1 else min(free, key=lambda path: plain_name_rank(path, out))] = out
    taken = set(outputs.values()) | set(plain.values())  # a plain name is its input's even where it is taken later
    for path, stem in stems.items():
        if path not in outputs:
            out = next(out for out in itertools.islice(names_for(path, plain[path], stem, out_dir), 1, None)
                       if out not in taken)
            taken.add(out)
            outputs[path] = out
    return outputs


def names_for(path, plain, stem, out_dir):
    """The output names input `path` may take, in order (a generator): its plain one, then with its extension
    (photo_jpg.png), then numbered (photo_jpg_2.png, ...: photo.jpg beside photo.JPG)."""
    ext, own = os.path.splitext(plain)[1], os.path.splitext(path)[1].lstrip('.').lower()
    yield plain
    yield os.path.join(out_dir, f'{stem}_{own}{ext}')
    for n in itertools.count(2):
        yield os.path.join(out_dir, f'{stem}_{own}_{n}{ext}')


def made_from(out, path):
    """True when an output already at `out` records `path` as its input."""
    return os.path.exists(out) and parse_record(
        (video_source if is_video(path) else image_source)(out) or '')[0] == source_id(path)


def plain_name_rank(path, out):
    """Which of the inputs that would share the output name `out` keeps it (lowest first): one of the output's own
    type (photo.png for photo.png; .jpeg after .jpg), then the first by name."""
    own, ext = os.path.splitext(path)[1].lower(), os.path.splitext(out)[1]
    return (1 if own == ext else 2 if (own, ext) == ('.jpeg', '.jpg') else 3), path
