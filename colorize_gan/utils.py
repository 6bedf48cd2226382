"""What every script shares: the nanoGPT-style --name=value command line, the one-line errors, atomic file writes,
the run-folder lock, the output-folder check, the working size. Imports no torch at module level (torch and filelock are
imported where used), so the torch-free colorize path (light.py, images.py) can use it."""
import ast
import atexit
import difflib
import math
import numbers
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import weakref
from contextlib import contextmanager


class UserError(Exception):
    """A problem the user can fix (a missing file, a bad setting): modules raise it with a message that names the
    problem and the fix; a script's entry prints it as one line, `error: <message>`, and exits with status 1."""


def _excepthook(kind, value, traceback, _default=sys.excepthook):
    """Uncaught UserError: one line on stderr instead of a traceback (the interpreter then exits with status 1);
    uncaught KeyboardInterrupt (Ctrl-C while a model loads, or a second Ctrl-C): one line too (status 130)."""
    if issubclass(kind, UserError):
        print(f"error: {value}", file=sys.stderr)
    elif issubclass(kind, KeyboardInterrupt):
        print("\ninterrupted (Ctrl-C)", file=sys.stderr)
    else:
        _default(kind, value, traceback)


def check_out_dir(folder, option='--out_dir'):
    """Refuse, before any work, an output folder that cannot be made or written: walks up to the nearest existing
    folder and makes (then removes) a hidden folder in it, which also catches a read-only file system or /proc.
    Makes nothing that stays. Raises UserError naming `option`, the path and the fix."""
    existing = os.path.abspath(os.path.expanduser(folder))
    while not os.path.exists(existing):
        if os.path.islink(existing):
            raise UserError(f"cannot write to {option}={folder} ('{existing}' is a link to '{os.readlink(existing)}', "
                            "which does not exist); remove the link or choose another folder")
        existing = os.path.dirname(existing)
    why = f"'{existing}' is a file" if not os.path.isdir(existing) else ''
    if not why:
        try:
            os.rmdir(tempfile.mkdtemp(prefix='.write-test-', dir=existing))
        except OSError as e:
            why = f"no folder can be made in '{existing}': {e.strerror}"
    if why:
        raise UserError(f"cannot write to {option}={folder} ({why}); choose a folder you can write to")


def check_outside(out_dir, image_folders, option='--out_dir'):
    """Refuse (UserError) an output folder inside a folder whose images a script reads (a data folder's train/ or
    test/): its sample grids would be read as data the next time."""
    out = os.path.realpath(out_dir)
    for folder in image_folders:
        real = os.path.realpath(folder)
        if out == real or out.startswith(real + os.sep):
            raise UserError(f"{option}={out_dir} is inside {folder}, whose images are read as data: what is written "
                            f"there would become data; pass an {option} outside it")


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write_fn, mode='wb', durable=True):
    """Call write_fn(file) on a temp file beside `path`, then rename it over `path`: readers never see half a file,
    and a failed write leaves the old file as it was (the temp file is removed; the exception propagates). durable:
    fsync before the rename, so a power cut cannot leave an empty file where the old one was; False for files a tool
    can simply make again (it costs milliseconds a file: seconds over a folder of hundreds)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    if len(os.fsencode(name)) > 200:  # the temp name adds 14 bytes, and names may take at most 255
        name = os.fsdecode(os.fsencode(name)[:200])
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + name + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_temps(folder, is_target=lambda name: True, min_age_s=0):
    """Remove the temp files atomic_write leaves in `folder` when its process is killed mid-write (.<name>.<random>.tmp,
    regular files only), for the target names `is_target(name)` accepts (default: all) and untouched for at least
    `min_age_s` seconds (a live writer elsewhere touches its own); returns the names of those removed."""
    import time
    removed = []
    for entry in os.listdir(folder) if os.path.isdir(folder) else []:
        temp = re.fullmatch(r'\.(.+)\.\w+\.tmp', entry)
        path = os.path.join(folder, entry)
        if temp and is_target(temp[1]) and os.path.isfile(path) and time.time() - os.path.getmtime(path) >= min_age_s:
            os.remove(path)
            removed.append(entry)
    return removed


def exit_at_once_on_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """From now to the process's end (the work done and written, the interpreter shutting down), Ctrl-C or SIGTERM
    leaves at once with status 128 + the signal's number and no output: a handler that raised would print a
    traceback from whatever shutdown code (an atexit callback, a finalizer) it interrupted."""
    def leave(signum, frame):
        for stream in (sys.stdout, sys.stderr):  # what was printed still arrives (os._exit flushes nothing)
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(128 + signum)
    for s in signals:
        signal.signal(s, leave)


@contextmanager
def interrupt_after():
    """Ctrl-C inside the block takes effect as it ends (the usual KeyboardInterrupt, or the handler in place): for
    library calls that turn an interrupt into an error of their own (safetensors' reader reports a ValueError, which
    read as a damaged file). Only in the main thread, where signal handlers live; elsewhere the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    frames = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: frames.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if frames and callable(previous):
            previous(signal.SIGINT, frames[0])
        elif frames and previous == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGINT)


