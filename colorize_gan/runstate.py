"""One run, one file: train.py's whole training state, where it lives in the run folder, and the rules for resuming.

A run folder (train.py's --out_dir) holds:
    state.pt      everything a resume needs: G, EMA G, D, both optimizers, every RNG state, counters, history, config
                  and the settings changed at each resume; rewritten atomically at each epoch's end and at timed and
                  stop checkpoints. It also loads as a generator (its EMA weights) in eval, colorize and export.
    best.pt       the epoch the selection rule picked: G, EMA G and D weights with the config and history
    epochNNN.pt   with --keep_snapshots: the same for every epoch
    config.json   the settings in force now, and each resume's changes
    images/       sample grids and training curves
Runs written before this layout (<dataset>_train_generator/latest.pt beside <dataset>_train_discriminator/latest.pt)
are read through `convert_legacy_run`, once, on resume.
"""
import os
import re
import shutil

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .utils import UserError, atomic_write, check_outside

FORMAT = 2  # 1: the two-folder layout; 2: one state.pt per run

# settings a resume may change without changing what the run is: where and how it runs, how long, what it keeps
FREE_SETTINGS = {'device', 'torch_compile', 'amp', 'out_dir', 'checkpoint_minutes', 'log_seconds', 'keep_snapshots',
                 'select_by', 'select_color', 'select_mae', 'init_from', 'data_dir', 'epochs', 'lr_decay_epochs',
                 'l1_warmup_epochs'}
# of those, the schedule may change only where no trained epoch would have run differently (checked by schedule_fn)
SCHEDULE_SETTINGS = ('epochs', 'lr_decay_epochs', 'l1_warmup_epochs')


def run_paths(out_dir):
    """The files of the run in `out_dir`: {'folder', 'state', 'best', 'config', 'images'}; snapshot_path for epochs."""
    return {'folder': out_dir, 'state': os.path.join(out_dir, 'state.pt'), 'best': os.path.join(out_dir, 'best.pt'),
            'config': os.path.join(out_dir, 'config.json'), 'images': os.path.join(out_dir, 'images')}


# what a new run's folder may already hold: the lock of a refused start, a killed write's temp file
_SCRATCH = re.compile(r'\.lock(\.owner)?|\..*\.tmp')
_RUN_FILE = re.compile(r'(state|best|epoch\d+)\.pt|config\.json|images|.*_train_(generator|discriminator)')


def check_new_run_folder(out_dir, image_folders):
    """Refuse, before anything is written, a folder a new run (no state.pt in it) must not write into: one inside
    `image_folders` (the data's train/ and test/: its sample grids would become data), or one holding anything but
    a refused start's lock: another run's files without their state.pt (best.pt, snapshots: a new run would keep,
    and later promote, them), exports, photos, the repository. UserError naming the fix."""
    check_outside(out_dir, image_folders)
    others = sorted(e for e in (os.listdir(out_dir) if os.path.isdir(out_dir) else []) if not _SCRATCH.fullmatch(e))
    if others:
        named = f"{', '.join(others[:3])}{', ...' if len(others) > 3 else ''}"
        why = f"another run's files ({named}) but no state.pt to resume" if any(
            _RUN_FILE.fullmatch(e) for e in others) else f"files that are not a run's ({named})"
        raise UserError(f"--out_dir={out_dir} holds {why}; pass a new or empty folder for a new run")


def snapshot_path(out_dir, epoch):
    """<out_dir>/epochNNN.pt: the weights of epoch `epoch` (1-based)."""
    return os.path.join(out_dir, f'epoch{epoch:03d}.pt')


def legacy_paths(out_dir, name):
    """Where a format-1 run kept its two files for dataset `name`: (generator latest.pt, discriminator latest.pt)."""
    return (os.path.join(out_dir, f'{name}_train_generator', 'latest.pt'),
            os.path.join(out_dir, f'{name}_train_discriminator', 'latest.pt'))


