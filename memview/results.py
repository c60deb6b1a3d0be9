"""The results document of ``memview profile``: one record per case and input, and its phases.

``profile`` writes it, ``baseline`` reads it (and builds one from stored sessions' summaries),
``pushgateway`` and ``compare`` read its phases. It lives apart from all of them so the arrows
point one way (profile → results ← baseline); before, baseline and profile imported each other.
It imports nothing of memview.
"""

from __future__ import annotations

import datetime
from typing import Any

RESULTS_FORMAT = "memview-profile-results"
RESULTS_VERSION = 1
#: the input key of a case whose command takes no input
NO_INPUT = "-"


def results_document(records: list[dict[str, Any]], meta: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The results JSON: one record per case/input, plus where and with what it ran."""
    return {
        "format": RESULTS_FORMAT,
        "version": RESULTS_VERSION,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **fields,
        "metadata": meta,
        "records": records,
    }


def record_from_summary(summary: dict[str, Any], case: str, input_key: str) -> dict[str, Any]:
    """One run's record from its stored session summary (shared with ``baseline`` for session ids)."""
    return {
        "case": case,
        "input": input_key,
        "command": summary.get("command"),
        "ok": summary.get("exit_code") == 0 and not summary.get("signal"),
        "exit_code": summary.get("exit_code"),
        "signal": summary.get("signal"),
        "peak_rss_bytes": summary.get("peak_rss_bytes"),
        "peak_source": summary.get("peak_source"),
        "avg_rss_bytes": summary.get("avg_rss_bytes"),
        "final_rss_bytes": summary.get("final_rss_bytes"),
        "wall_s": summary.get("wall_s"),
        "samples": summary.get("samples"),
        "phases": [
            {
                k: ph.get(k)
                for k in (
                    "name",
                    "depth",
                    "pid",
                    "start_rss_bytes",
                    "peak_rss_bytes",
                    "peak_source",
                    "duration_s",
                    "footprint_bytes",
                    "growth_bytes",
                )
            }
            for ph in summary.get("phases") or []
        ],
        "captures": [
            {k: c.get(k) for k in ("tool", "pid", "trigger", "path", "status")} for c in summary.get("captures") or []
        ],
        "warnings": [e["message"] for e in summary.get("events") or [] if e.get("level") in ("warning", "error")],
        "session_id": summary.get("session_id"),
    }


def phase_peaks(phases: list[dict[str, Any]]) -> dict[str, int | None]:
    """Phases by name, repeated names numbered in order (``load``, ``load#2``): their own peaks."""
    out: dict[str, int | None] = {}
    for ph in phases:
        name = str(ph.get("name"))
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name}#{n}"
        out[key] = ph.get("peak_rss_bytes")
    return out


def _int(v: Any) -> int | None:
    return round(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def phase_figures(phases: list[dict[str, Any]]) -> dict[str, dict[str, int | None]]:
    """Phases keyed like :func:`phase_peaks`, each with its peak, footprint and growth.

    The footprint is computed from ``peak_rss_bytes - start_rss_bytes`` when a record lacks it
    (results written before it was recorded).
    """
    out: dict[str, dict[str, int | None]] = {}
    for key, ph in zip(phase_peaks(phases), phases):
        fp = _int(ph.get("footprint_bytes"))
        peak, start = _int(ph.get("peak_rss_bytes")), _int(ph.get("start_rss_bytes"))
        if fp is None and peak is not None and start is not None:
            fp = peak - start
        out[key] = {"peak_rss_bytes": peak, "footprint_bytes": fp, "growth_bytes": _int(ph.get("growth_bytes"))}
    return out


__all__ = [
    "NO_INPUT",
    "RESULTS_FORMAT",
    "RESULTS_VERSION",
    "phase_figures",
    "phase_peaks",
    "record_from_summary",
    "results_document",
]