def _release_at_exit(ref):
    """atexit: release a RunLock if it still exists (a weak reference, so an in-process run can collect it)."""
    lock = ref()
    if lock is not None:
        lock.release()


class RunLock:
    """One live train.py per run folder: an OS file lock (filelock) on <folder>/.lock, released by the OS if the
    process dies, and <folder>/.lock.owner naming the holder (pid and host) while it runs."""

    def __init__(self, folder):
        from filelock import FileLock
        self.folder, self.path = folder, os.path.abspath(folder)  # as given (for messages), and absolute (for files)
        self.lock = FileLock(os.path.join(self.path, '.lock'))
        self.owner = os.path.join(self.path, '.lock.owner')

    def acquire(self):
        """Take the lock, and remove the temp files a killed run left half-written (atomic_write's .<name>.*.tmp);
        returns the note to print when a run that died left its owner file behind (else None). Raises UserError when
        another live process holds it."""
        from filelock import Timeout
        self.created = []  # the folders acquire makes (out_dir and any missing parents), innermost first
        self.made_lock_file = not os.path.exists(os.path.join(self.path, '.lock'))
        folder = self.path
        while not os.path.exists(folder):
            self.created.append(folder)
            folder = os.path.dirname(folder)
        try:
            os.makedirs(self.path, exist_ok=True)
            previous = open(self.owner).read().strip() if os.path.exists(self.owner) else ''
            self.lock.acquire(timeout=0)
        except Timeout:
            if not os.path.exists(os.path.join(self.path, '.lock')):  # filelock could not create it: not a live run
                raise UserError(f"cannot use the run folder '{self.folder}' (no file can be created there); pass an "
                                "--out_dir you can write to") from None
            raise UserError(f"another train.py ({previous or 'unknown process'}) is training in '{self.folder}'; "
                            "wait for it, stop it, or pass another --out_dir") from None
        except OSError as e:
            raise UserError(f"cannot use the run folder '{self.folder}' ({e.strerror or e}); pass an --out_dir you "
                            "can write to") from None
        for folder in (self.path, os.path.join(self.path, 'images')):  # what a killed run's atomic_write left
            remove_stale_temps(folder)
        atomic_write(self.owner, lambda f: f.write(f"pid {os.getpid()} on {socket.gethostname()}\n"), 'w')
        atexit.register(_release_at_exit, weakref.ref(self))  # a refusal or crash after this leaves no stale lock
        return f"note: taking over the lock of a run that ended without cleaning up ({previous})" if previous else None

    def __del__(self):
        self.release()

    def release(self):
        """Let it go (removing the owner file, and the folders acquire made if nothing else was written there);
        safe to call twice."""
        if getattr(self, 'lock', None) is not None and self.lock.is_locked:
            if os.path.exists(self.owner):
                os.remove(self.owner)
            self.lock.release()
            created = getattr(self, 'created', [])
            if getattr(self, 'made_lock_file', False) and os.listdir(self.path) == ['.lock']:  # nothing was written:
                os.remove(os.path.join(self.path, '.lock'))  # leave no lock file, and no empty folders acquire made
                for folder in created:
                    if os.listdir(folder):
                        break
                    os.rmdir(folder)


