"""The run state: one file out and back in continues training exactly; the resume rules; the best.pt rule."""
import copy

import pytest
import torch

from colorize_gan import models, runstate
from colorize_gan.utils import UserError


def _run(seed=0):
    """A tiny G, EMA G, D and their optimizers, as train.py builds them."""
    torch.manual_seed(seed)
    G, D = models.Generator(8, 16), models.Discriminator(8)
    G_ema = copy.deepcopy(G).requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return G, G_ema, D, opt_G, opt_D


def _step(G, G_ema, D, opt_G, opt_D, data_rng):
    """One training step on a batch drawn from data_rng (and dropout from torch's RNG)."""
    L = torch.rand(4, 1, 16, 16, generator=data_rng) * 2 - 1
    ab = (torch.rand(4, 2, 16, 16, generator=data_rng) - 0.5) * 0.6
    models.gan_step(G, D, opt_G, opt_D, L, ab)
    models.update_ema(G_ema, G, 0.9)


def test_state_out_state_in_and_the_next_step_is_identical(tmp_path):
    # in-process: no train.py. Train 2 steps, save, continue 1 step; a fresh process restores and takes the same step
    live = _run()
    data_rng = torch.Generator().manual_seed(5)
    for _ in range(2):
        _step(*live, data_rng)
    paths = runstate.run_paths(str(tmp_path))
    state = runstate.capture(*live, runstate.rng_states(data=data_rng), epoch=1, batch=0, step=2, elapsed_s=1.0,
                             config={'lr': 2e-4}, history=[], changes=[], n_train=8)
    runstate.save_state(paths, state)
    _step(*live, data_rng)

    restored = _run(seed=99)  # other initial weights: everything must come from the file
    loaded, source = runstate.find_state(str(tmp_path), 'any')
    assert source == paths['state'] and loaded['step'] == 2
    runstate.restore(loaded, *restored)
    rng = torch.Generator()
    rng.set_state(loaded['rng']['data'])
    torch.set_rng_state(loaded['rng']['torch'])
    _step(*restored, rng)
    for a, b in zip(live, restored):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())) \
            if isinstance(a, torch.nn.Module) else a.state_dict()['state'].keys() == b.state_dict()['state'].keys()
    for a, b in zip(live[3].state_dict()['state'].values(), restored[3].state_dict()['state'].values()):
        assert torch.equal(a['exp_avg'], b['exp_avg']) and torch.equal(a['exp_avg_sq'], b['exp_avg_sq'])