def capture(G, G_ema, D, opt_G, opt_D, rng, *, epoch, batch, step, elapsed_s, config, history, changes,
            n_train, loss_sums=None, data_fingerprint='', asked=None, data_path=''):
    """The whole training state as one dict of tensors and plain values (what save_state writes).

    `rng` maps names to RNG states (uint8 tensors); `batch` > 0 marks a mid-epoch state, which also needs the
    epoch's running `loss_sums` [3] and rng['data_epoch_start']. `asked` holds the values the command gave for
    settings the run cut to fit its data ({'batch_size': 128}: config holds the value used), `data_path` the
    image folder's absolute path (a relative --data_dir then resumes from another working directory)."""
    state = {'format': FORMAT, 'G': G.state_dict(), 'G_ema': G_ema.state_dict() if G_ema is not None else None,
             'D': D.state_dict(), 'opt_G': opt_G.state_dict(), 'opt_D': opt_D.state_dict(), 'rng': rng,
             'epoch': epoch, 'batch': batch, 'step': step, 'elapsed_s': elapsed_s, 'model_config': G.config,
             'model_config_D': D.config, 'config': config, 'history': history, 'changes': changes,
             'n_train': n_train, 'data_fingerprint': data_fingerprint, 'asked': dict(asked or {}),
             'data_path': data_path}
    if batch:
        state['loss_sums'] = loss_sums.detach().cpu()
    return state


def weights_only(state):
    """best.pt and snapshots: the state less optimizers and RNG (enough to evaluate, export or fine-tune)."""
    return {k: v for k, v in state.items() if k not in ('opt_G', 'opt_D', 'rng', 'loss_sums')}


def save_state(paths, state, *, snapshot=False, best=False):
    """Write state.pt (and, at an epoch's end, the snapshot and best.pt when asked), each atomically; snapshot and
    best first, so state.pt never names an epoch whose files are missing. A failed write raises UserError and leaves
    the previous files as they were."""
    writes = []
    if snapshot:
        writes.append((snapshot_path(paths['folder'], state['epoch']), weights_only(state)))
    if best:
        writes.append((paths['best'], weights_only(state)))
    writes.append((paths['state'], state))
    for path, content in writes:
        try:
            save_checkpoint(path, content)
        except OSError as e:
            raise UserError(f"could not write checkpoint '{path}' ({e.strerror or e}); the previous one is intact. "
                            "Free some disk space (or pass another --out_dir) and rerun to resume") from None


def snapshot_to_best(paths, epoch):
    """Make best.pt a copy of epoch `epoch`'s snapshot (after a change of selection rule); False if it was not kept."""
    snapshot = snapshot_path(paths['folder'], epoch)
    if not os.path.exists(snapshot):
        return False
    with open(snapshot, 'rb') as src:
        atomic_write(paths['best'], lambda f: shutil.copyfileobj(src, f))
    return True


def convert_legacy_run(generator_file, discriminator_file):
    """A format-1 run's two files as one format-2 state (in memory). Missing settings take the defaults the old
    code ran with. Raises UserError if the generator file is not a training checkpoint."""
    fix = "it is truncated, corrupt or not train.py's; move it away (or pass another --out_dir) to start over"
    ckpt = load_checkpoint(generator_file, verb='resume from', fix=fix)
    if not isinstance(ckpt, dict) or 'opt_G' not in ckpt:
        raise UserError(f"cannot resume from '{generator_file}' (not a training checkpoint); {fix}")
    state = {k: v for k, v in ckpt.items() if k not in ('resume',)}
    state.update(format=FORMAT, D=None, opt_D=None, model_config_D=None, changes=[], n_train=None)
    state.setdefault('batch', 0)
    if os.path.exists(discriminator_file):
        ckpt_D = load_checkpoint(discriminator_file, verb='resume from', fix=fix)
        if (ckpt_D['epoch'], ckpt_D.get('batch', 0)) != (ckpt['epoch'], ckpt.get('batch', 0)):
            print(f"warning: the discriminator checkpoint is from epoch {ckpt_D['epoch']}, the generator's from "
                  f"{ckpt['epoch']} (a kill between the two writes); training goes on from the generator's")
        state.update(D=ckpt_D['D'], opt_D=ckpt_D['opt_D'], model_config_D=ckpt_D.get('model_config'))
    state['config'] = {k: v for k, v in ckpt['config'].items() if k != 'resume'}
    return state


def adopt_legacy_files(out_dir, folder):
    """Copy a format-1 run's best.pt and epochNNN.pt snapshots from its generator folder into out_dir (the format-2
    places; never over a file already there); returns the epoch best.pt holds (None without one)."""
    best = None
    for file in sorted(os.listdir(folder)):
        if file == 'best.pt' or (file.startswith('epoch') and file.endswith('.pt')):
            target = os.path.join(out_dir, file)
            if not os.path.exists(target):
                with open(os.path.join(folder, file), 'rb') as src:
                    atomic_write(target, lambda f: shutil.copyfileobj(src, f))
            if file == 'best.pt':
                best = load_checkpoint(target)['epoch']
    return best