def _coerce(name, text, default):
    """Parse `text` into the type of `default`; an int is fine where a float is expected, nan and inf are not."""
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low in ('1', 'true', 'yes', 'on'):
                return True
            if low in ('0', 'false', 'no', 'off'):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            value = float(text)
            if not math.isfinite(value):
                raise UserError(f"--{name}={text} is not a finite number; e.g. --{name}={default}")
            return value
    except ValueError:
        kind = 'true/false' if isinstance(default, bool) else type(default).__name__
        raise UserError(f"--{name}={text!r} is not a valid {kind}; e.g. --{name}={default}")
    return text


def _help_text(config, script):
    """The script's docstring (what it does, how to call it), then its config block: each setting with its default and
    trailing comment, and the group comments.

    Read from the source itself, so the help and the code cannot drift apart."""
    try:
        text = open(script).read()
        source = text.split('\n')
        doc = ast.get_docstring(ast.parse(text)) or ''
    except (OSError, TypeError, SyntaxError):
        source, doc = [], ''
    column = max(len(f'--{k}={v!r}') for k, v in config.items()) + 2
    lines = ([doc, ''] if doc else []) + ['options (--name=value or --name value; dashes work for underscores):']
    shown = set()
    for line in source:
        if line.startswith('# ---') and shown:
            break  # the end of the config block: the rest of the script is not help
        match = re.match(r'^([a-z_][a-z0-9_]*) = .*?(?:  # ?(.*))?$', line)
        if match and match.group(1) in config:
            name, comment = match.group(1), match.group(2) or ''
            lines.append(f"  {f'--{name}={config[name]!r}':<{column}}{comment}".rstrip())
            shown.add(name)
        elif line.startswith('# ') and shown and not line.startswith('# ---'):
            is_heading = len(line) < 30 and not line.startswith('# (')
            lines.append(line if is_heading else ' ' * (column + 2) + line[2:])
    lines += [f"  --{name}={value!r}" for name, value in config.items() if name not in shown]
    return '\n'.join(lines)


def parse_overrides(argv, config, positional=False, flags=(), script=None, repeatable=()):
    """Parse `--name=value` (or `--name value`) against `config` {name: default}; returns {name: typed value}.

    Dashes in names stand for underscores (--out-dir). Unknown names exit with the closest valid one. With
    positional=True, bare arguments are returned in an extra list instead of rejected. Names in `flags` are
    booleans that may also be given bare (`--as_json`). Names in `repeatable` are strings that may be given several
    times: their values are joined with newlines."""
    out, extra = {}, []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ('-h', '--help'):
            print(_help_text(config, script))
            raise SystemExit(0)
        if arg == '--version':
            from . import __version__
            print(f"colorize-gan {__version__}")
            raise SystemExit(0)
        if not arg.startswith('--'):
            if positional and not (arg.startswith('-') and len(arg) > 1 and not os.path.exists(arg)):
                extra.append(arg)  # a file, folder or glob ('-v' is taken for one only where such a file exists)
                continue
            if positional:
                raise UserError(f"unknown option {arg}; options take the form --name=value (see --help), and no "
                                f"file '{arg}' exists")
            raise UserError(f"unexpected argument {arg!r}; options take the form --name=value")
        name, eq, value = arg[2:].partition('=')
        name = name.replace('-', '_')
        if name not in config:
            close = difflib.get_close_matches(name, list(config), n=1, cutoff=0.6)
            hint = f"did you mean --{close[0]}?" if close else "see --help for the valid options"
            raise UserError(f"unknown option --{name}; {hint}")
        if not eq:
            if isinstance(config[name], bool) and (name in flags or not args or args[0].startswith('--')):
                value = 'true'
            elif args:
                value = args.pop(0)
            else:
                raise UserError(f"--{name} needs a value, e.g. --{name}={config[name]}")
        value = _coerce(name, value, config[name])
        if isinstance(value, str) and (value == '~' or value.startswith('~' + os.sep)):
            value = os.path.expanduser(value)  # the shell leaves ~ alone after '=': --out_dir=~/colorized
        out[name] = f"{out[name]}\n{value}" if name in repeatable and name in out else value
    return (out, extra) if positional else out


PIXELS_PER_CHUNK = 1 << 18  # full-resolution work runs in bands of rows of about this many pixels: bounded memory,
# each band stays in cache, and a video frame (640x360) is one band, not six (fewer small calls)
MAX_ASPECT = 8  # the working resolution's long side is at most this many times the model's size


