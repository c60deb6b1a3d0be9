"""Click options shared by several commands: the trigger and capture options of ``run``, ``attach``, ``watch``.

The values go to :meth:`memview.captures.options.CaptureSetup.from_cli`, which checks them in the core
and raises :class:`memview.errors.OptionError`; ``memview.cli`` turns that into a usage error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from memview.captures.options import CHOICES

THRESHOLD_HELP = (
    "fire when memory crosses RULE (repeatable): 800MB, 2GiB, 80% (of RAM), +100MB/s[@5s] "
    "(growth), PHASE:500MB (only inside that phase); options: ,max=N ,cooldown=30s ,rearm=90%"
)


def _complete_tools(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of ``--capture``: the tool names, also after a comma (``py-spy-dump,hea<TAB>``)."""
    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + name for name in CHOICES if name.startswith(last)]


def capture_options(launch: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the trigger/capture options to a click command (``launch``: also ``--heaptrack``)."""
    opts = [
        click.option("--threshold", "thresholds", multiple=True, metavar="RULE", help=THRESHOLD_HELP),
        click.option(
            "--on-pressure",
            type=click.Choice(["warning", "critical"]),
            help="fire when the endpoint's pressure state reaches this level",
        ),
        click.option(
            "--capture",
            "capture",
            metavar="TOOL[,TOOL]",
            shell_complete=_complete_tools,
            help=f"what to take when a rule fires: {', '.join(CHOICES)} (default: auto if a rule is set)",
        ),
        click.option(
            "--capture-duration",
            default="5s",
            show_default=True,
            help="how long py-spy record, memray and heaptrack attach run (with a unit: 5s, 500ms, 1m)",
        ),
        click.option(
            "--capture-timeout",
            help="time limit per capture, with a unit (30s); past it the tool is killed (default: per tool)",
        ),
        click.option(
            "--max-captures",
            type=click.IntRange(min=0),
            default=10,
            show_default=True,
            help="at most this many captures per session",
        ),
        click.option("--capture-native", is_flag=True, help="py-spy: include native (C/C++/Rust) frames"),
        click.option(
            "--node-inspector",
            is_flag=True,
            help="node heap snapshots may open node's inspector on 127.0.0.1 when node was not started "
            "with --heapsnapshot-signal (while it is open ANY local user can run code in node; "
            "see SECURITY.md)",
        ),
    ]
    if launch:
        opts.append(
            click.option(
                "--heaptrack",
                "heaptrack_launch",
                is_flag=True,
                help="run COMMAND under heaptrack from its start; keeps the .zst and a summary",
            )
        )
        opts.append(
            click.option(
                "--memray",
                "memray_launch",
                is_flag=True,
                help="run a Python COMMAND under memray from its start; keeps the .bin and the "
                "allocation sites at its peak",
            )
        )

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


__all__ = ["THRESHOLD_HELP", "capture_options"]
