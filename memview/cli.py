"""The ``memview`` command line: each command parses, calls the core, prints. No logic here.

Nothing at module level imports Qt or sqlite-utils, so ``memview --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from memview import __version__
from memview.cli_options import capture_options
from memview.commands.common import (
    StoreTrouble,
    complete_session_id,
    db_option,
    fail,
    finish_session,
    marker_options,
    metrics_server,
    open_store,
    phase_options,
    recording_options,
    serve_metrics_option,
    stop_on_signals,
)
from memview.errors import CommandError, OptionError


class CoreErrorsGroup(click.Group):
    """A click group that shows a core :class:`OptionError` from any command as a usage error (one line,
    exit 2): the core never imports click, so it cannot raise click's own exceptions. A
    :class:`CommandError` (a command that cannot go on, raised by ``commands.common.fail``) is shown
    here, once for every command, as ``memview: MESSAGE`` and exits with its code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OptionError as exc:
            raise click.BadParameter(exc.message, param_hint=exc.option) from None
        except CommandError as exc:
            click.echo(f"memview: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:  # every command: a database SQLite cannot read is one line, not a traceback
            import sqlite3

            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            click.echo(
                f"memview: the database cannot be read ({exc}); it may be damaged: make a copy, then try "
                "sqlite3 FILE .recover",
                err=True,
            )
            sys.exit(1)


class LazyGroup(CoreErrorsGroup):
    """A click group whose commands in ``lazy`` are imported on first use; ``--help`` lists them
    from their stored help lines without importing them."""

    lazy: dict[str, tuple[str, str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import importlib

            module, attr, _ = self.lazy[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            cmd = self.commands.get(name)
            if cmd is None:
                # shortened as click shortens a command's own help (click.utils.make_default_short_help is
                # deprecated in click 8.2 and goes in 9.0; a throwaway Command uses the public path)
                rows.append((name, click.Command(name, help=self.lazy[name][2]).get_short_help_str(limit)))
            elif not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="memview")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Record, compare and investigate the memory of processes and services."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(gui)


# allow_interspersed_args=False: COMMAND's own options stay COMMAND's (run -- ls -la, or run ls -la); but an
# unknown option *before* COMMAND is memview's typo, refused as one (not run as a command, exit 127)
@main.command(context_settings={"allow_interspersed_args": False})
@recording_options("stop recording after this long, with a unit: 90s, 2m, 1h (the child runs on)")
@click.option("--no-children", is_flag=True, help="record the command's own process only")
@click.option(
    "--no-envelope",
    is_flag=True,
    help="do not reset the processes' high-water marks (clear_refs): no per-interval maxima, but a "
    "program that reads its own VmHWM or ru_maxrss sees its whole-life figure",
)
@capture_options(launch=True)
@db_option
@phase_options
@serve_metrics_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    interval: float,
    duration: float | None,
    json_path: str | None,
    name: str | None,
    no_children: bool,
    no_envelope: bool,
    quiet: bool,
    db: str | None,
    command: tuple[str, ...],
    serve_metrics: str | None,
    **opts: Any,
) -> None:
    """Launch COMMAND and record its memory (and its children's) until it exits.

    Like /usr/bin/time: the command keeps the terminal, and memview exits with its status.
    The command gets MEMVIEW_FD for announcing phases (docs/phases.md). Every process of the
    command gets its exact own peak, read at its exit (docs/exactness.md); processes it leaves
    running (daemons) are recorded until they exit or Ctrl-C.
    """
    from memview.captures.options import CaptureSetup
    from memview.marker_sources import MarkerError
    from memview.runner import LaunchError, ProcessSession, run_foreground
    from memview.store import StoreError

    markers = marker_options(opts)
    captures = CaptureSetup.from_cli(**opts)
    argv = captures.launch_argv(list(command))  # under memray with --memray
    store = open_store(db)
    metrics = metrics_server(serve_metrics)
    try:
        store.check_writable()  # before launching: never a child left running unrecorded
    except StoreError as exc:
        fail(str(exc))

    def before_start(s: ProcessSession) -> None:
        """Listeners and capture triggers on the recorder, before the child runs (nothing is missed)."""
        s.recorder.add_listener(StoreTrouble())
        captures.install(s)
        if metrics:
            metrics.attach(s.recorder)

    try:
        session = run_foreground(
            argv=argv,
            store=store,
            interval=interval,
            duration=duration,
            children=not no_children,
            env=captures.launch_env(),
            markers=markers,
            envelope=not no_envelope,
            before_start=before_start,
        )
    except LaunchError as exc:
        captures.abandon()
        fail(str(exc), exc.exit_code)
    except MarkerError as exc:
        fail(str(exc))
    except (StoreError, OSError) as exc:  # after the check: the runner has killed and reaped the child
        captures.abandon()
        fail(f"cannot record: {exc}")
    if name:
        store.update_session(session.recorder.session_id, name=name)
    finish_session(store, session, json_path, quiet)
    if metrics:
        metrics.close()
    status = session.exit.status if session.exit else 0
    writer = session.recorder.writer
    # the database writer died (not a full disk, which the summary from memory covers): a failure of memview's
    sys.exit(status or (1 if writer is not None and writer.dead else 0))


@main.command()
@click.argument("pid", type=int)
@recording_options("stop after this long, with a unit: 90s, 2m, 1h (default: until it exits or Ctrl-C)")
@click.option("--no-children", is_flag=True, help="record the process itself only")
@click.option(
    "--envelope",
    is_flag=True,
    help="record each process's exact maximum between samples by resetting its high-water mark "
    "(clear_refs). Off by default: the reset is visible to the process (its own VmHWM and "
    "ru_maxrss then count from memview's last reset)",
)
@capture_options()
@db_option
@phase_options
@serve_metrics_option
def attach(
    pid: int,
    interval: float,
    duration: float | None,
    json_path: str | None,
    name: str | None,
    no_children: bool,
    envelope: bool,
    quiet: bool,
    db: str | None,
    serve_metrics: str | None,
    **opts: Any,
) -> None:
    """Record a running process (and its children) by PID until it exits, --duration, or Ctrl-C."""
    from memview.captures.options import CaptureSetup
    from memview.collectors.base import CollectorError
    from memview.marker_sources import MarkerError
    from memview.runner import ProcessSession

    markers = marker_options(opts)
    captures = CaptureSetup.from_cli(**opts)
    store = open_store(db)
    metrics = metrics_server(serve_metrics)
    bind_stop = stop_on_signals()
    try:
        session = ProcessSession.attach(
            pid,
            store,
            interval,
            duration=duration,
            children=not no_children,
            markers=markers,
            envelope=envelope,
            before_start=metrics.attach_session if metrics else None,
        )
    except CollectorError as exc:
        fail(str(exc), 1)
    except MarkerError as exc:
        fail(str(exc))
    bind_stop(session.recorder.stop)
    captures.install(session)
    try:
        while not session.recorder.wait(0.5):
            pass
    except KeyboardInterrupt:
        session.recorder.stop("interrupted")
    session.close()
    if name:
        store.update_session(session.recorder.session_id, name=name)
    finish_session(store, session, json_path, quiet)
    if metrics:
        metrics.close()


@main.command()
@click.option("--limit", "-n", type=int, default=30, help="how many (newest first)")
@click.option("--filter", "text", help="only sessions whose name, command or tags contain this")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@db_option
def sessions(limit: int, text: str | None, as_json: bool, db: str | None) -> None:
    """List stored sessions, newest first."""
    from memview.report import sessions_table

    rows = open_store(db).sessions(limit=limit, text=text)
    if as_json:
        keep = (
            "id",
            "kind",
            "name",
            "status",
            "target",
            "started_at",
            "wall_s",
            "peak_rss_bytes",
            "exit_code",
            "signal",
            "tags",
        )
        click.echo(json.dumps([{k: r[k] for k in keep} for r in rows], indent=2))
    elif rows:
        click.echo(sessions_table(rows))
    else:
        click.echo("no sessions yet: try  memview run -- COMMAND", err=True)


@main.command()
@click.argument("session_id", type=int, shell_complete=complete_session_id)
@click.option("--json", "as_json", is_flag=True, help="print the summary JSON")
@db_option
def show(session_id: int, as_json: bool, db: str | None) -> None:
    """One session's summary."""
    from memview.analysis import session_summary
    from memview.report import summary_text
    from memview.store import StoreError

    store = open_store(db)
    try:
        summary = session_summary(store, session_id)
    except StoreError as exc:
        fail(str(exc), 1)
    click.echo(json.dumps(summary, indent=2) if as_json else summary_text(summary))


@main.command()
@db_option
def gui(db: str | None) -> None:
    """Open the desktop app."""
    import importlib

    try:
        # by name: the core never imports Qt (import-linter), and --help must not load it
        gui_main = importlib.import_module("memview.ui.app").main
    except ImportError as exc:
        fail(f"the desktop app is not available: {exc}")
    sys.exit(gui_main(db))


#: commands in their own modules, imported only when used: ``memview --help`` and ``memview run``
#: should not pay for every feature's imports. name -> (module, attribute, the help line of
#: ``memview --help``; tests/test_cli_lazy.py checks it is the command's own).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "watch": (
        "memview.commands.watch",
        "watch",
        "Record a service's memory from its HTTP endpoint every --interval until --duration or Ctrl-C.",
    ),
    "profile": (
        "memview.commands.profile",
        "profile",
        "Profile each case of a manifest over its inputs; one record per case/input in the JSON.",
    ),
    "baseline": (
        "memview.commands.baseline",
        "baseline",
        "Write a baseline from profile results, or check results against one.",
    ),
    "export": (
        "memview.commands.bundle",
        "export_command",
        "Write one session to a trace bundle (.memview.zip) to share or attach to a bug report.",
    ),
    "import": (
        "memview.commands.bundle",
        "import_command",
        "Add the session in a trace bundle to the database (once: re-importing reports the existing id).",
    ),
    "compare": (
        "memview.commands.compare",
        "compare_command",
        "Compare sessions side by side: peak, average, final, wall time and each phase's peak and "
        "duration, with the change of each against the first (A).",
    ),
    "install-desktop": (
        "memview.commands.install_desktop",
        "install_desktop",
        "Add memview to the desktop's application menu (a .desktop entry and the icon), for this user.",
    ),
}
main.lazy = LAZY_COMMANDS

if __name__ == "__main__":
    main()
