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
from memview.commands.common import (
    db_option,
    fail,
    finish_session,
    interval_value,
    metrics_server,
    open_store,
    recording_options,
    serve_metrics_option,
    size_value,
    stop_on_signals,
    write_json,
)


class _LivePrinter:
    """Tells the user at once about gaps and pressure changes (a listener: returns immediately)."""

    KINDS = frozenset(
        {"gap", "gap_end", "pressure", "field_invalid", "error", "series_gone", "series_back", "series_capped"}
    )

    def on_event(self, event: Any) -> None:
        if event.kind in self.KINDS:
            click.echo(f"memview: {event.t:8.1f}s  {event.message}", err=True)


@click.command()
@click.argument("url")
@recording_options(
    "stop after this long, with a unit: 90s, 2m, 1h (default: until Ctrl-C)",
    quiet_help="no live messages and no summary on stderr",
    interval_default="1",
    interval_help="seconds between requests (e.g. 1, 250ms)",
)
@click.option(
    "--header",
    "-H",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="send this header (repeatable); used on requests, never stored",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True, help="what the endpoint answers"
)
@click.option(
    "--metric",
    help="Prometheus metric to record as the current usage, labels allowed: "
    "'name{label=\"x\"}' (default process_resident_memory_bytes)",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="KEY=PATH",
    help="JSON value to record, e.g. current=memory.used_mb (repeatable; current is required)",
)
@click.option(
    "--unit",
    help="unit of --field/--metric values: bytes, KiB, MiB, GiB, KB, MB, GB "
    "(default: from the field name's suffix, e.g. _mb is MiB)",
)
@click.option(
    "--timeout",
    default=None,
    callback=interval_value,
    help="give up on a request after this long (default 2s, always below the interval)",
)
@click.option(
    "--keep-query",
    "keep_query",
    multiple=True,
    metavar="NAME",
    help="store this query parameter's value (repeatable); every other query value and the URL's "
    "user:password are masked in the database, --json, messages and bundles",
)
@click.option("--max-body", default="10MiB", callback=size_value, show_default=True, help="largest response accepted")
@click.option(
    "--query",
    "-Q",
    metavar="PROMQL",
    help="ask the Prometheus server at URL (prometheus+http://HOST:9090) this PromQL query: one series "
    "per returned label set (docs/watch.md, 'A fleet through Prometheus')",
)
@click.option(
    "--start",
    metavar="TIME",
    help="with --query: record the past window from TIME (Unix seconds, 2026-12-06T10:00:00Z, now-1h) instead of live",
)
@click.option("--end", metavar="TIME", help="with --start: the window's end (default now)")
@click.option(
    "--max-series",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="with --query: record at most this many label sets (the rest are dropped with a warning)",
)
@serve_metrics_option
@db_option
@capture_options()
def watch(
    url: str,
    interval: float,
    duration: float | None,
    headers: tuple[str, ...],
    fmt: str,
    metric: str | None,
    fields: tuple[str, ...],
    unit: str | None,
    timeout: float | None,
    keep_query: tuple[str, ...],
    max_body: int,
    json_path: str | None,
    name: str | None,
    quiet: bool,
    db: str | None,
    query: str | None,
    start: str | None,
    end: str | None,
    max_series: int,
    serve_metrics: str | None,
    **capture_kw: Any,
) -> None:
    """Record a service's memory from its HTTP endpoint every --interval until --duration or Ctrl-C.

    URL answers the memory-profile JSON document (current_usage_mb, by_component, pressure, …),
    Prometheus text (/metrics), or any JSON with --field current=path. A request that fails is
    recorded as a gap with its reason and retried with backoff.

    With --query, URL is a Prometheus server (prometheus+http://HOST:9090) and memview records
    the query's result live, or the past window --start/--end as one session.
    """
    from memview.captures.options import CaptureSetup
    from memview.collectors.base import CollectorError
    from memview.collectors.promql import is_prometheus_url
    from memview.watch import WatchSession

    promql = query is not None or is_prometheus_url(url)
    if promql and query is None:
        fail("a prometheus+ URL needs --query 'PROMQL'")
    if promql and (fmt != "auto" or metric or fields or unit):
        fail("--format, --metric, --field and --unit read an endpoint; with --query the server's series are recorded")
    if (start or end) and not promql:
        fail("--start/--end need --query (a window of a Prometheus server)")
    if start or end:
        if not start:
            fail("--end needs --start")
        if serve_metrics:
            fail("--serve-metrics serves a live recording, not a past window")
        _record_window(
            url, query or "", start or "", end, interval, list(headers), timeout, max_series, name, json_path, quiet, db
        )
        return
    captures = CaptureSetup.from_cli(**capture_kw)
    store = open_store(db)
    metrics = metrics_server(serve_metrics)

    def before_start(s: Any) -> None:
        captures.install(s)
        if metrics:
            metrics.attach(s.recorder)

    bind_stop = stop_on_signals()
    try:
        session = WatchSession.start(
            url,
            store,
            interval,
            fmt=fmt,
            headers=list(headers),
            fields=list(fields),
            unit=unit,
            metric=metric,
            duration=duration,
            timeout=timeout,
            max_bytes=max_body,
            keep_query=keep_query,
            before_start=before_start,
            query=query,
            max_series=max_series,
        )
    except CollectorError as exc:
        fail(str(exc))
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
    summary = finish_session(store, session, json_path, quiet)
    if metrics:
        metrics.close()
    if not summary["samples"]:
        last = session.collector.last_reason or "no answer"
        click.echo(f"memview: the {'server' if promql else 'endpoint'} gave no reading ({last})", err=True)
        sys.exit(1)


def _record_window(
    url: str,
    query: str,
    start: str,
    end: str | None,
    step: float,
    headers: list[str],
    timeout: float | None,
    max_series: int,
    name: str | None,
    json_path: str | None,
    quiet: bool,
    db: str | None,
) -> None:
    """``--start/--end``: one query_range stored as a finished session (comparable with ``compare``)."""
    from memview.collectors.base import CollectorError
    from memview.collectors.promql_window import parse_time, record_window

    try:
        t0 = parse_time(start)
        t1 = parse_time(end) if end else parse_time("now")
        store = open_store(db)
        sid, events = record_window(
            store, url, query, t0, t1, step, headers=headers, timeout=timeout or 30.0, max_series=max_series, name=name
        )
    except CollectorError as exc:
        fail(str(exc))
    if not quiet:
        for event in events:
            click.echo(f"memview: {event.message}", err=True)
    from memview.analysis import session_summary
    from memview.report import summary_text

    summary = session_summary(store, sid)
    if json_path:
        write_json(json_path, summary)
    if not quiet:
        click.echo(summary_text(summary), err=True)
