"""What every command shares: the ``--db`` option, opening the store, failing with one line, and the
options and helpers of the recording commands (run, attach, watch).

``cli.py`` and every module of ``commands/`` import from here; nothing here imports ``cli.py`` or a
command, so the arrows point one way (commands → common, cli → common; a test checks the import graph
has no cycles). Nothing at module level imports more than click, so ``memview --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from memview.errors import CommandError

INTERVAL_HELP = "seconds between samples (e.g. 0.05, 10ms); down to 1ms"


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the command: ``memview.cli.main`` prints ``memview: MESSAGE`` and exits with ``code``."""
    raise CommandError(message, code)


def _with_unit(value: str, kind: str) -> float:
    """``value`` read by :mod:`memview.units` as a ``kind`` ("duration" or "size"); a usage error otherwise."""
    from memview.units import UnitError, parse_duration, parse_size

    try:
        return parse_duration(value) if kind == "duration" else parse_size(value)
    except UnitError as exc:
        raise click.BadParameter(str(exc)) from None


def interval_value(_ctx: Any, _param: Any, value: str | None) -> float | None:
    """``--interval``/``--timeout``: a duration with its unit, at least 1ms."""
    if value is None:
        return None
    if (seconds := _with_unit(value, "duration")) < 0.001:
        raise click.BadParameter("the shortest interval is 1ms")
    return seconds


def duration_value(_ctx: Any, _param: Any, value: str | None) -> float | None:
    """``--duration``: a duration with its unit (90s, 2m, 1h; a bare number is seconds), above 0."""
    if value is None:
        return None
    if (seconds := _with_unit(value, "duration")) <= 0:
        raise click.BadParameter("must be longer than 0s")
    return seconds


def size_value(_ctx: Any, _param: Any, value: str) -> int:
    """A size option (``--max-body 5MB``): with its unit (MB = 10^6 bytes, MiB = 2^20), above 0."""
    if (size := int(_with_unit(value, "size"))) <= 0:
        raise click.BadParameter("must be above 0")
    return size


def complete_session_id(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of a SESSION_ID: the newest stored sessions, each with its name or command.

    The database is the one the command would use: ``--db`` when it is already on the line, else
    ``MEMVIEW_DB``, else the default. Nothing is created: completing against a database that does
    not exist offers nothing (a TAB must not leave an empty database behind).
    """
    from click.shell_completion import CompletionItem

    if incomplete and not incomplete.isdigit():
        return []
    try:
        from memview.store import Store, default_db_path

        db = ctx.params.get("db") or None
        path = Path(db) if db else default_db_path()
        if not path.is_file():
            return []
        rows = Store(path).sessions(limit=50)
    except Exception:  # completion must never print a traceback into the user's shell
        return []
    return [
        CompletionItem(str(r["id"]), help=str(r.get("name") or r.get("target") or ""))
        for r in rows
        if str(r["id"]).startswith(incomplete)
    ]


def complete_session_or_file(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of an input that is a session id or a file (a bundle, a results JSON).

    The "file" item comes first: click's bash script then falls back to file names only when no
    session id matches (``compare 1<TAB>`` offers ids, ``compare run<TAB>`` files); zsh and fish
    offer both.
    """
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="file"), *complete_session_id(ctx, param, incomplete)]


#: the one ``--db`` option of every command that reads or writes the database
db_option = click.option(
    "--db",
    envvar="MEMVIEW_DB",
    type=click.Path(dir_okay=False),
    help="SQLite database (default: the user data folder; env MEMVIEW_DB)",
)


