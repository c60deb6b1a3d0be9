"""The one summary shape every allocation capture is reduced to, kept in the captures row's JSON.

A capture file (memray ``.bin``, heaptrack ``.zst``, node ``.heapsnapshot``, py-spy speedscope)
is kept as an artefact for those who want their own tool, but what the user needs in memview is a
few named *sites* — function, file:line, bytes, count — at the moment that mattered (the
high-water mark of the capture window) and what grew. Every tool module fills this shape, so
``memview show``, ``compare`` and the GUI's capture panel read one format:

``capture.data["summary"] = {"kind", "unit", "headline", "tables": {name: [site, …]},
"stacks": [[[frame, …], weight], …], "peak_bytes", "notes"}``

with ``site = {"function", "file", "line", "bytes", "count"}`` (``samples`` instead of ``bytes``
for py-spy). Tables are capped (:data:`TOP`) so a row stays small; stacks are the heaviest
:data:`TOP_STACKS`, root first, for the flame graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TOP = 50
TOP_STACKS = 400


@dataclass
class Site:
    """One allocation site: where, how much is live/allocated there, in how many allocations."""

    function: str
    file: str = ""
    line: int | None = None
    bytes: int = 0
    count: int = 0

    def key(self) -> tuple[str, str, int | None]:
        return (self.function, self.file, self.line)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "bytes": int(self.bytes),
            "count": int(self.count),
        }


@dataclass
class Summary:
    """Built by a tool module, stored as a plain dict (:meth:`as_dict`)."""

    kind: str
    headline: str  # the table ``show`` prints first (e.g. "peak")
    unit: str = "bytes"
    tables: dict[str, list[Site]] = field(default_factory=dict)
    stacks: list[tuple[list[str], int]] = field(default_factory=list)
    peak_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        stacks = sorted(self.stacks, key=lambda s: -s[1])[:TOP_STACKS]
        return {
            "kind": self.kind,
            "unit": self.unit,
            "headline": self.headline,
            "peak_bytes": self.peak_bytes,
            "tables": {
                name: [s.as_dict() for s in sorted(sites, key=lambda s: -s.bytes)[:TOP]]
                for name, sites in self.tables.items()
            },
            "stacks": [[list(frames), int(weight)] for frames, weight in stacks],
            "notes": list(self.notes),
        }


def merge(sites: Iterable[Site]) -> list[Site]:
    """Sites with the same function and file:line added together (several stacks end in one line)."""
    out: dict[tuple[str, str, int | None], Site] = {}
    for s in sites:
        known = out.get(s.key())
        if known is None:
            out[s.key()] = Site(s.function, s.file, s.line, s.bytes, s.count)
        else:
            known.bytes += s.bytes
            known.count += s.count
    return sorted(out.values(), key=lambda s: -s.bytes)


def frame_label(function: str, file: str, line: int | None) -> str:
    """``function (file:line)``: the label of a frame in stacks and flame graphs."""
    if not file:
        return function
    return f"{function} ({file}{':' + str(line) if line else ''})"


def where(site: dict[str, Any]) -> str:
    """``file:line`` of a stored site, or ``?``."""
    if not site.get("file"):
        return "?"
    return f"{site['file']}:{site['line']}" if site.get("line") else str(site["file"])


def summary_of(capture: dict[str, Any]) -> dict[str, Any] | None:
    """The stored summary of a capture row (``data.summary``), or None."""
    data = capture.get("data") or {}
    summary = data.get("summary") if isinstance(data, dict) else None
    return summary if isinstance(summary, dict) else None


def headline_sites(capture: dict[str, Any], n: int = 5) -> list[dict[str, Any]]:
    """The first ``n`` sites of the capture's headline table (what ``show`` prints)."""
    summary = summary_of(capture)
    if not summary:
        return []
    tables = summary.get("tables") or {}
    return list(tables.get(summary.get("headline") or "", []))[:n]


def session_sites(summary: dict[str, Any], per_capture: int = 5) -> dict[str, int]:
    """A session's named allocation figures, keyed so two sessions line up (``compare``).

    The top sites of each capture's headline table (``memray peak: leak file.py:12``; the largest
    figure when several captures of one tool name a site) and each phase's tracemalloc growth
    (``tracemalloc load: file.py:3``). py-spy's samples are left out: a count of CPU samples
    depends on the recording's length, not on memory.
    """
    out: dict[str, int] = {}
    for capture in summary.get("captures") or []:
        s = summary_of(capture) if isinstance(capture, dict) else None
        if not s or s.get("unit") != "bytes":
            continue
        for site in headline_sites(capture, per_capture):
            key = f"{s.get('kind')} {s.get('headline')}: {site['function']} {where(site)}".replace(" ?", "")
            out[key] = max(out.get(key, 0), int(site.get("bytes") or 0))
    for ph in summary.get("phases") or []:
        data = ph.get("data") if isinstance(ph, dict) else None
        for site in (data or {}).get("tracemalloc_top") or []:
            key = f"tracemalloc {ph.get('name')}: {site.get('file')}:{site.get('line')}"
            out[key] = max(out.get(key, 0), int(site.get("size_diff") or 0))
    return out


def tracemalloc_rows(summary: dict[str, Any], per_phase: int = 5) -> list[list[str]]:
    """(phase, file:line, grown bytes, count) rows of each phase's tracemalloc top, for ``show``."""
    from memview.units import format_bytes

    rows = []
    for ph in summary.get("phases") or []:
        data = ph.get("data") or {}
        for site in (data.get("tracemalloc_top") or [])[:per_phase]:
            rows.append(
                [
                    str(ph.get("name")),
                    f"{site.get('file')}:{site.get('line')}",
                    "+" + format_bytes(site.get("size_diff") or 0),
                    f"{int(site.get('count_diff') or 0):+d}",
                ]
            )
        if data.get("tracemalloc_error"):
            rows.append([str(ph.get("name")), "(no sites)", str(data["tracemalloc_error"]), ""])
    return rows


#: the flag a phase gets when a capture ran during it: its figures are partly the capture's own
DURING_CAPTURE = "during-capture"


def mark_capture_windows(summary: dict[str, Any]) -> dict[str, Any]:
    """Flag what a capture distorted: phases overlapping a capture's window get ``during-capture``,
    and ``capture_windows`` lists the windows (start, end, tool) so samples inside them can be told
    apart. A heap snapshot pauses node and inflates its heap (a batch phase peak went from 483 to
    641 MiB); memray and heaptrack slow the target and add their own memory. Returns ``summary``.
    """
    windows: list[tuple[float, float | None, Any]] = []
    for c in summary.get("captures") or []:
        if not isinstance(c, dict) or c.get("status") not in ("ok", "partial", "running", "exited", "timeout"):
            continue
        start, end = c.get("started_s"), c.get("ended_s")
        if isinstance(start, (int, float)):
            windows.append((float(start), float(end) if isinstance(end, (int, float)) else None, c.get("tool")))
    summary["capture_windows"] = windows
    for ph in summary.get("phases") or []:
        if not isinstance(ph, dict) or not isinstance(ph.get("start_s"), (int, float)):
            continue
        end_s = ph.get("end_s")
        ph_end = float(end_s) if isinstance(end_s, (int, float)) else float("inf")
        ph_start = float(ph["start_s"])
        hit = any(start < ph_end and (end is None or end > ph_start) for start, end, _ in windows)
        flags = list(ph.get("flags") or [])
        if hit and DURING_CAPTURE not in flags:
            ph["flags"] = [*flags, DURING_CAPTURE]
    return summary
