"""A session as a Chrome Trace Event file (``trace.json``), for Perfetto UI and chrome://tracing.

The mapping: every memory series becomes a counter track (``ph: "C"``), phases become complete
events (``ph: "X"``), and captures and other events (triggers, warnings, exits) become instant
events (``ph: "i"``). Phases get **one track per announcing process**: trace pid and tid are that
process's pid, named by ``process_name``/``thread_name`` metadata, so the phases of a worker pool
(which overlap in time) nest per worker instead of overlapping on one thread, which Perfetto and
speedscope draw wrongly. On each track a slice is clipped to its parent's interval, so slices
nest strictly (a viewer requirement the log's or a child's clock may otherwise break by a few µs).
Timestamps are integer microseconds since the session start, the resolution the store keeps,
and the event list is sorted by time so readers that expect monotonic input are happy.

Counter values are written in MiB (bytes for exactness stay in ``samples.csv``): a track that
reads "812.5" is what a person wants to see in a trace viewer; other units pass through as is.
"""

from __future__ import annotations

from typing import Any

PID = 1
TID_COUNTERS = 1
TID_PHASES = 2
TID_EVENTS = 3
_MIB = float(2**20)
#: events that are already shown another way (phase starts are the X slices)
_SKIP_EVENT_KINDS = frozenset({"phase_start", "phase_end"})
#: trace viewers slow to a crawl past a few hundred thousand counter events: longer series are
#: thinned, keeping each bucket's lowest and highest sample so no spike disappears
COUNTER_BUDGET = 400_000
MIN_POINTS_PER_SERIES = 2_000


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _counter_name(series: str, label: str | None) -> str:
    if series == "rss":
        return "RSS (tree)"
    if series.startswith("pid:"):
        return f"RSS {label or series}"
    if series.startswith("component:"):
        return f"component {series.split(':', 1)[1]}"
    return label or series


def thin(times: list[float], values: list[int], limit: int) -> tuple[list[float], list[int]]:
    """At most about ``limit`` points, keeping the minimum and maximum of each bucket (in time order)."""
    n = len(times)
    if n <= limit or limit < 4:
        return times, values
    buckets = limit // 2
    out_t: list[float] = []
    out_v: list[int] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo >= hi:
            continue
        chunk = values[lo:hi]
        i_min = lo + chunk.index(min(chunk))
        i_max = lo + chunk.index(max(chunk))
        for i in sorted({i_min, i_max}):
            out_t.append(times[i])
            out_v.append(values[i])
    return out_t, out_v


def _announcer(phase: dict[str, Any]) -> int | None:
    pid = phase.get("pid")
    if pid is None:
        pid = (phase.get("data") or {}).get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 1 else None


def _nested(slices: list[tuple[int, int, dict[str, Any]]]) -> list[tuple[int, int, dict[str, Any]]]:
    """``(start, end, body)`` slices of one track as ``(start, dur, body)``, each clipped to its parent.

    Outer slices first at equal starts; a slice starting after its would-be parent ended is a
    sibling. The result nests strictly: each slice lies within the one below it on the stack.
    """
    out = []
    stack: list[int] = []  # ends of the open slices
    for start, end, body in sorted(slices, key=lambda s: (s[0], -(s[1] - s[0]))):
        while stack and start >= stack[-1]:
            stack.pop()
        if stack:
            end = min(end, stack[-1])
        out.append((start, end - start, body))
        stack.append(end)
    return out


