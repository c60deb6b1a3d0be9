"""Comparing sessions: "before" against "after", a run against a baseline, a bundle against a session.

The core is three plain functions that other commands reuse (``memview compare``, the compare
view, CI baselines):

- :func:`load_comparable` / :func:`comparable_from_summary` turn a session id, a bundle, or a
  summary JSON (``memview run --json``) into one :class:`Comparable` record, so nothing
  downstream cares where the figures came from;
- :func:`changes` diffs two records into :class:`Change` rows (absolute and relative change of
  peak, average, final, wall time and of each phase's footprint (peak − start), growth (end −
  start), absolute peak and duration);
- :func:`match_phases` pairs phases across records by name, and by order among phases of the
  same name (the 2nd "parse" with the 2nd "parse"), keeping a phase present on one side only.

:func:`compare` combines them into the JSON shape ``memview compare --json`` prints (with
``regressions``: the phases whose *own* use grew beyond the tolerance), and
:func:`compare_text` renders it as a table. Nothing here imports Qt.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memview.tolerance import DEFAULT_TOLERANCE, ToleranceError, own_use_limit, parse_tolerance
from memview.units import format_bytes, format_duration


class CompareError(Exception):
    """An input cannot be compared (no such session, not a bundle…); the message is one line."""


@dataclass(slots=True)
class PhaseStat:
    """One phase occurrence: ``occurrence`` counts earlier phases of the same name (0 for the first)."""

    name: str
    occurrence: int
    depth: int | float | None
    start_s: float | None
    duration_s: float | None
    peak_rss_bytes: int | float | None
    growth_bytes: int | float | None
    footprint_bytes: int | float | None = None  # peak − start: what the phase itself used at its worst
    pid: int | None = None  # the process that announced it

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.occurrence)


@dataclass(slots=True)
class Comparable:
    """The figures of one session, whatever it was loaded from (store, bundle, summary JSON)."""

    label: str  # short, for column headers and legends: "#3 build", "after.memview.zip"
    source: str  # where it came from, for humans: "session 3", a path
    session_id: int | None  # the id in the store it was loaded from (None for files)
    uid: str | None
    name: str | None
    target: str | None
    kind: str | None
    status: str | None
    peak_rss_bytes: int | float | None
    peak_source: str | None
    avg_rss_bytes: int | float | None
    final_rss_bytes: int | float | None
    wall_s: float | None
    samples: int | float | None
    phases: list[PhaseStat] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


#: the whole-session figures compared, in table order: (key, label, unit)
METRICS: tuple[tuple[str, str, str], ...] = (
    ("peak_rss_bytes", "peak", "bytes"),
    ("avg_rss_bytes", "average", "bytes"),
    ("final_rss_bytes", "final", "bytes"),
    ("wall_s", "wall time", "seconds"),
)
#: the per-phase figures compared: (key, label, unit)
PHASE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("footprint_bytes", "footprint", "bytes"),
    ("growth_bytes", "growth", "bytes"),
    ("peak_rss_bytes", "peak", "bytes"),
    ("duration_s", "duration", "seconds"),
)
#: the per-phase figures that decide a regression: the phase's own use, never its absolute peak
#: (a late phase's peak carries what earlier phases left behind)
OWN_USE_METRICS = ("footprint_bytes", "growth_bytes")


def _num(value: Any) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def phase_stats(phases: list[dict[str, Any]]) -> list[PhaseStat]:
    """Summary phases (in their recorded order) as :class:`PhaseStat`, numbering repeated names."""
    seen: dict[str, int] = {}
    out = []
    for ph in phases:
        name = str(ph.get("name"))
        occ = seen.get(name, 0)
        seen[name] = occ + 1
        duration = _num(ph.get("duration_s"))
        if duration is None and _num(ph.get("end_s")) is not None and _num(ph.get("start_s")) is not None:
            duration = ph["end_s"] - ph["start_s"]
        peak, start = _num(ph.get("peak_rss_bytes")), _num(ph.get("start_rss_bytes"))
        footprint = _num(ph.get("footprint_bytes"))
        if footprint is None and peak is not None and start is not None:
            footprint = peak - start
        pid = ph.get("pid") if ph.get("pid") is not None else (ph.get("data") or {}).get("pid")
        out.append(
            PhaseStat(
                name,
                occ,
                _num(ph.get("depth")),
                _num(ph.get("start_s")),
                duration,
                peak,
                _num(ph.get("growth_bytes")),
                footprint,
                pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            )
        )
    return out


def comparable_from_summary(
    summary: dict[str, Any], label: str | None = None, source: str = "", session_id: int | None = None
) -> Comparable:
    """A :class:`Comparable` from a summary dict (``memview run --json``, ``show --json``, a bundle's manifest).

    Missing figures become None rather than errors, so an older or partial summary still compares.
    """
    if not isinstance(summary, dict):
        raise CompareError(f"{source or 'input'}: not a memview summary")
    name = summary.get("name")
    if label is None:
        sid = summary.get("session_id")
        label = f"#{sid}" + (f" {name}" if name else "") if sid is not None else (name or source or "?")
    return Comparable(
        label=label,
        source=source,
        session_id=session_id,
        uid=summary.get("uid"),
        name=name,
        target=summary.get("target"),
        kind=summary.get("kind"),
        status=summary.get("status"),
        peak_rss_bytes=_num(summary.get("peak_rss_bytes")),
        peak_source=summary.get("peak_source"),
        avg_rss_bytes=_num(summary.get("avg_rss_bytes")),
        final_rss_bytes=_num(summary.get("final_rss_bytes")),
        wall_s=_num(summary.get("wall_s")),
        samples=_num(summary.get("samples")),
        phases=phase_stats([p for p in summary.get("phases") or [] if isinstance(p, dict)]),
        summary=summary,
    )


def load_comparable(spec: str | int, store: Any = None) -> Comparable:
    """A session id (from ``store``), a bundle path (``.memview.zip``) or a summary JSON path.

    A plain number is a session id; write ``./3`` for a file named 3.
    """
    text = str(spec)
    if text.isdigit():
        if store is None:
            raise CompareError(f"{text}: a session id needs a database")
        from memview.analysis import session_summary
        from memview.store import StoreError

        try:
            summary = session_summary(store, int(text))
        except StoreError as exc:
            raise CompareError(str(exc)) from None
        return comparable_from_summary(summary, source=f"session {text}", session_id=int(text))
    path = Path(text)
    if not path.exists():
        raise CompareError(f"{text}: no such session or file")
    if zipfile.is_zipfile(path):
        from memview.bundle import BundleError, read_manifest

        try:
            manifest = read_manifest(path)
        except BundleError as exc:
            raise CompareError(str(exc)) from None
        return comparable_from_summary(manifest["summary"], label=path.name, source=str(path))
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise CompareError(f"{text}: neither a memview bundle nor a summary JSON file") from None
    if not isinstance(summary, dict) or "peak_rss_bytes" not in summary:
        raise CompareError(f"{text}: a JSON file, but not a memview summary (no peak_rss_bytes)")
    return comparable_from_summary(summary, label=path.name, source=str(path))


@dataclass(slots=True)
class Change:
    """One figure on two sides: ``abs`` is ``b - a``; ``rel`` is that over ``a`` (None when ``a`` is 0 or
    missing). ``present`` says where a phase exists: "both", "a" or "b"; whole-session rows are "both"."""

    metric: str  # "peak_rss_bytes", or "phase:NAME#OCC:peak_rss_bytes"
    label: str
    unit: str
    a: int | float | None
    b: int | float | None
    abs: int | float | None
    rel: float | None
    present: str = "both"


def change(a: int | float | None, b: int | float | None) -> tuple[int | float | None, float | None]:
    """Absolute and relative change from ``a`` to ``b``."""
    if a is None or b is None:
        return None, None
    diff = b - a
    return diff, (diff / a if a else None)


@dataclass(slots=True)
class PhaseMatch:
    """One phase across the compared records; ``stats[i]`` is None where record i lacks it."""

    name: str
    occurrence: int
    stats: list[PhaseStat | None]
    repeated: bool = False  # the name occurs more than once: labels number them

    @property
    def label(self) -> str:
        return f"{self.name} #{self.occurrence + 1}" if self.repeated else self.name


def match_phases(*phase_lists: list[PhaseStat]) -> list[PhaseMatch]:
    """Pair phases by (name, occurrence) across any number of records.

    The order is the first record's; a phase the first lacks is placed after the phase that
    precedes it in the record that has it, so a phase inserted in "after" shows where it ran.
    """
    order: list[tuple[str, int]] = []
    for phases in phase_lists:
        pos = 0
        for ph in phases:
            if ph.key in order:
                pos = order.index(ph.key) + 1
            else:
                order.insert(pos, ph.key)
                pos += 1
    by_key = [{ph.key: ph for ph in phases} for phases in phase_lists]
    counts: dict[str, int] = {}
    for name, _ in order:
        counts[name] = counts.get(name, 0) + 1
    return [PhaseMatch(name, occ, [m.get((name, occ)) for m in by_key], counts[name] > 1) for name, occ in order]


def changes(a: Comparable, b: Comparable) -> list[Change]:
    """Every compared figure of ``b`` against ``a``: the session metrics, then each matched phase."""
    out = []
    for key, label, unit in METRICS:
        va, vb = getattr(a, key), getattr(b, key)
        d, r = change(va, vb)
        out.append(Change(key, label, unit, va, vb, d, r))
    for m in match_phases(a.phases, b.phases):
        pa, pb = m.stats
        present = "both" if pa and pb else ("a" if pa else "b")
        for key, label, unit in PHASE_METRICS:
            va = getattr(pa, key) if pa else None
            vb = getattr(pb, key) if pb else None
            d, r = change(va, vb)
            out.append(
                Change(f"phase:{m.name}#{m.occurrence}:{key}", f"{m.label} {label}", unit, va, vb, d, r, present)
            )
    return out


def compare(records: list[Comparable], tolerance: str = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """The comparison of 2+ records, each against the first (the baseline), as JSON-ready data.

    ``metrics`` and ``phases[].figures`` hold, per figure, ``values`` (one per record) and
    ``changes`` (``None`` for the baseline, else ``{"abs", "rel"}`` against it). ``regressions``
    names each phase whose own use (footprint or growth) grew beyond ``tolerance`` in a record,
    with the same rule as ``memview baseline check``.
    """
    if len(records) < 2:
        raise CompareError("compare needs at least two sessions or bundles")
    try:
        tol = parse_tolerance(tolerance)
    except ToleranceError as exc:
        raise CompareError(str(exc)) from None

    def row(values: list[Any]) -> dict[str, Any]:
        base = values[0]
        out = []
        for v in values[1:]:
            d, r = change(base, v)
            out.append({"abs": d, "rel": r})
        return {"values": values, "changes": [None, *out]}

    metrics = [
        {"key": key, "label": label, "unit": unit, **row([getattr(r, key) for r in records])}
        for key, label, unit in METRICS
    ]
    phases = []
    regressions: list[dict[str, Any]] = []
    for m in match_phases(*(r.phases for r in records)):
        figures = [
            {"key": key, "label": label, "unit": unit, **row([getattr(s, key) if s else None for s in m.stats])}
            for key, label, unit in PHASE_METRICS
        ]
        phases.append(
            {
                "name": m.name,
                "occurrence": m.occurrence,
                "label": m.label,
                "present": [s is not None for s in m.stats],
                "figures": figures,
                "pids": [s.pid if s else None for s in m.stats],
            }
        )
        base = m.stats[0]
        for i, st in enumerate(m.stats[1:], start=1):
            for key in OWN_USE_METRICS:
                va, vb = (getattr(base, key) if base else None), (getattr(st, key) if st else None)
                if va is not None and vb is not None and vb > own_use_limit(tol, va):
                    regressions.append(
                        {"phase": m.label, "input": i, "figure": key, "a": va, "b": vb, "limit": own_use_limit(tol, va)}
                    )
    inputs = [{k: v for k, v in asdict(r).items() if k not in ("phases", "summary")} for r in records]
    return {
        "inputs": inputs,
        "baseline": 0,
        "metrics": metrics,
        "phases": phases,
        "tolerance": tol.text,
        "regressions": regressions,
        "sites": _sites(records, row),
    }


def _sites(records: list[Comparable], row: Any, limit: int = 12) -> list[dict[str, Any]]:
    """Allocation sites named by captures and tracemalloc phases, lined up by name (largest first)."""
    from memview.captures.sites import session_sites

    per = [session_sites(r.summary) for r in records]
    keys = sorted({k for p in per for k in p}, key=lambda k: -max(p.get(k, 0) for p in per))[:limit]
    return [
        {"label": k, "unit": "bytes", "present": [k in p for p in per], **row([p.get(k) for p in per])} for k in keys
    ]


def format_value(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes":
        return format_bytes(value)
    if unit == "seconds":
        return format_duration(value)
    return str(value)


def format_change(ch: dict[str, Any] | None, unit: str) -> str:
    """ "+30.0 MiB (+25.0%)" for a change dict from :func:`compare`."""
    if not ch or ch.get("abs") is None:
        return "-"
    d, r = ch["abs"], ch.get("rel")
    sign = "±" if abs(d) < 1e-9 else ("+" if d > 0 else "-")  # float noise (0.35 - 0.35) is no change
    text = sign + format_value(abs(d), unit)
    if r is not None:
        text += f" ({r * 100:+.1f}%)"
    return text


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of a :func:`compare` result: the figure, then per input its value
    and (after the first) its change against the first; "(absent)" and "only in B" for one-sided phases.
    Shared by the text table and the GUI's difference table."""
    n = len(result["inputs"])
    letters = [letter(i) for i in range(n)]
    headers = [""]
    for i, name in enumerate(letters):
        headers.append(name)
        if i:
            headers.append(f"{name} vs A")
    rows: list[list[str]] = []

    def add(label: str, fig: dict[str, Any], present: list[bool] | None = None) -> None:
        cells = [label]
        for i, v in enumerate(fig["values"]):
            here = present is None or present[i]
            cells.append(format_value(v, fig["unit"]) if here else "(absent)")
            if i:
                if present is not None and not (present[0] and present[i]):
                    cells.append(f"only in {letters[i]}" if present[i] else ("only in A" if present[0] else "-"))
                else:
                    cells.append(format_change(fig["changes"][i], fig["unit"]))
        rows.append(cells)

    for fig in result["metrics"]:
        add(fig["label"], fig)
    for ph in result["phases"]:
        for fig in ph["figures"]:
            add(f"phase {ph['label']}: {fig['label']}", fig, ph["present"])
    for fig in result.get("sites") or []:
        add(f"site {fig['label']}", fig, fig["present"])
    return headers, rows


def letter(i: int) -> str:
    """The column name of the i-th input: A, B, … (A is the baseline)."""
    return chr(ord("A") + i) if i < 26 else str(i + 1)


def compare_text(result: dict[str, Any]) -> str:
    """The comparison as a plain-text table: one column per input, a change column after each but the first."""
    lines = [
        f"{letter(i)} = {inp['label']}" + (f"  ({inp['target']})" if inp.get("target") else "")
        for i, inp in enumerate(result["inputs"])
    ]
    headers, rows = table_rows(result)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    table = [
        "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in [headers, *rows]
    ]
    verdict = [
        f"REGRESSED phase {r['phase']} ({letter(r['input'])}): {_OWN_LABEL[r['figure']]} "
        f"{format_bytes(r['b'])} > limit {format_bytes(r['limit'])} (A: {format_bytes(r['a'])}, "
        f"tolerance {result.get('tolerance', DEFAULT_TOLERANCE)})"
        for r in result.get("regressions") or []
    ]
    return "\n".join([*lines, "", *table, *([""] + verdict if verdict else [])])


_OWN_LABEL = {"footprint_bytes": "footprint", "growth_bytes": "growth"}
