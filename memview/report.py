"""Plain-text rendering of summaries for the terminal: the one-screen summary and tables."""

from __future__ import annotations

from typing import Any

from memview.units import format_bytes, format_duration


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks (shared with ``baseline``)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def exit_text(summary: dict[str, Any]) -> str:
    if summary.get("signal"):
        return f"signal {summary['signal']}"
    if summary.get("exit_code") is None:
        return "-"
    return f"exit {summary['exit_code']}"


def _tree_peak_lines(summary: dict[str, Any]) -> list[str]:
    """For a tree: what is sampled and what is an upper bound (docs/exactness.md)."""
    if len(summary.get("processes") or []) < 2:
        return []
    sampled, bound = summary.get("peak_sampled_bytes"), summary.get("peak_bound_bytes")
    if sampled is None and bound is None:
        return []
    text = f"  tree      sampled {format_bytes(sampled)}"
    if bound is not None:
        text += f" · upper bound {format_bytes(bound)} [{summary.get('peak_bound_source') or 'bound'}]"
    text += " · exact" if summary.get("peak_exact") else ""
    return [text]


def summary_text(summary: dict[str, Any]) -> str:
    """The one-screen summary printed at the end of ``memview run`` and by ``memview show``."""
    rate = ""
    if summary.get("wall_s") and summary.get("samples"):
        rate = f" ({summary['samples'] / summary['wall_s']:.0f}/s)" if summary["wall_s"] > 0 else ""
    lines = [
        f"memview session {summary['session_id']} · {summary['kind']} · {summary.get('status')}",
        f"  command   {summary.get('target') or ''}",
        f"  peak      {format_bytes(summary.get('peak_rss_bytes'))}  [{summary.get('peak_source')}]",
        *_tree_peak_lines(summary),
        f"  average   {format_bytes(summary.get('avg_rss_bytes'))}"
        f"    final {format_bytes(summary.get('final_rss_bytes'))}",
        f"  wall      {format_duration(summary.get('wall_s'))}    samples {summary.get('samples', 0)}{rate}"
        f"    {exit_text(summary)}",
    ]
    procs = summary.get("processes") or []
    if len(procs) > 1:
        top = sorted(procs, key=lambda p: p.get("peak_rss_bytes") or 0, reverse=True)[:8]
        lines.append(f"  processes {len(procs)} (largest own peaks):")
        rows = [
            [str(p["pid"]), p["name"] or "", format_bytes(p["peak_rss_bytes"]), p["peak_source"] or ""] for p in top
        ]
        lines.append(_indent(text_table(["pid", "name", "peak", "source"], rows)))
    phases = summary.get("phases") or []
    if phases:
        lines.append("  phases:")
        rows = [
            [
                "  " * (ph["depth"] or 0) + ph["name"],
                f"{ph['start_s']:.3f}s",
                format_duration(ph["duration_s"]),
                format_bytes(ph["start_rss_bytes"]),
                format_bytes(ph["end_rss_bytes"]),
                format_bytes(ph["peak_rss_bytes"]),
                format_bytes(ph.get("footprint_bytes")),
                format_bytes(ph["growth_bytes"]),
                ph["peak_source"] or "",
                ",".join(ph["flags"]),
            ]
            for ph in phases
        ]
        lines.append(
            _indent(
                text_table(
                    ["phase", "at", "duration", "start", "end", "own peak", "footprint", "growth", "source", "flags"],
                    rows,
                )
            )
        )
    from memview.captures.sites import tracemalloc_rows

    heap_rows = tracemalloc_rows(summary)
    if heap_rows:
        lines.append("  python heap per phase (tracemalloc, what grew):")
        lines.append(_indent(text_table(["phase", "file:line", "grown", "count"], heap_rows)))
    series = {k: v for k, v in (summary.get("series") or {}).items() if k != "rss" and v.get("unit") != "epoch_ms"}
    if series:
        lines.append("  series:")
        rows = [
            [name, _value(info, "peak"), _value(info, "last"), info.get("unit") or ""]
            for name, info in list(series.items())[:16]
        ]
        lines.append(_indent(text_table(["series", "peak", "last", "unit"], rows)))
        if len(series) > 16:
            lines.append(f"    … and {len(series) - 16} more (memview show {summary['session_id']} --json)")
    gaps = summary.get("gaps") or []
    if gaps:
        total = sum(
            (g["end_s"] if g["end_s"] is not None else summary.get("wall_s") or g["start_s"]) - g["start_s"]
            for g in gaps
        )
        lines.append(f"  gaps      {len(gaps)} without readings, {format_duration(total)} in all")
    captures = summary.get("captures") or []
    if captures:
        lines.append("  captures:")
        for c in captures:
            lines.append(f"    {c['tool']} pid {c['pid']} [{c['status']}] {c['path'] or ''}")
            lines.extend(_indent(_sites_text(c), "      ").splitlines())
    warnings = [e for e in summary.get("events") or [] if e["level"] in ("warning", "error")]
    for e in warnings[:5]:
        lines.append(f"  {e['level']}: {e['message']}")
    if len(warnings) > 5:
        lines.append(f"  … and {len(warnings) - 5} more warnings (memview show {summary['session_id']})")
    return "\n".join(lines)


def _sites_text(capture: dict[str, Any]) -> str:
    """The top five sites of a capture's summary (memray, heaptrack, node, py-spy), or nothing."""
    from memview.captures.sites import headline_sites, summary_of, where

    summary = summary_of(capture) or {}
    sites = headline_sites(capture)
    if not sites:
        return ""
    samples = summary.get("unit") == "samples"
    rows = [
        [s["function"], where(s), str(s["bytes"]) if samples else format_bytes(s["bytes"]), str(s["count"])]
        for s in sites
    ]
    flag = "  (distorted by the capture itself)" if summary.get("distorts") else ""
    return f"top sites ({summary.get('headline')}){flag}:\n" + text_table(
        ["site", "file:line", "samples" if samples else "bytes", "count"], rows
    )


_PRESSURE = {0: "normal", 1: "warning", 2: "critical"}


def _value(info: dict[str, Any], key: str) -> str:
    """A series value in its unit: bytes humanised, milli-units as decimals, pressure by name."""
    value = info.get(key)
    unit = info.get("unit")
    if value is None:
        return "-"
    if unit == "bytes":
        return format_bytes(value)
    if unit == "milli":
        return f"{value / 1000:g}"
    if unit == "state":
        return _PRESSURE.get(value, str(value))
    if unit == "ms":
        return format_duration(value / 1000)
    return str(value)


def _indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def sessions_table(rows: list[dict[str, Any]]) -> str:
    out = []
    for s in rows:
        out.append(
            [
                str(s["id"]),
                s["kind"] or "",
                s["status"] or "",
                _when(s["started_at"]),
                format_duration(s["wall_s"]),
                format_bytes(s["peak_rss_bytes"]),
                exit_text(s),
                (s["name"] or s["target"] or "")[:60],
            ]
        )
    return text_table(["id", "kind", "status", "started", "wall", "peak", "exit", "command"], out)


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    import datetime

    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")
