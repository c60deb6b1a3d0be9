"""Summaries of stored sessions: the one JSON shape that ``run --json``, ``show`` and bundles share.

Everything is computed from the store, so a live session's summary and a reopened one's are the
same by construction.
"""

from __future__ import annotations

from typing import Any

from memview.store import Store

#: the summary's own name and version, first keys of every summary (``memview/schemas/session-summary.schema.json``):
#: a consumer checks them before reading; keys may be added within a version, never changed
SUMMARY_FORMAT = "memview-session-summary"
SUMMARY_VERSION = 1


def _phase_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "depth": row["depth"],
        "pid": (row["data"] or {}).get("pid"),  # the process that announced it (phases are measured on it)
        "start_s": row["start_s"],
        "end_s": row["end_s"],
        "duration_s": None if row["end_s"] is None else row["end_s"] - row["start_s"],
        "start_rss_bytes": row["start_rss_bytes"],
        "end_rss_bytes": row["end_rss_bytes"],
        "peak_rss_bytes": row["peak_rss_bytes"],
        "peak_source": row["peak_source"],
        "growth_bytes": row["growth_bytes"],
        "footprint_bytes": None
        if row["peak_rss_bytes"] is None or row["start_rss_bytes"] is None
        else row["peak_rss_bytes"] - row["start_rss_bytes"],
        "flags": row["flags"] or [],
        "data": row["data"] or {},
    }


def _capture_summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "tool",
        "pid",
        "trigger",
        "started_s",
        "ended_s",
        "path",
        "size_bytes",
        "exit_status",
        "status",
        "stderr_tail",
        "data",
    )
    return {k: row[k] for k in keys}


def memory_summary(recorder: Any) -> dict[str, Any]:
    """The same shape as :func:`session_summary`, from a closed recorder's memory.

    Used when the database could not be written (disk full): the user still gets the figures.
    """
    f = {**recorder.fields, **getattr(recorder, "closing_fields", {})}
    return {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "session_id": recorder.session_id,
        "uid": None,
        "kind": f.get("kind"),
        "name": f.get("name"),
        "status": f.get("status"),
        "command": f.get("command"),
        "target": f.get("target"),
        "pid": f.get("pid"),
        "cwd": f.get("cwd"),
        "exit_code": f.get("exit_code"),
        "signal": f.get("signal"),
        "started_at": f.get("started_at"),
        "wall_s": f.get("wall_s"),
        "samples": f.get("samples") or 0,
        "interval_s": f.get("interval_s"),
        "peak_rss_bytes": f.get("peak_rss_bytes"),
        "peak_source": f.get("peak_source"),
        "avg_rss_bytes": f.get("avg_rss_bytes"),
        "final_rss_bytes": f.get("final_rss_bytes"),
        "processes": [p.as_summary() | {"exit_code": p.exit_code} for p in getattr(recorder, "processes", [])],
        "phases": [_phase_summary(p.to_row()) for p in recorder.phases],  # the stored rows' mapping
        "captures": [_capture_summary(c.to_row()) for c in recorder.captures],
        "events": [{"t_s": e.t, "kind": e.kind, "level": e.level, "message": e.message} for e in recorder.events],
        "tags": [],
        "notes": "",
        "meta": f.get("meta") or {},
        "stored": False,
    } | peak_figures(f.get("meta") or {})


def peak_figures(meta: dict[str, Any]) -> dict[str, Any]:
    """The tree peak's framing from the session's meta (docs/exactness.md): sampled sum, bound.

    ``peak_sampled_bytes``: the largest sum of per-process RSS read at one instant.
    ``peak_bound_bytes``: the largest sum of each process's exact maximum over one interval (an
    upper bound of the tree's peak; None without the envelope). ``peak_exact`` says whether
    ``peak_rss_bytes`` is exact (one process, or a tree whose bound met its floor).
    """
    peak = meta.get("peak") or {}
    return {
        "peak_sampled_bytes": peak.get("sampled_bytes"),
        "peak_bound_bytes": peak.get("bound_bytes"),
        "peak_bound_source": peak.get("bound_source"),
        "peak_exact": peak.get("exact_bytes") is not None,
    }


def _series_summary(store: Store, sid: int) -> dict[str, dict[str, Any]]:
    """Every stored series but the per-process ones (``processes`` has those): unit, peak, last.

    For a watch session this is where the service's components, jemalloc figures and pressure
    state are (values are integers: bytes, milli-units, 0/1/2 for pressure; see ``unit``).
    """
    units = store.series_units(sid)
    out: dict[str, dict[str, Any]] = {}
    for name, st in store.series_stats(sid).items():
        if name.startswith("pid:"):
            continue
        unit = units.get(name, {})
        out[name] = {
            "unit": unit.get("unit"),
            "label": unit.get("label"),
            "samples": st["samples"],
            "peak": st["peak"],
            "last": st["last"],
        }
    return out


def _gaps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans with no readings (an endpoint that failed), from the ``gap``/``gap_end`` events.

    ``end_s`` is None for a gap still open when the session ended.
    """
    gaps: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for e in events:
        data = e.get("data") or {}
        if e["kind"] == "gap":
            current = {"start_s": e["t_s"], "end_s": None, "reason": data.get("reason", e["message"]), "failures": None}
            gaps.append(current)
        elif e["kind"] == "gap_end" and current is not None:
            current["end_s"] = e["t_s"]
            current["failures"] = data.get("failures")
            current = None
    return gaps


def session_summary(store: Store, sid: int) -> dict[str, Any]:
    """The session's summary JSON (sizes in bytes, times in seconds)."""
    s = store.session(sid)
    processes = store.processes(sid)
    events = store.events(sid)
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "session_id": s["id"],
        "uid": s["uid"],
        "kind": s["kind"],
        "name": s["name"],
        "status": s["status"],
        "command": s["command"],
        "target": s["target"],
        "pid": s["pid"],
        "cwd": s["cwd"],
        "exit_code": s["exit_code"],
        "signal": s["signal"],
        "started_at": s["started_at"],
        "wall_s": s["wall_s"],
        "samples": s["samples"] or 0,
        "interval_s": s["interval_s"],
        "peak_rss_bytes": s["peak_rss_bytes"],
        "peak_source": s["peak_source"],
        "avg_rss_bytes": s["avg_rss_bytes"],
        "final_rss_bytes": s["final_rss_bytes"],
        "processes": [
            {
                k: p[k]
                for k in (
                    "pid",
                    "ppid",
                    "name",
                    "cmdline",
                    "peak_rss_bytes",
                    "peak_source",
                    "first_s",
                    "last_s",
                    "exit_code",
                )
            }
            for p in processes
        ],
        # stored as they end (inner before outer); listed as they start, parents before children, and
        # phases with one start time (a log's millisecond clock) in the order they were announced
        "phases": [
            _phase_summary(r)
            for r in sorted(
                store.phases(sid), key=lambda r: (r["start_s"], r["depth"], (r["data"] or {}).get("announced", 0))
            )
        ],
        "captures": [_capture_summary(r) for r in store.captures(sid)],
        "events": [{k: e[k] for k in ("t_s", "kind", "level", "message")} for e in events],
        "series": _series_summary(store, sid),
        "gaps": _gaps(events),
        "tags": s["tags"] or [],
        "notes": s["notes"] or "",
        "meta": s["meta"] or {},
    } | peak_figures(s["meta"] or {})
    from memview.captures.sites import mark_capture_windows  # phases a capture distorted are flagged

    return mark_capture_windows(summary)