def test_a_damaged_or_foreign_state_file_is_an_error_never_a_fresh_start(tmp_path):
    (tmp_path / 'state.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(UserError, match='cannot resume from'):
        runstate.find_state(str(tmp_path), 'x')
    torch.save({'weights': torch.zeros(1)}, tmp_path / 'state.pt')
    with pytest.raises(UserError, match='not a train.py run state'):
        runstate.find_state(str(tmp_path), 'x')
    assert runstate.find_state(str(tmp_path / 'empty'), 'x') == (None, None)


DEFAULTS = {'lr': 2e-4, 'lambda_l1': 100.0, 'epochs': 10, 'lr_decay_epochs': 0, 'l1_warmup_epochs': 0,
            'lambda_adv': 1.0, 'device': 'auto', 'data_dir': 'data', 'init_from': 'scratch', 'hints': False}


def _schedule(settings, epoch):
    decay_from = settings['epochs'] - settings['lr_decay_epochs']
    return max(0, epoch + 1 - decay_from), epoch >= settings['l1_warmup_epochs']


def _state(epoch, batch=0, **config):
    return {'epoch': epoch, 'batch': batch, 'config': {**DEFAULTS, **config}, 'n_train': 100}


def test_resume_rules():
    state = _state(3)
    same = dict(state['config'])
    assert runstate.check_resume(state, same, DEFAULTS, _schedule, 'run') == {}
    # where and how long it runs may change, and init_from is how to start, not a setting of the run
    assert runstate.check_resume(state, {**same, 'epochs': 20, 'device': 'cpu', 'init_from': 'resume'}, DEFAULTS,
                                 _schedule, 'run') == {'epochs': (10, 20), 'device': ('auto', 'cpu')}
    with pytest.raises(UserError, match=r"lambda_l1=100.0 \(asked 1.0\), lr=0.0002 \(asked 0.05\): these change"):
        runstate.check_resume(state, {**same, 'lr': 0.05, 'lambda_l1': 1.0}, DEFAULTS, _schedule, 'run')
    # the schedule: decay that would start inside the 3 trained epochs is refused, later decay is fine
    with pytest.raises(UserError, match='lr_decay_epochs=0 \\(asked 8\\)'):
        runstate.check_resume(state, {**same, 'lr_decay_epochs': 8}, DEFAULTS, _schedule, 'run')
    with pytest.raises(UserError, match=r'trained with lr_decay_epochs=0 \(asked 10\): these'):  # more epochs: fine
        runstate.check_resume(state, {**same, 'epochs': 12, 'lr_decay_epochs': 10}, DEFAULTS, _schedule, 'run')
    assert 'lr_decay_epochs' in runstate.check_resume(state, {**same, 'lr_decay_epochs': 7}, DEFAULTS, _schedule,
                                                      'run')
    with pytest.raises(UserError, match='l1_warmup_epochs'):  # a mid-epoch stop has begun epoch 4
        runstate.check_resume(_state(3, batch=5), {**same, 'l1_warmup_epochs': 4}, DEFAULTS, _schedule, 'run')
    with pytest.raises(UserError, match='trained on 100 images'):
        runstate.check_resume_data(state, same, 90, 'run')
    runstate.check_resume_data(state, same, 100, 'run')  # the same count: no refusal
    # an older run's config lacks newer settings: they count as the defaults it ran with
    old = {'epoch': 3, 'batch': 0, 'config': {k: v for k, v in DEFAULTS.items() if k != 'hints'}, 'n_train': None}
    assert runstate.check_resume(old, same, DEFAULTS, _schedule, 'run') == {}
    with pytest.raises(UserError, match='hints=False'):
        runstate.check_resume(old, {**same, 'hints': True}, DEFAULTS, _schedule, 'run')


def test_a_resume_takes_what_its_command_leaves_out_from_the_run_state(tmp_path, monkeypatch):
    from colorize_gan.checkpoint import save_checkpoint
    defaults = {**DEFAULTS, 'batch_size': 128, 'val_size': 1000, 'out_dir': ''}
    (tmp_path / 'photos').mkdir()
    out = tmp_path / 'run'
    stored = {**defaults, 'data_dir': 'photos', 'lr': 1e-4, 'batch_size': 27, 'val_size': 13, 'out_dir': 'run'}
    save_checkpoint(out / 'state.pt', {'config': stored, 'asked': {'batch_size': 128, 'val_size': 1000},
                                       'data_path': str(tmp_path / 'photos')})
    (out / 'config.json').write_text('{"config": {')  # damaged: only for people; state.pt is what counts
    command = {**defaults, 'init_from': 'resume', 'epochs': 20}
    monkeypatch.chdir(tmp_path)  # where the run was started: its relative data folder still stands
    take = lambda config, given: runstate.settings_to_take(str(out), config, given, defaults)  # noqa: E731
    assert take(command, {'init_from', 'epochs'}) == {'data_dir': 'photos', 'lr': 1e-4, 'batch_size': 27,
                                                       'val_size': 13}
    # a setting the command gives is its own (checked against the run later), unless it is the value the run was
    # first given and cut to fit its data: the same command resumes
    given = {'lr', 'val_size', 'batch_size', 'epochs'}
    assert take({**command, 'lr': 2e-4, 'val_size': 1000, 'batch_size': 64}, given) == {'data_dir': 'photos',
                                                                                       'val_size': 13}
    monkeypatch.chdir(out)  # elsewhere: the relative folder is taken as the absolute one it was
    assert take(command, set())['data_dir'] == str(tmp_path / 'photos')
    assert take(command, {'data_dir'}).get('data_dir') is None
    (out / 'state.pt').write_bytes(b'damaged')  # nothing taken; find_state then says what is wrong
    assert take(command, set()) == {}
    assert runstate.settings_to_take(str(tmp_path / 'none'), command, set(), defaults) == {}


def test_best_epoch_is_the_lowest_mae_among_colorful_enough_epochs():
    # MAE rises with color, as in a GAN: the rule takes the first epoch over the bar, not the lowest MAE overall
    rows = [(1, 10.8, 0.5), (2, 11.6, 0.75), (3, 12.0, 0.81), (4, 12.3, 0.85), (5, 11.9, 0.79)]
    history = [{'epoch': e, 'val_mae': m, 'val_colorfulness': 30 * r, 'val_colorfulness_real': 30.0}
               for e, m, r in rows]
    assert runstate.best_epoch(history, 0.8) == 3
    assert runstate.best_epoch(history, 0.0) == 1
    assert runstate.best_epoch(history, 0.9) is None
    old = [{k: v for k, v in h.items() if k != 'val_colorfulness_real'} for h in history]  # logged before the ratio
    assert runstate.best_epoch(old, 0.8) is None and runstate.best_epoch(old, 0.0) == 1


def test_best_epoch_by_color_is_the_color_nearest_real_among_accurate_enough_epochs():
    # gray MAE 13: the cap 0.93 x 13 = 12.09 rules out epoch 4, the most colorful; epoch 6 overshoots real's color
    rows = [(1, 10.8, 0.5), (2, 11.6, 0.75), (3, 12.0, 0.81), (4, 12.3, 0.9), (5, 11.9, 0.79), (6, 12.05, 1.25)]
    history = [{'epoch': e, 'val_mae': m, 'val_mae_gray': 13.0, 'val_colorfulness': 30 * r,
                'val_colorfulness_real': 30.0} for e, m, r in rows]
    assert runstate.best_epoch(history, 0.8, 'color', 0.93) == 3
    assert runstate.best_epoch(history, 0.8, 'color', 0.95) == 4
    assert runstate.best_epoch(history, 0.8, 'color', 0.5) is None
    assert runstate.best_epoch(history, 0.8) == 3  # 'mae' stays the default
    old = [{k: v for k, v in h.items() if k != 'val_mae_gray'} for h in history]  # logged before the gray MAE
    assert runstate.best_epoch(old, 0.8, 'color', 0.93) is None


def test_a_new_run_refuses_a_folder_inside_the_images_or_holding_other_files(tmp_path):
    data = tmp_path / 'photos'
    splits = [str(data / 'train'), str(data / 'test')]
    for inside in (data / 'train', data / 'test' / 'grids'):
        with pytest.raises(UserError, match="is inside .*whose images are read as data"):
            runstate.check_new_run_folder(str(inside), splits)
    runstate.check_new_run_folder(str(data / 'runs' / 'x'), splits)  # beside the splits: never read as data
    runstate.check_new_run_folder(str(data / 'train' / 'run1'), [])  # torchvision's data folder holds no images
    mine = tmp_path / 'mine'
    mine.mkdir()
    for name in ('.lock', '.lock.owner', '.state.pt.abc123.tmp'):
        (mine / name).touch()
    runstate.check_new_run_folder(str(mine), splits)  # what a refused start or a killed write leaves: fine
    (mine / 'best.pt').touch()  # another run's best.pt without its state.pt: a new run would keep and promote it
    with pytest.raises(UserError, match=r"holds another run's files \(best.pt\) but no state.pt to resume"):
        runstate.check_new_run_folder(str(mine), splits)
    (mine / 'best.pt').unlink()
    for other in ('README.md', 'generator.safetensors'):
        (mine / other).touch()
        with pytest.raises(UserError, match=rf"holds files that are not a run's \({other}\); pass a new or empty"):
            runstate.check_new_run_folder(str(mine), splits)
        (mine / other).unlink()
    runstate.check_new_run_folder(str(tmp_path / 'new' / 'run'), splits)  # not there yet: fine
