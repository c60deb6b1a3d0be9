"""Commands in their own modules load only when used; ``memview --help`` still lists them rightly."""

from __future__ import annotations

import importlib
import subprocess

import click
import pytest
from support import PY

from memview.cli import LAZY_COMMANDS, main


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_the_stored_help_line_is_the_commands_own(name: str) -> None:
    module, attr, text = LAZY_COMMANDS[name]
    cmd = getattr(importlib.import_module(module), attr)
    assert cmd.name == name
    for limit in (40, 45, 60, 200):
        assert click.Command(name, help=text).get_short_help_str(limit) == cmd.get_short_help_str(limit), (name, limit)


def test_help_lists_every_command_without_importing_the_lazy_ones() -> None:
    code = (
        "import sys\nfrom memview.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith('memview.commands.')"
        " and m != 'memview.commands.common'"  # what every command shares (cli.py imports it)
        " or m in ('memview.triggers', 'memview.captures.service')))"
    )
    res = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    listed = [
        line.split()[0]
        for line in res.stdout.split("Commands:")[1].splitlines()
        if line.strip() and not line.startswith("LOADED")
    ]
    assert listed == sorted(set(main.commands) | set(LAZY_COMMANDS))
    assert res.stdout.strip().splitlines()[-1] == "LOADED []", res.stdout


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_lazy_command_runs(name: str) -> None:
    res = subprocess.run([PY, "-m", "memview", name, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and f"Usage: python -m memview {name}" in res.stdout, res.stdout + res.stderr
