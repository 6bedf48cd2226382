"""The --name=value command line, device resolution, the autocast factory and quiet exits on signals."""
import os
import signal
import subprocess
import sys

import pytest

from colorize_gan import utils
from colorize_gan.utils import UserError
from conftest import REPO, run


def test_overrides_types_and_unknown_names():
    cfg = {'lr': 2e-4, 'epochs': 100, 'resume': True, 'device': 'auto', 'out_dir': '.'}
    got = utils.parse_overrides(['--lr=1', '--epochs', '3', '--resume=false', '--device', 'cpu', '--out-dir=x'], cfg)
    assert got == {'lr': 1.0, 'epochs': 3, 'resume': False, 'device': 'cpu', 'out_dir': 'x'}
    assert isinstance(got['lr'], float)
    with pytest.raises(UserError, match=r'unknown option --epoch; did you mean --epochs\?'):
        utils.parse_overrides(['--epoch=1'], cfg)
    with pytest.raises(UserError, match=r'unknown option --zzz; see --help'):
        utils.parse_overrides(['--zzz=1'], cfg)
    with pytest.raises(UserError, match='not a valid int'):
        utils.parse_overrides(['--epochs=2.5'], cfg)
    with pytest.raises(UserError, match='unexpected argument'):
        utils.parse_overrides(['epochs=2'], cfg)
    assert utils.parse_overrides(['--resume'], cfg) == {'resume': True}


def test_configure_applies_and_prints_each_override(capsys):
    namespace = {'epochs': 100, 'lr': 2e-4, 'name': 'x', '_private': 1, 'Upper': 2, '__file__': None}
    config = utils.configure(namespace, ['--epochs=3', '--lr=0.0002'])
    assert config == {'epochs': 3, 'lr': 2e-4, 'name': 'x'} and namespace['epochs'] == 3
    out = capsys.readouterr().out
    assert 'override: epochs = 3 (default 100)' in out and 'lr' not in out  # a value equal to the default is no news


def test_help_shows_defaults_and_the_comments_of_the_config_block():
    proc = run('train.py', '--help')
    assert proc.returncode == 0
    assert "--epochs=100" in proc.stdout
    assert "--lambda_adv=1.0" in proc.stdout and "0 trains the L1-only U-Net baseline" in proc.stdout
    assert '# optimization' in proc.stdout  # the group headings come along
    usage = proc.stdout.split('options (')[0]
    assert usage.startswith('Train the conditional-GAN colorizer') and 'init_from' in usage
    assert 'globs' in run('colorize.py', '--help').stdout.split('options')[0]  # what it takes, before the options


def test_a_repeatable_option_collects_every_value_and_others_keep_the_last():
    cfg = {'hint': '', 'out_dir': 'x'}
    got = utils.parse_overrides(['--hint=1,2,red', '--out_dir=a', '--hint', '3,4,#00ff00', '--out_dir=b'], cfg,
                                repeatable=('hint',))
    assert got == {'hint': '1,2,red\n3,4,#00ff00', 'out_dir': 'b'}


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_interpreter_shuts_down_exits_quietly(signum):
    # what a second Ctrl-C at the very end of colorize.py or train.py meets: the work is written, an atexit callback
    # runs, the signal arrives; the default handling would print a KeyboardInterrupt traceback from inside it
    code = ("import atexit, os, signal, sys; from colorize_gan.utils import exit_at_once_on_signals; "
            "exit_at_once_on_signals(); print('written'); "
            f"atexit.register(lambda: (os.kill(os.getpid(), {int(signum)}), print('not reached')))")
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + signum and proc.stdout == 'written\n' and proc.stderr == ''


def test_atomic_write_syncs_to_disk_unless_told_the_file_can_be_remade(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(utils.os, 'fsync', lambda fd: synced.append(fd))
    utils.atomic_write(tmp_path / 'state.pt', lambda f: f.write(b'weights'))
    assert len(synced) == 1 and (tmp_path / 'state.pt').read_bytes() == b'weights'
    utils.atomic_write(tmp_path / 'crop.png', lambda f: f.write(b'pixels'), durable=False)
    assert len(synced) == 1 and (tmp_path / 'crop.png').read_bytes() == b'pixels'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['crop.png', 'state.pt']  # no temporary file left


def test_ctrl_c_inside_interrupt_after_takes_effect_as_the_block_ends():
    import os
    import time

    from colorize_gan.utils import interrupt_after
    before, reached = signal.signal(signal.SIGINT, signal.default_int_handler), []
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupt_after():  # a library call that must not see the interrupt runs here
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                reached.append('the block ran to its end')
        assert reached and signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_short_option_is_an_error_unless_a_file_has_that_name(tmp_path, monkeypatch):
    cfg = {'out_dir': 'x'}
    with pytest.raises(UserError, match=r"unknown option -v; options take the form --name=value .*no file '-v'"):
        utils.parse_overrides(['photo.jpg', '-v'], cfg, positional=True)
    monkeypatch.chdir(tmp_path)
    (tmp_path / '-v').touch()  # a file may be named so: then it is an input
    assert utils.parse_overrides(['photo.jpg', '-v', '-'], cfg, positional=True) == ({}, ['photo.jpg', '-v', '-'])


def test_an_output_folder_that_is_a_link_to_nothing_is_refused_before_any_work(tmp_path):
    (tmp_path / 'dangling').symlink_to(tmp_path / 'gone')
    with pytest.raises(UserError, match=r"is a link to .*gone', which does not exist\); remove the link"):
        utils.check_out_dir(str(tmp_path / 'dangling' / 'sub'))
    (tmp_path / 'file').write_text('x')
    with pytest.raises(UserError, match=r"cannot write to --out_dir=.*file' is a file\)"):
        utils.check_out_dir(str(tmp_path / 'file' / 'sub'))
    utils.check_out_dir(str(tmp_path / 'new' / 'folder'))
    assert sorted(os.listdir(tmp_path)) == ['dangling', 'file']  # nothing made, nothing left


def test_scripts_make_errors_and_ctrl_c_one_line_before_pytorch_loads():
    import ast
    for script in ('colorize.py', 'eval.py', 'demo.py', 'figures.py', 'export.py', 'compare.py', 'train.py',
                   'bench.py'):
        tree = ast.parse(open(os.path.join(REPO, script)).read())
        ours = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) and (
            getattr(node, 'module', None) or node.names[0].name).startswith('colorize_gan')]
        assert isinstance(ours[0], ast.Import) and ours[0].names[0].name == 'colorize_gan.script', script
    for raised, line in (('KeyboardInterrupt', 'interrupted (Ctrl-C)'),
                         ("__import__('colorize_gan.utils').utils.UserError('no such photo')", 'error: no such photo')):
        proc = subprocess.run([sys.executable, '-c', f'import colorize_gan.script; raise {raised}'], cwd=REPO,
                              capture_output=True, text=True)
        assert proc.stderr.strip() == line and proc.returncode != 0, raised
