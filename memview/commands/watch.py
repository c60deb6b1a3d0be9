"""``memview watch URL``: record a running service's memory from its HTTP endpoint.

Parses options, starts a :class:`memview.watch.WatchSession`, prints gaps and pressure changes
as they happen (stderr), stops on --duration, Ctrl-C or SIGTERM, and writes the same summary as
``memview run``. Exit status: 0, or 1 when the endpoint never gave a single reading.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from memview.cli_options import capture_options
from memview.collectors.formats import FORMATS


def _interval(ctx: Any, param: Any, value: str | None) -> float | None:
    from memview.cli import _interval as parse  # imported late: cli.py imports this module

    return parse(ctx, param, value)


def _duration(ctx: Any, param: Any, value: str | None) -> float | None:
    from memview.cli import _duration as parse  # imported late, as _interval

    return parse(ctx, param, value)


def _size(_ctx: Any, _param: Any, value: str) -> int:
    from memview.units import UnitError, parse_size

    try:
        size = parse_size(value)
    except UnitError as exc:
        raise click.BadParameter(str(exc)) from None
    if size <= 0:
        raise click.BadParameter("must be above 0")
    return size


class _LivePrinter:
    """Tells the user at once about gaps and pressure changes (a listener: returns immediately)."""

    KINDS = frozenset({"gap", "gap_end", "pressure", "field_invalid", "error"})

    def on_event(self, event: Any) -> None:
        if event.kind in self.KINDS:
            click.echo(f"memview: {event.t:8.1f}s  {event.message}", err=True)


@click.command()
@click.argument("url")
@click.option("--interval", "-i", default="1", callback=_interval, help="seconds between requests (e.g. 1, 250ms)")
@click.option("--duration", callback=_duration,
              help="stop after this long, with a unit: 90s, 2m, 1h (default: until Ctrl-C)")
@click.option("--header", "-H", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="send this header (repeatable); used on requests, never stored")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="what the endpoint answers")
@click.option("--metric", help="Prometheus metric to record as the current usage, labels allowed: "
                               "'name{label=\"x\"}' (default process_resident_memory_bytes)")
@click.option("--field", "fields", multiple=True, metavar="KEY=PATH",
              help="JSON value to record, e.g. current=memory.used_mb (repeatable; current is required)")
@click.option("--unit", help="unit of --field/--metric values: bytes, KiB, MiB, GiB, KB, MB, GB "
                             "(default: from the field name's suffix, e.g. _mb is MiB)")
@click.option("--timeout", default=None, callback=_interval,
              help="give up on a request after this long (default 2s, always below the interval)")
@click.option("--max-body", default="10MiB", callback=_size, show_default=True, help="largest response accepted")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="write the summary JSON here")
@click.option("--name", help="a name for the session")
@click.option("--quiet", "-q", is_flag=True, help="no live messages and no summary on stderr")
@click.option("--db", envvar="MEMVIEW_DB", type=click.Path(dir_okay=False),
              help="SQLite database (default: the user data folder; env MEMVIEW_DB)")
@capture_options()
def watch(url: str, interval: float, duration: float | None, headers: tuple[str, ...], fmt: str, metric: str | None,
          fields: tuple[str, ...], unit: str | None, timeout: float | None, max_body: int, json_path: str | None,
          name: str | None, quiet: bool, db: str | None, **capture_kw: Any) -> None:
    """Record a service's memory from its HTTP endpoint every --interval until --duration or Ctrl-C.

    URL answers the memory-profile JSON document (current_usage_mb, by_component, pressure, …),
    Prometheus text (/metrics), or any JSON with --field current=path. A request that fails is
    recorded as a gap with its reason and retried with backoff.
    """
    from memview.captures.options import CaptureSetup
    from memview.cli import _fail, _finish_session, _open_store, stop_on_signals
    from memview.collectors.base import CollectorError
    from memview.watch import WatchSession

    captures = CaptureSetup.from_cli(**capture_kw)
    store = _open_store(db)
    bind_stop = stop_on_signals()
    try:
        session = WatchSession.start(url, store, interval, fmt=fmt, headers=list(headers), fields=list(fields),
                                     unit=unit, metric=metric, duration=duration, timeout=timeout,
                                     max_bytes=max_body, before_start=captures.install)
    except CollectorError as exc:
        _fail(str(exc))
    if not quiet:
        session.recorder.add_listener(_LivePrinter())

    def stop(reason: str) -> None:
        session.recorder.stop(reason)
        session.collector.cancel()

    bind_stop(stop)
    try:
        while not session.recorder.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop("interrupted")
    session.close()
    if name:
        store.update_session(session.recorder.session_id, name=name)
    summary = _finish_session(store, session, json_path, quiet)
    if not summary["samples"]:
        last = session.collector.last_reason or "no answer"
        click.echo(f"memview: the endpoint gave no reading ({last})", err=True)
        sys.exit(1)