def open_store(db: str | None) -> Any:
    """The store at ``db`` (or the default one); a database that cannot be opened is one line, exit 2."""
    from memview.store import Store, StoreError

    try:
        return Store(Path(db) if db else None)
    except StoreError as exc:
        fail(str(exc))


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as indented JSON; an unwritable path is one line, exit 2."""
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")


class StoreTrouble:
    """Tells the user at once when the database stops taking writes, and when it recovers."""

    def on_store_error(self, exc: Exception) -> None:
        click.echo(f"memview: warning: cannot write to the database ({exc}); recording continues in memory", err=True)


serve_metrics_option = click.option(
    "--serve-metrics",
    metavar="[HOST:]PORT",
    help="serve the live recording as OpenMetrics at http://HOST:PORT/metrics for Prometheus (HOST defaults "
    "to 127.0.0.1; port 0 picks a free one) — docs/watch.md",
)


def metrics_server(address: str | None) -> Any:
    """The --serve-metrics server, bound now (a bad address is a one-line error before anything starts)."""
    if not address:
        return None
    from memview.metrics_server import MetricsServer, MetricsServerError

    try:
        server = MetricsServer(address)
    except MetricsServerError as exc:
        fail(str(exc))
    note = " (reachable from other machines)" if server.public else ""
    click.echo(f"memview: serving metrics at {server.url}{note}", err=True)
    return server


# -- phase markers (docs/phases.md): one block of options shared by run and attach ------------------
_PHASE_OPTIONS = [
    click.option(
        "--phase-regex",
        multiple=True,
        metavar="REGEX",
        help="phases from output/log lines: named groups (?P<start>…), (?P<end>…), (?P<name>…), "
        "(?P<value>…)(?P<unit>…); repeatable",
    ),
    click.option(
        "--phase-preset",
        multiple=True,
        type=click.Choice(["memory-log"]),
        help="a ready regex: memory-log reads '[MEMORY] before X: 123.45 MB RSS' lines",
    ),
    click.option(
        "--phase-log",
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help="follow FILE like tail -F for markers (the regex if given, else JSON lines)",
    ),
    click.option(
        "--phase-pipe",
        type=click.Path(dir_okay=False),
        metavar="PATH",
        help="read JSON marker lines from a FIFO (created if missing) or a UNIX socket (*.sock)",
    ),
]


def recording_options(
    duration_help: str,
    quiet_help: str = "no summary on stderr",
    interval_default: str = "0.05",
    interval_help: str = INTERVAL_HELP,
) -> Callable[[Any], Any]:
    """The options every recording command (run, attach, watch) has: --interval, --duration, --json,
    --name, --quiet; the help that differs between them is given."""
    options = [
        click.option(
            "--interval",
            "-i",
            default=interval_default,
            callback=interval_value,
            metavar="DURATION",
            help=interval_help,
        ),
        click.option("--duration", callback=duration_value, metavar="DURATION", help=duration_help),
        click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the summary JSON here"),
        click.option("--name", help="a name for the session"),
        click.option("--quiet", "-q", is_flag=True, help=quiet_help),
    ]

    def decorate(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def phase_options(fn: Any) -> Any:
    """Add the --phase-* options to a command."""
    for option in reversed(_PHASE_OPTIONS):
        fn = option(fn)
    return fn


def marker_options(kw: dict[str, Any]) -> Any:
    """Pop the --phase-* values out of a command's keyword arguments as one MarkerOptions."""
    from memview.marker_sources import MarkerOptions

    return MarkerOptions(
        regex=tuple(kw.pop("phase_regex", ())),
        preset=tuple(kw.pop("phase_preset", ())),
        log=kw.pop("phase_log", None),
        pipe=kw.pop("phase_pipe", None),
    )


def stop_on_signals() -> Callable[[Callable[[str], None]], None]:
    """Make SIGINT, SIGTERM and SIGHUP stop a session cleanly, installed *before* the session exists.

    A signal that arrives while the session is still starting would otherwise kill memview with
    the default action and leave the session half-written. Returns ``bind(stop)``: it hands the
    handlers the session's stop function, and calls it at once if a signal came first.

    SIGINT too: left to Python, a Ctrl-C that lands after the recorder started but before the
    command's wait loop (its ``except KeyboardInterrupt``) left the sampler running, and memview
    waited on it for ever (``test_watch``'s SIGINT case hung so on a loaded machine).
    """
    import signal

    pending: list[str] = []
    bound: list[Callable[[str], None]] = []

    def handle(reason: str) -> None:
        pending.append(reason)
        for stop in bound:
            stop(reason)

    def bind(stop: Callable[[str], None]) -> None:
        bound.append(stop)
        if pending:
            stop(pending[0])

    signal.signal(signal.SIGINT, lambda *_: handle("interrupted"))
    signal.signal(signal.SIGTERM, lambda *_: handle("terminated"))
    signal.signal(signal.SIGHUP, lambda *_: handle("hangup"))
    return bind


def finish_session(store: Any, session: Any, json_path: str | None, quiet: bool) -> dict[str, Any]:
    """The summary of a finished session: written to --json, printed on stderr unless --quiet."""
    from memview.analysis import memory_summary, session_summary
    from memview.report import summary_text

    rec = session.recorder
    if rec.store_error is not None:
        click.echo(
            f"memview: error: the session could not be saved to {store.path} ({rec.store_error}); "
            "the summary below comes from memory",
            err=True,
        )
        summary = memory_summary(rec)
    else:
        summary = session_summary(store, rec.session_id)
    if json_path:
        write_json(json_path, summary)
    if not quiet:
        click.echo(summary_text(summary), err=True)
    return summary
