"""A past window of a PromQL query (``watch prometheus+URL --query Q --start/--end``), stored as one
finished session.

Split from :mod:`memview.collectors.promql` (the live collector): a window is one ``query_range``
answer turned into samples and written at once, with no sampler, so it shares the client, the
series naming and the series cap with the live path and nothing else.
"""

from __future__ import annotations

import os
import time
from typing import Any

from memview.collectors.base import CollectorError
from memview.collectors.fetch import FetchError
from memview.collectors.promql import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SERIES,
    MAX_POINTS,
    SERIES_PREFIX,
    PromQLClient,
    PromQLError,
    SeriesCap,
    cap_event,
    parse_value,
    refused,
    series_name,
)
from memview.collectors.redact import MASK
from memview.model import RSS_SERIES, Batch, Event


def record_window(
    store: Any,
    url: str,
    query: str,
    start: float,
    end: float,
    step: float,
    headers: object = None,
    timeout: float = 30.0,
    max_series: int = DEFAULT_MAX_SERIES,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[int, list[Event]]:
    """Store a past window (``query_range`` from ``start`` to ``end``, Unix seconds) as one finished session.

    Times in the session are seconds since ``start``, so two windows (before and after a deploy)
    line up in ``compare``. Returns the session id and the events it recorded (to show the user).
    Raises :class:`CollectorError` with a one-line message when nothing can be stored.
    """
    from memview.store import StoreWriter

    if not end > start:
        raise CollectorError("--end must be after --start")
    if step <= 0:
        raise CollectorError("the step (--interval) must be positive")
    if (end - start) / step > MAX_POINTS:
        raise CollectorError(
            f"{(end - start) / step:.0f} points per series is more than Prometheus answers "
            f"({MAX_POINTS}); use a larger --interval (the step)"
        )
    if max_series <= 0:
        raise CollectorError("--max-series must be above 0")
    client = PromQLClient(url, headers, timeout, max_bytes)
    try:
        result = client.query_range(query, start, end, step)
    except PromQLError as exc:
        raise CollectorError(refused(exc)) from None
    except FetchError as exc:
        raise CollectorError(f"cannot read the window from {client.target}: {exc.reason}") from None
    finally:
        client.close()
    cap = SeriesCap(max_series, set(), set())
    events: list[Event] = []
    series: dict[str, tuple[list[float], list[int]]] = {}
    totals: dict[float, int] = {}
    for item in sorted(result, key=lambda r: series_name(r.get("metric") or {})):
        label = series_name(item.get("metric") or {})
        if not cap.admit(label):
            continue
        times, values = series.setdefault(label, ([], []))
        last_t = None
        for point in item.get("values") or []:
            value = parse_value(point[1]) if isinstance(point, list) and len(point) == 2 else None
            if value is None:
                continue
            t = round(float(point[0]) - start, 6)
            if last_t is not None and t - last_t > step * 1.5:
                events.append(
                    Event(
                        last_t,
                        "series_gone",
                        f"{label} did not answer from {last_t:.0f} s to {t:.0f} s (a gap in its series)",
                        "warning",
                        {"series": label, "from_s": last_t, "to_s": t},
                    )
                )
            times.append(t)
            values.append(value)
            totals[t] = totals.get(t, 0) + value
            last_t = t
        if last_t is not None and (end - start) - last_t > step * 1.5:
            events.append(
                Event(
                    last_t,
                    "series_gone",
                    f"{label} stopped answering at {last_t:.0f} s (a gap to the end of the window)",
                    "warning",
                    {"series": label, "from_s": last_t, "to_s": round(end - start, 6)},
                )
            )
    if cap.dropped:
        events.insert(0, cap_event(0.0, cap, len(result)))
    if not totals:
        raise CollectorError(f"the query returned no samples between {_iso(start)} and {_iso(end)}")
    ts = sorted(totals)
    series[RSS_SERIES] = (ts, [totals[t] for t in ts])
    argv = [
        "memview",
        "watch",
        client.target,
        "--query",
        query,
        "--start",
        _iso(start),
        "--end",
        _iso(end),
        "--interval",
        f"{step:g}",
    ] + [a for h in client.header_names for a in ("--header", f"{h}: {MASK}")]
    peak = max(series[RSS_SERIES][1])
    sid = store.create_session(
        kind="watch", name=name, command=argv, target=client.target, cwd=os.getcwd(), interval_s=step, started_at=start
    )
    writer = StoreWriter(store.path, sid)
    writer.start()
    writer.write_batch(Batch(sid, series))
    writer.write_series_units(
        {
            RSS_SERIES: ("bytes", "sum of the query's series"),
            **{k: ("bytes", k[len(SERIES_PREFIX) :]) for k in series if k != RSS_SERIES},
        }
    )
    for ev in events:
        writer.insert(
            "events", {"t_s": ev.t, "kind": ev.kind, "level": ev.level, "message": ev.message, "data": ev.data}
        )
    totals_list = series[RSS_SERIES][1]
    writer.update_session(
        status="completed",
        ended_at=end,
        wall_s=end - start,
        samples=len(ts),
        peak_rss_bytes=peak,
        peak_source="sampled",
        avg_rss_bytes=round(sum(totals_list) / len(ts)),
        final_rss_bytes=totals_list[-1],
        meta={
            "watch": {
                "url": client.target,
                "format": "promql",
                "query": query,
                "window": {"start": start, "end": end, "step_s": step},
                "header_names": client.header_names,
                "series_kept": len(cap.kept),
                "series_dropped": len(cap.dropped),
                "max_series": max_series,
            }
        },
    )
    if not writer.close():
        raise CollectorError(f"cannot write the session to {store.path}: {writer.error}")
    return sid, events


def _iso(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str, now: float | None = None) -> float:
    """``--start/--end``: Unix seconds, RFC 3339 (``2026-12-06T10:00:00Z``), ``now``, or ``now-1h``/``-30m``."""
    from memview.units import UnitError, parse_duration

    now = time.time() if now is None else now
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    rel = text[3:] if text.lower().startswith("now") else text
    if rel == "":
        return now
    if rel[0] == "-":
        try:
            return now - parse_duration(rel[1:])
        except UnitError:
            pass
    import datetime

    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CollectorError(
            f"cannot read the time {text!r} (Unix seconds, 2026-12-06T10:00:00Z, now, now-1h)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


__all__ = ["parse_time", "record_window"]
