"""The README's commands: the quick start runs as written, and every other command names a script and options that
exist, so the README cannot rot."""
import os
import re
import shlex

import pytest

from conftest import REPO, run

README = open(os.path.join(REPO, 'README.md')).read()


def _blocks():
    """The shell code blocks of the README, each as (the heading above it, its lines)."""
    heading, out = '', []
    for part in re.split(r'(^#+ .*$)', README, flags=re.M):
        if part.startswith('#'):
            heading = part.lstrip('# ').strip()
            continue
        for block in re.findall(r'```bash\n(.*?)```', part, flags=re.S):
            out.append((heading, [ln for ln in block.splitlines() if ln.strip() and not ln.startswith('#')]))
    return out


def _commands():
    """(script, [args]) of every `python3 X.py ...` or `torchrun ... X.py ...` line in the README's shell blocks."""
    found = []
    for _, lines in _blocks():
        for line in lines:
            words = shlex.split(line, comments=True)
            scripts = [i for i, w in enumerate(words) if w.endswith('.py')]
            if words and words[0] in ('python3', 'torchrun', 'srun') and scripts:
                found.append((words[scripts[0]], words[scripts[0] + 1:]))
    return found


def _options(script):
    """The --name options a script accepts: the lowercase assignments of its config block."""
    source = open(os.path.join(REPO, script)).read()
    block = source.split('# ' + '-' * 77)[1]
    return set(re.findall(r'^([a-z_][a-z0-9_]*) = ', block, flags=re.M))


def test_every_readme_command_names_a_real_script_and_real_options():
    commands = _commands()
    assert len(commands) > 20
    for script, args in commands:
        assert os.path.exists(os.path.join(REPO, script)), script
        known = _options(script)
        for arg in args:
            if arg.startswith('--') and arg not in ('--help',):
                name = arg[2:].split('=')[0].replace('-', '_')
                assert name in known, f'README: {script} has no option --{name}'


@pytest.mark.slow
def test_quick_start_runs_offline_as_written(tmp_path):
    quick = [lines for heading, lines in _blocks() if heading.lower().startswith('quick start')]
    assert quick, 'the README has a "Quick start" section with a bash block'
    for line in quick[0]:  # each in this process, in an empty folder (the autouse fixture keeps caches there too)
        words = shlex.split(line, comments=True)
        assert words[0] == 'python3', line
        proc = run(words[1], *words[2:], cwd=tmp_path, check=False)
        assert proc.returncode == 0, f'{line}\n{proc.stdout}\n{proc.stderr}'
    outputs = [os.path.join(root, f) for root, _, files in os.walk(tmp_path / 'runs') for f in files]
    assert any('colorized' in p and p.endswith('.png') for p in outputs)  # it ends with a colorized photo
