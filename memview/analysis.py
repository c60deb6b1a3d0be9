"""Summaries of stored sessions: the one JSON shape that ``run --json``, ``show`` and bundles share.

Everything is computed from the store, so a live session's summary and a reopened one's are the
same by construction.
"""

from __future__ import annotations

from typing import Any

from memview.store import Store


def _phase_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "depth": row["depth"],
        "start_s": row["start_s"],
        "end_s": row["end_s"],
        "duration_s": None if row["end_s"] is None else row["end_s"] - row["start_s"],
        "start_rss_bytes": row["start_rss_bytes"],
        "end_rss_bytes": row["end_rss_bytes"],
        "peak_rss_bytes": row["peak_rss_bytes"],
        "peak_source": row["peak_source"],
        "growth_bytes": row["growth_bytes"],
        "footprint_bytes": None if row["peak_rss_bytes"] is None or row["start_rss_bytes"] is None
        else row["peak_rss_bytes"] - row["start_rss_bytes"],
        "flags": row["flags"] or [],
        "data": row["data"] or {},
    }


def _capture_summary(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("tool", "pid", "trigger", "started_s", "ended_s", "path", "size_bytes", "exit_status", "status",
            "stderr_tail", "data")
    return {k: row[k] for k in keys}


def session_summary(store: Store, sid: int) -> dict[str, Any]:
    """The session's summary JSON (sizes in bytes, times in seconds)."""
    s = store.session(sid)
    processes = store.processes(sid)
    summary: dict[str, Any] = {
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
            {k: p[k] for k in ("pid", "ppid", "name", "cmdline", "peak_rss_bytes", "peak_source", "first_s",
                               "last_s", "exit_code")}
            for p in processes
        ],
        # stored as they end (inner before outer); listed as they start, parents before children
        "phases": [_phase_summary(r) for r in sorted(store.phases(sid), key=lambda r: (r["start_s"], r["depth"]))],
        "captures": [_capture_summary(r) for r in store.captures(sid)],
        "events": [{k: e[k] for k in ("t_s", "kind", "level", "message")} for e in store.events(sid)],
        "tags": s["tags"] or [],
        "notes": s["notes"] or "",
        "meta": s["meta"] or {},
    }
    return summary