def find_state(out_dir, name):
    """(state dict, the file it came from) of the run in out_dir, converting a format-1 run of dataset `name`;
    (None, None) when out_dir holds no run. A damaged state.pt is a UserError, never a silent fresh start."""
    paths = run_paths(out_dir)
    fix = "it is truncated, corrupt or not train.py's; move it away (or pass another --out_dir) to start over"
    if os.path.exists(paths['state']):
        state = load_checkpoint(paths['state'], verb='resume from', fix=fix)
        if not isinstance(state, dict) or state.get('format') != FORMAT:
            raise UserError(f"cannot resume from '{paths['state']}' (not a train.py run state); {fix}")
        if 'opt_G' not in state or 'rng' not in state:
            raise UserError(f"'{paths['state']}' holds weights only (a best.pt or epochNNN.pt copied there?), not a "
                            "whole run state; fine-tune from it with --init_from=<that file> and another --out_dir")
        return state, paths['state']
    generator_file, discriminator_file = legacy_paths(out_dir, name)
    if not os.path.exists(generator_file) and os.path.isdir(out_dir):  # the data folder's name may have changed
        found = sorted(d for d in os.listdir(out_dir) if d.endswith('_train_generator')
                       and os.path.exists(os.path.join(out_dir, d, 'latest.pt')))
        if len(found) > 1:
            raise UserError(f"'{out_dir}' holds several runs of the old layout ({', '.join(found)}); pass a "
                            "--data_dir whose folder name is that of the run to resume")
        if found:
            generator_file, discriminator_file = legacy_paths(out_dir, found[0][:-len('_train_generator')])
    if os.path.exists(generator_file):
        return convert_legacy_run(generator_file, discriminator_file), generator_file
    return None, None


def settings_to_take(out_dir, config, given, defaults):
    """What a resume takes from the run in out_dir: {name: the run's value} for each setting the command did not give
    (`given`: the names it gave) or gave as the run was first asked before cutting it to fit its data (capture's
    `asked`), read from its state.pt (the authority; config.json is for people). A relative data folder that is
    no longer the same place from here is taken as its absolute path. {} when there is no readable state.pt
    (find_state then says why)."""
    path = run_paths(out_dir)['state']
    if not os.path.isfile(path):
        return {}
    try:
        state = load_checkpoint(path)
    except UserError:
        return {}
    if not isinstance(state, dict) or not isinstance(state.get('config'), dict):
        return {}
    stored, asked = dict(state['config']), state.get('asked') or {}
    data_path = state.get('data_path')
    if data_path and os.path.abspath(stored.get('data_dir', '')) != data_path and os.path.isdir(data_path):
        stored['data_dir'] = data_path
    return {k: v for k, v in stored.items() if k in defaults and k not in ('init_from', 'out_dir')
            and (k not in given or k in asked and asked[k] == config[k]) and v != config[k]}


def setting_changes(stored, asked, defaults):
    """{name: (stored value, asked value)} for every setting that differs (init_from says how to start and out_dir
    where the run is, not what it is); a setting the stored config lacks (an older run) counts as the default it
    ran with."""
    return {k: (stored.get(k, defaults.get(k)), v) for k, v in asked.items()
            if k in defaults and k not in ('init_from', 'out_dir') and stored.get(k, defaults.get(k)) != v}