def trace_events(
    session: dict[str, Any],
    series: dict[str, tuple[list[float], list[int]]],
    units: dict[str, dict[str, str]],
    phases: list[dict[str, Any]],
    events: list[dict[str, Any]],
    captures: list[dict[str, Any]],
    processes: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The sorted ``traceEvents`` list for one session's stored rows (times in seconds since start).

    ``processes`` (the session's process rows) names the tracks of phases announced by other processes.
    """
    title = session.get("name") or session.get("target") or f"session {session.get('id')}"
    meta: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": PID, "tid": 0, "args": {"name": f"memview: {title}"}},
        {"name": "thread_name", "ph": "M", "pid": PID, "tid": TID_COUNTERS, "args": {"name": "memory"}},
        {"name": "thread_name", "ph": "M", "pid": PID, "tid": TID_PHASES, "args": {"name": "phases"}},
        {"name": "thread_name", "ph": "M", "pid": PID, "tid": TID_EVENTS, "args": {"name": "events"}},
    ]
    timed: list[tuple[int, int, int, dict[str, Any]]] = []  # (ts, order, -dur, event)
    limit = max(MIN_POINTS_PER_SERIES, COUNTER_BUDGET // max(len(series), 1))
    for name in sorted(series, key=lambda s: (s != "rss", s)):
        times, values = thin(*series[name], limit)
        info = units.get(name) or {}
        unit = info.get("unit") or "bytes"
        track = _counter_name(name, info.get("label"))
        key = "MiB" if unit == "bytes" else unit
        for t, v in zip(times, values):
            value: float | int = round(v / _MIB, 4) if unit == "bytes" else v
            timed.append(
                (
                    _us(t),
                    0,
                    0,
                    {
                        "name": track,
                        "cat": "memory",
                        "ph": "C",
                        "ts": _us(t),
                        "pid": PID,
                        "tid": TID_COUNTERS,
                        "args": {key: value},
                    },
                )
            )
    end_s = session.get("wall_s") or 0.0
    names = {p.get("pid"): p.get("name") for p in processes or []}
    tracks: dict[tuple[int, int], list[tuple[int, int, dict[str, Any]]]] = {}
    for ph in phases:
        start = _us(ph["start_s"])
        unfinished = ph.get("end_s") is None
        end = _us(max(end_s, ph["start_s"]) if unfinished else ph["end_s"])
        args = {
            k: ph.get(k)
            for k in (
                "depth",
                "start_rss_bytes",
                "end_rss_bytes",
                "peak_rss_bytes",
                "peak_source",
                "growth_bytes",
                "footprint_bytes",
            )
        }
        args["flags"] = ph.get("flags") or []
        if unfinished:
            args["unfinished"] = True
        owner = _announcer(ph)
        where = (owner, owner) if owner is not None else (PID, TID_PHASES)
        tracks.setdefault(where, []).append((start, max(end, start), {"name": ph["name"], "args": args}))
    for (pid, tid), slices in sorted(tracks.items()):
        if pid != PID:
            label = f"{names.get(pid) or 'process'} ({pid})"
            meta.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": label}})
            meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": "phases"}})
        for start, dur, body in _nested(slices):
            # at equal start the longer (outer) slice first, so viewers nest them
            timed.append(
                (start, 1, -dur, {**body, "cat": "phase", "ph": "X", "ts": start, "dur": dur, "pid": pid, "tid": tid})
            )
    for cap in captures:
        ts = _us(cap["started_s"] or 0.0)
        args = {k: cap.get(k) for k in ("tool", "pid", "trigger", "status", "ended_s", "size_bytes", "path")}
        timed.append(
            (
                ts,
                2,
                0,
                {
                    "name": f"capture: {cap['tool']}",
                    "cat": "capture",
                    "ph": "i",
                    "s": "p",
                    "ts": ts,
                    "pid": PID,
                    "tid": TID_EVENTS,
                    "args": args,
                },
            )
        )
    for ev in events:
        if ev["kind"] in _SKIP_EVENT_KINDS:
            continue
        ts = _us(ev["t_s"] or 0.0)
        timed.append(
            (
                ts,
                3,
                0,
                {
                    "name": f"{ev['kind']}: {ev['message']}"[:200],
                    "cat": ev["kind"],
                    "ph": "i",
                    "s": "p",
                    "ts": ts,
                    "pid": PID,
                    "tid": TID_EVENTS,
                    "args": {"level": ev["level"], "message": ev["message"]},
                },
            )
        )
    timed.sort(key=lambda item: item[:3])
    return meta + [item[3] for item in timed]


def trace_document(events: list[dict[str, Any]], other: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object form of the format (``traceEvents`` plus viewer hints)."""
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other or {}}