def working_short_side(height, width, size, model_size):
    """The short side the model works at for a photo of height x width px when asked for `size` px (0: the model's
    own, `model_size`): never above the photo's own short side, unless that is below the model's size (more than the
    photo holds adds no detail, only time and memory: --size=4096 took 96 s and GBs on a 451x300 photo)."""
    return min(size, max(min(height, width), model_size)) if size else model_size


def working_size(height, width, size, multiple, model_size):
    """The model's input size (h, w) for a photo of height x width px: short side working_short_side(...), long side
    keeping the aspect ratio up to MAX_ASPECT x that (a thin strip is squeezed along its length, so the work depends
    on the pixel count, never on the aspect ratio), both rounded to multiples of `multiple` (at least one multiple; a
    positive int). Used by photo.py, video.py and light.py alike."""
    size = working_short_side(height, width, size, model_size)
    scale = size / min(height, width)
    limit = MAX_ASPECT * size
    snap = lambda v: max(multiple, int(round(min(v * scale, limit) / multiple)) * multiple)  # noqa: E731
    return snap(height), snap(width)


def is_number(value):
    """True for a real number, Python's or numpy's (np.float32 is no float), but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_colorize_settings(size, saturation, upsample=None, upsampling=(), quality=95):
    """The colorize settings that colorize.py, the API and light.py share, checked once for all three: ValueError
    naming the setting unless size is 0 (the model's own) or a whole number of px up to 4096, saturation a number in
    [0, 10], upsample (when given) one of `upsampling`, and the JPEG quality 1-100."""
    for name, value in (('size', size), ('saturation', saturation)):
        if not is_number(value):
            raise ValueError(f"{name}={value!r} must be a number")
    if not (0 <= size <= 4096 and size == int(size)):
        raise ValueError(f"size={size} must be 0 (the model's own) or a whole number of pixels up to 4096")
    if not 0 <= saturation <= 10:
        raise ValueError(f"saturation={saturation} must be between 0 and 10 (0 = gray, 1 = as predicted, above 1 = "
                         "more vivid)")
    if upsample is not None and upsample not in upsampling:
        raise ValueError(f"upsample={upsample!r} is not one of {', '.join(upsampling)}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality={quality} must be between 1 and 100 (JPEG quality)")


def config_defaults(namespace):
    """A script's settings as its config block sets them: {name: value} of its lowercase bool/int/float/str globals."""
    return {k: v for k, v in namespace.items()
            if k.islower() and not k.startswith('_') and type(v) in (bool, int, float, str)}


def one_line_errors():
    """From here on, an uncaught UserError ends the program with `error: <message>` (status 1) and Ctrl-C with one
    line (status 130), never a traceback: what a script's entry does (configure calls it)."""
    sys.excepthook = _excepthook


def configure(namespace, argv, excepthook=True, given=False, **kwargs):
    """Apply --name=value overrides to a script's config globals (its lowercase bool/int/float/str names), printing
    each override as it is applied; returns the config (and the bare arguments with positional=True, then the set of
    names the command line gave with given=True). A script's errors become one line (one_line_errors) unless
    excepthook=False (a function a program may call)."""
    if excepthook:
        one_line_errors()
    names = list(config_defaults(namespace))
    result = parse_overrides(argv, {k: namespace[k] for k in names}, script=namespace.get('__file__'), **kwargs)
    overrides, extra = result if kwargs.get('positional') else (result, None)
    for name, value in overrides.items():
        if value != namespace[name] and os.environ.get('RANK', '0') == '0':  # under torchrun, process 0 says it
            print(f"override: {name} = {value!r} (default {namespace[name]!r})")
    namespace.update(overrides)
    config = {k: namespace[k] for k in names}
    result = (config,) + ((extra,) if kwargs.get('positional') else ()) + ((set(overrides),) if given else ())
    return result if len(result) > 1 else config


def describe_generator(config):
    """A generator's stored config in words: 'width 32, 64px' for the paper's U-Net, 'tf_efficientnet_lite0 U-Net,
    width 32, 128px, hints' for the others (torch-free: the ONNX backend describes its models with it too)."""
    arch = f"{config['encoder']} U-Net, " if config.get('arch') == 'encoder_unet' else ''
    hints = ', hints in stem and decoder' if config.get('hint_decoder') else ', hints' if config.get('hints') else ''
    return f"{arch}width {config['width']}, {config['image_size']}px{hints}"