def check_resume(state, config, defaults, schedule_fn, source):
    """Refuse, with one UserError that names each setting and the fix, a resume whose settings would change what the
    run is; returns the changes that are allowed ({name: (old, new)}), for the caller to print and record. Needs no
    data, so a refusal comes before any is read; check_resume_data then compares the data.

    schedule_fn(config, epoch) gives what epoch `epoch` (0-based) runs with (learning-rate factor, adversarial or
    not): the schedule may change only for epochs not yet trained."""
    changes = setting_changes(state['config'], config, defaults)
    refused = {k: v for k, v in changes.items() if k not in FREE_SETTINGS}
    stored = {k: state['config'].get(k, defaults.get(k)) for k in defaults}
    trained = state['epoch'] + (1 if state.get('batch') else 0)  # a mid-epoch stop has begun its epoch
    schedule = [k for k in SCHEDULE_SETTINGS if k in changes]
    alters = lambda settings: any(schedule_fn(stored, e) != schedule_fn(settings, e) for e in range(trained))  # noqa: E731
    if schedule and alters(config):  # name the settings that alone alter a trained epoch (all, if only together)
        alone = [k for k in schedule if alters({**stored, k: config[k]})]
        refused.update({k: changes[k] for k in alone or schedule})
    if refused:
        listed = ', '.join(f"{k}={old!r} (asked {new!r})" for k, (old, new) in sorted(refused.items()))
        why = (f" (it has trained {trained} epoch(s): --epochs cannot ask for fewer; its epochs are kept as "
               "epochNNN.pt with --keep_snapshots, and best.pt is the rule's pick)") if 'epochs' in refused and \
            refused['epochs'][1] < trained else ''
        raise UserError(f"{source} was trained with {listed}: these change what the run means{why}. Resume with the "
                        "run's values, or start a new run (--init_from=scratch and another --out_dir)")
    return changes


def check_resume_data(state, config, n_train, source, data_fingerprint=''):
    """Refuse (UserError) a resume on other training images than the run's: another count (n_train; None: not read
    yet), or other names or sizes (data_fingerprint, dataset.py's) where the run recorded them."""
    if state.get('n_train') is not None and n_train is not None and state['n_train'] != n_train:
        raise UserError(f"{source} was trained on {state['n_train']} images but --data_dir={config['data_dir']} gives "
                        f"{n_train}; resume on the same data, or start a new run in another --out_dir")
    if state.get('data_fingerprint') and data_fingerprint and state['data_fingerprint'] != data_fingerprint:
        raise UserError(f"{source} was trained on other images than --data_dir={config['data_dir']} holds (their "
                        "names or sizes differ); resume on the same data, or start a new run in another --out_dir")


def restore(state, G, G_ema, D, opt_G, opt_D, adversarial=True):
    """Load a state's weights and optimizer moments into the models (in place). A different architecture is a
    UserError naming the settings to pass."""
    if state['model_config'] != G.config:
        raise UserError(f"the run holds a generator with {state['model_config']} but this command asks for "
                        f"{G.config}; pass the run's settings, or start a new run in another --out_dir")
    G.load_state_dict(state['G'])
    opt_G.load_state_dict(state['opt_G'])
    if G_ema is not None and state.get('G_ema') is not None:
        G_ema.load_state_dict(state['G_ema'])
    if state.get('D') is not None:
        D.load_state_dict(state['D'])
        opt_D.load_state_dict(state['opt_D'])
    elif adversarial:
        print("warning: the run has no discriminator state; D starts fresh")


def colorfulness_ratio(entry):
    """An epoch's validation colorfulness relative to the real images' (0 for records that lack either)."""
    real = entry.get('val_colorfulness_real')
    return entry['val_colorfulness'] / real if real and 'val_colorfulness' in entry else 0.0


SELECTION_RULES = ('mae', 'color')


def best_epoch(history, min_color, rule='mae', max_mae=0.93):
    """train.py's best.pt rule, on validation; None if no epoch qualifies.

    'mae': the lowest MAE among epochs whose colorfulness is at least min_color of the real images' (any epoch when
    min_color is 0). 'color': the colorfulness closest to the real images' among epochs whose MAE is at most max_mae
    x the grayscale output's. Epochs logged before either was recorded count as colorfulness 0 (never 'color')."""
    if rule == 'mae':
        eligible = [(h['val_mae'], h['epoch']) for h in history if colorfulness_ratio(h) >= min_color]
    else:
        eligible = [(abs(1 - colorfulness_ratio(h)), h['epoch']) for h in history
                    if colorfulness_ratio(h) > 0 and h['val_mae'] <= max_mae * h.get('val_mae_gray', 0.0)]
    return min(eligible)[1] if eligible else None


def rng_states(**named):
    """{name: state} of torch's global RNG (and CUDA's when present) and of each named torch.Generator (or state)."""
    states = {'torch': torch.get_rng_state(),
              **{k: g.get_state().cpu() if isinstance(g, torch.Generator) else g for k, g in named.items()}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state()
    return states
