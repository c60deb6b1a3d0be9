"""Baselines: a lean, reviewable file of expected peaks, and the check that fails CI on a regression.

A baseline holds, per case and input, the peak RSS in bytes, each phase's own use (its
footprint, peak − start, and its growth, end − start, next to its absolute peak) and, where it
differs from the file's default, a tolerance. It is written from a ``memview profile`` results
file and checked against the next one. Why the rules are what they are:

- A tolerance can be relative, absolute or both (``+10% or +5MB``, whichever allows more): small
  peaks are noisy in absolute terms (allocator arenas, page cache of a shared library), big ones
  in relative terms.
- Whatever the baseline lists and the results lack is reported and fails the check (a case that
  silently stopped running is not a pass); ``allow_missing`` relaxes that for partial runs. What
  the results add is reported as new and does not fail.
- A case whose command failed cannot be compared and fails the check.
- A phase is judged by its **own use**, never by its absolute peak: the absolute peak of a late
  phase contains everything earlier phases left behind, so when one phase grew, every later one
  "regressed" with it. The phase whose footprint or growth exceeded the tolerance is the one
  named. Own-use figures are small and noisy, so a purely relative tolerance gets an absolute
  floor of :data:`OWN_USE_FLOOR` for them. Version-1 baselines (a phase's absolute peak only) are
  migrated on reading: their phases are checked by absolute peak, flagged, until the next update.
- Malformed input is exit code 2, a regression 1, a pass 0 — so CI can tell "memory grew" from
  "the check itself is broken".

:func:`check` is a plain function (``check(baseline, results) -> (report_text, exit_code)``) so
``memview baseline check`` and ``memview compare --baseline`` share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from memview.baseline_files import (
    FORMAT,
    VERSION,
    BaselineError,
    parse_tolerance,
    records_by_key,
    validate_baseline,
)
from memview.results import phase_figures
from memview.tolerance import DEFAULT_TOLERANCE, Tolerance, own_use_limit
from memview.units import format_bytes

#: the own-use figures of a phase, in the order they are checked
OWN_USE = (("footprint_bytes", "footprint"), ("growth_bytes", "growth"))

OK, IMPROVED, NEW, ALLOWED_MISSING = "ok", "improved", "new", "missing"
REGRESSED, FAILED, MISSING, NO_PEAK = "REGRESSED", "FAILED", "MISSING", "NO PEAK"
_FAILING = {REGRESSED, FAILED, MISSING, NO_PEAK}


def update(
    results: dict[str, Any] | list[dict[str, Any]],
    previous: dict[str, Any] | None = None,
    tolerance: str | None = None,
    prune: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """A baseline from ``results``, merged into ``previous``; returns it and notes for the user.

    Cases present in the results replace their previous entries whole (an input that left the
    glob leaves the baseline). Cases absent from the results are kept, and listed, unless
    ``prune``. Tolerance of an entry: ``tolerance`` if given, else the manifest case's, else the
    previous entry's, else the file's default. Failed runs are refused: nothing is written.
    """
    if tolerance is not None:
        parse_tolerance(tolerance)
    records = records_by_key(results)
    failed = [f"{c} {i} ({_failure(r)})" for (c, i), r in records.items() if _failure(r)]
    if failed:
        raise BaselineError("the results hold failed runs, not a baseline: " + "; ".join(failed))
    prev = validate_baseline(previous, "previous baseline") if previous else None
    default = prev.get("default_tolerance", DEFAULT_TOLERANCE) if prev else DEFAULT_TOLERANCE
    prev_cases: dict[str, dict[str, Any]] = prev["cases"] if prev else {}
    cases: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for (case, inp), r in records.items():
        if r.get("peak_rss_bytes") is None:
            notes.append(f"skipped {case} {inp}: no peak was measured")
            continue
        entry: dict[str, Any] = {"peak_rss_bytes": r["peak_rss_bytes"]}
        phases = {
            k: {f: v for f, v in figs.items() if v is not None}
            for k, figs in phase_figures(r.get("phases") or []).items()
        }
        phases = {k: v for k, v in phases.items() if v}
        if phases:
            entry["phases"] = phases
        tol = tolerance or r.get("tolerance") or prev_cases.get(case, {}).get(inp, {}).get("tolerance")
        if tol and tol != default:
            entry["tolerance"] = tol
        cases.setdefault(case, {})[inp] = entry
    for case in sorted(set(prev_cases) - {c for c, _ in records}):
        if prune:
            notes.append(f"dropped {case}: not in these results")
        else:
            cases[case] = prev_cases[case]
            notes.append(f"kept {case} from the previous baseline: not in these results (--prune drops it)")
    docs = results if isinstance(results, list) else [results]
    meta = docs[0].get("metadata") or {} if docs else {}
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "default_tolerance": default,
        "source": {"git_sha": meta.get("git_sha"), "created_at": docs[0].get("created_at") if docs else None},
        "cases": {c: dict(sorted(cases[c].items())) for c in sorted(cases)},
    }
    return doc, notes


def dumps(doc: dict[str, Any]) -> str:
    """Stable, diff-friendly JSON: sorted cases and inputs, two-space indent, final newline."""
    return json.dumps(doc, indent=2) + "\n"


# -- checking -------------------------------------------------------------------------------
@dataclass(slots=True)
class Row:
    status: str
    case: str
    input: str
    what: str  # "peak", "phase NAME footprint", "phase NAME growth" or "phase NAME" (absolute peak)
    baseline: int | None = None
    current: int | None = None
    limit: int | None = None
    tolerance: str = ""
    detail: str = ""
    session_id: int | None = None
    figures: dict[str, Any] | None = None  # a phase's peak, footprint and growth on both sides (for the table)

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _failure(record: dict[str, Any]) -> str | None:
    """Why a run cannot be compared (None when it ran to completion with exit code 0)."""
    if record.get("timed_out"):
        return "timed out"
    if record.get("signal"):
        return f"killed by signal {record['signal']}"
    if record.get("exit_code") not in (0, None) or record.get("ok") is False:
        return f"exit code {record.get('exit_code')}"
    return None


def _compare(row: Row, base: int, current: int | None, tol: Tolerance, own_use: bool = False) -> Row:
    row.baseline, row.current, row.tolerance = base, current, tol.text
    row.limit = own_use_limit(tol, base) if own_use else tol.limit(base)
    if current is None:
        row.status, row.detail = NO_PEAK, "no peak was measured"
    elif current > row.limit:
        row.status = REGRESSED
    elif current < base - (row.limit - base):
        row.status, row.detail = IMPROVED, "below the baseline by more than the tolerance"
    else:
        row.status = OK
    return row


def evaluate(
    baseline: dict[str, Any], results: dict[str, Any] | list[dict[str, Any]], allow_missing: bool = False
) -> list[Row]:
    """One row per compared figure: each entry's peak and each baseline phase's own peak."""
    baseline = validate_baseline(baseline)
    records = records_by_key(results)
    default = parse_tolerance(baseline.get("default_tolerance", DEFAULT_TOLERANCE))
    rows: list[Row] = []
    for case, inputs in baseline["cases"].items():
        for inp, entry in inputs.items():
            tol = parse_tolerance(entry["tolerance"]) if "tolerance" in entry else default
            r = records.get((case, inp))
            if r is None:
                rows.append(
                    Row(
                        MISSING,
                        case,
                        inp,
                        "peak",
                        entry["peak_rss_bytes"],
                        tolerance=tol.text,
                        detail="not in the results" + (" (allowed)" if allow_missing else ""),
                    )
                )
                continue
            sid = r.get("session_id")
            why = _failure(r)
            if why:
                rows.append(
                    Row(
                        FAILED,
                        case,
                        inp,
                        "peak",
                        entry["peak_rss_bytes"],
                        r.get("peak_rss_bytes"),
                        tolerance=tol.text,
                        detail=f"the run failed: {why}",
                        session_id=sid,
                    )
                )
                continue
            rows.append(
                _compare(
                    Row(OK, case, inp, "peak", session_id=sid), entry["peak_rss_bytes"], r.get("peak_rss_bytes"), tol
                )
            )
            current_phases = phase_figures(r.get("phases") or [])
            for name, base in entry.get("phases", {}).items():
                if name not in current_phases:
                    rows.append(
                        Row(
                            MISSING,
                            case,
                            inp,
                            f"phase {name}",
                            base.get("peak_rss_bytes"),
                            tolerance=tol.text,
                            detail="phase not in the results" + (" (allowed)" if allow_missing else ""),
                            session_id=sid,
                        )
                    )
                else:
                    rows.extend(_phase_rows(case, inp, name, base, current_phases[name], tol, sid))
            for name in current_phases.keys() - entry.get("phases", {}).keys():
                rows.append(
                    Row(
                        NEW,
                        case,
                        inp,
                        f"phase {name}",
                        current=current_phases[name]["peak_rss_bytes"],
                        detail="no baseline for this phase",
                        session_id=sid,
                        figures={"current": current_phases[name]},
                    )
                )
    for (case, inp), r in records.items():
        if inp not in baseline["cases"].get(case, {}):
            why = _failure(r)
            rows.append(
                Row(
                    FAILED if why else NEW,
                    case,
                    inp,
                    "peak",
                    current=r.get("peak_rss_bytes"),
                    detail=f"the run failed: {why}" if why else "no baseline (memview baseline update)",
                    session_id=r.get("session_id"),
                )
            )
    if allow_missing:
        for row in rows:
            if row.status == MISSING:
                row.status = ALLOWED_MISSING
    return rows


def _phase_rows(
    case: str, inp: str, name: str, base: dict[str, Any], current: dict[str, Any], tol: Tolerance, sid: int | None
) -> list[Row]:
    """A phase's rows: its footprint and growth against the baseline's (its own use).

    Only where neither side has own-use figures (a version-1 baseline, old results) is the
    absolute peak compared, and the row says so: it may blame this phase for an earlier one.
    """
    figures = {"baseline": base, "current": current}
    rows = []
    for key, label in OWN_USE:
        if base.get(key) is not None and current.get(key) is not None:
            rows.append(
                _compare(
                    Row(OK, case, inp, f"phase {name} {label}", session_id=sid, figures=figures),
                    base[key],
                    current[key],
                    tol,
                    own_use=True,
                )
            )
    if rows:
        return rows
    row = _compare(
        Row(OK, case, inp, f"phase {name}", session_id=sid, figures=figures),
        base.get("peak_rss_bytes") or 0,
        current.get("peak_rss_bytes"),
        tol,
    )
    row.detail = "absolute peak (no footprint in the baseline: memview baseline update records it)"
    return [row]


def exit_code(rows: list[Row]) -> int:
    return 1 if any(r.status in _FAILING for r in rows) else 0


def _change(row: Row) -> str:
    if row.baseline is None or row.current is None:
        return "-"
    delta = row.current - row.baseline
    pct = f"{delta / abs(row.baseline) * 100:+.1f}%" if row.baseline else "n/a"
    return f"{pct} ({'+' if delta >= 0 else '-'}{format_bytes(abs(delta))})"


def render(rows: list[Row]) -> str:
    """The table and a verdict naming every regression, failure and missing entry."""
    from memview.report import text_table

    table = text_table(
        ["status", "case", "input", "what", "baseline", "current", "change", "limit"],
        [
            [
                r.status,
                r.case,
                r.input,
                r.what,
                format_bytes(r.baseline),
                format_bytes(r.current),
                _change(r),
                f"{format_bytes(r.limit)} ({r.tolerance})" if r.limit is not None else r.detail,
            ]
            for r in rows
        ],
    )
    lines = [table, ""]
    for r in rows:
        where = f"{r.case} {r.input} {r.what}"
        session = f" (memview show {r.session_id})" if r.session_id else ""
        if r.status == REGRESSED:
            lines.append(
                f"REGRESSED {where}: {format_bytes(r.current)} > limit {format_bytes(r.limit)} "
                f"(baseline {format_bytes(r.baseline)}, tolerance {r.tolerance}){session}"
            )
        elif r.status in (FAILED, MISSING, NO_PEAK):
            lines.append(f"{r.status} {where}: {r.detail}{session}")
        elif r.status == IMPROVED:
            lines.append(
                f"improved {where}: {format_bytes(r.current)}, {_change(r)} from the baseline "
                f"{format_bytes(r.baseline)} — consider an update (memview baseline update)"
            )
    counts = {
        s: sum(r.status == s for r in rows)
        for s in (REGRESSED, FAILED, MISSING, NO_PEAK, NEW, IMPROVED, ALLOWED_MISSING)
    }
    compared = sum(r.current is not None and r.baseline is not None for r in rows)
    parts = [f"{n} {s.lower()}" + (" (allowed)" if s == ALLOWED_MISSING else "") for s, n in counts.items() if n]
    verdict = "FAIL" if exit_code(rows) else "pass"
    lines.append(", ".join([f"memview baseline check: {verdict} — {compared} compared", *parts]))
    return "\n".join(lines)


def check(
    baseline: dict[str, Any], results: dict[str, Any] | list[dict[str, Any]], allow_missing: bool = False
) -> tuple[str, int]:
    """Compare results with a baseline: (report text, exit code 0 pass / 1 regression / 2 malformed)."""
    try:
        rows = evaluate(baseline, results, allow_missing=allow_missing)
    except BaselineError as exc:
        return f"memview: {exc}", 2
    return render(rows), exit_code(rows)
