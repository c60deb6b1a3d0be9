"""Baseline and results documents: reading, migrating and validating them (exit code 2 when unusable).

Split from :mod:`memview.baseline` (which compares and reports): everything here answers "is this
file something memview can check against?", and says in one line what is wrong when it is not —
the check's own rules (tolerances, own use, missing cases) live beside the comparison.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from memview.results import NO_INPUT, RESULTS_FORMAT
from memview.tolerance import DEFAULT_TOLERANCE, Tolerance, ToleranceError
from memview.tolerance import parse_tolerance as _parse_tolerance

FORMAT = "memview-baseline"
VERSION = 2


class BaselineError(Exception):
    """A baseline, results file or tolerance that cannot be used (exit code 2)."""


def parse_tolerance(text: Any) -> Tolerance:
    """:func:`memview.tolerance.parse_tolerance`, refusing a bad one as a :class:`BaselineError` (exit 2)."""
    try:
        return _parse_tolerance(text)
    except ToleranceError as exc:
        raise BaselineError(str(exc)) from None


# -- reading --------------------------------------------------------------------------------
def load_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise BaselineError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path} is not valid JSON ({exc})") from None


def record_key(record: dict[str, Any]) -> tuple[str, str]:
    return record["case"], record.get("input") or NO_INPUT


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-1 baseline (``phases: {name: peak}``) as version 2 (``phases: {name: {figures}}``).

    Nothing is invented: a migrated phase has its absolute peak only, and is checked by it (with
    a note) until ``memview baseline update`` writes its footprint and growth.
    """
    if doc.get("version") == VERSION and not any(
        isinstance(v, int)
        for inputs in doc["cases"].values()
        for e in inputs.values()
        for v in (e.get("phases") or {}).values()
    ):
        return doc
    cases = {
        case: {
            inp: (
                {
                    **entry,
                    "phases": {
                        k: {"peak_rss_bytes": v} if isinstance(v, int) else v for k, v in entry["phases"].items()
                    },
                }
                if isinstance(entry.get("phases"), dict)
                else entry
            )
            for inp, entry in inputs.items()
        }
        for case, inputs in doc["cases"].items()
    }
    return {**doc, "version": VERSION, "cases": cases, "migrated_from": doc.get("version")}


def _is_bytes(v: Any, signed: bool = False) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and (signed or v >= 0)


def _valid_phase(v: Any) -> bool:
    if _is_bytes(v):  # version 1
        return True
    return (
        isinstance(v, dict)
        and bool(v)
        and all(
            k in ("peak_rss_bytes", "footprint_bytes", "growth_bytes")
            and (x is None or _is_bytes(x, k == "growth_bytes"))
            for k, x in v.items()
        )
    )


def validate_results(doc: Any, source: str) -> list[dict[str, Any]]:
    """The records of a ``memview profile`` results document, checked enough to compare them."""
    if not isinstance(doc, dict) or doc.get("format") != RESULTS_FORMAT:
        raise BaselineError(f'{source} is not a memview profile results file (no "format": "{RESULTS_FORMAT}")')
    if not isinstance(doc.get("version"), int) or doc["version"] > 1:
        raise BaselineError(f"{source}: results format version {doc.get('version')!r} is not supported")
    records = doc.get("records")
    if not isinstance(records, list):
        raise BaselineError(f'{source}: "records" must be a list')
    for i, r in enumerate(records):
        where = f"{source}: records[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("case"), str):
            raise BaselineError(f"{where} has no case name")
        if r.get("input") is not None and not isinstance(r["input"], str):
            raise BaselineError(f"{where}: input must be a string")
        peak = r.get("peak_rss_bytes")
        if peak is not None and (not isinstance(peak, int) or isinstance(peak, bool) or peak < 0):
            raise BaselineError(f"{where}: peak_rss_bytes must be a number of bytes")
        if not isinstance(r.get("phases", []), list):
            raise BaselineError(f"{where}: phases must be a list")
    return records


def validate_baseline(doc: Any, source: str = "baseline") -> dict[str, Any]:
    """Check a baseline document; returns it. Every entry's tolerance is parsed here, once."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BaselineError(f'{source} is not a memview baseline (no "format": "{FORMAT}")')
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise BaselineError(f"{source}: baseline format version {doc.get('version')!r} is not supported")
    parse_tolerance(doc.get("default_tolerance", DEFAULT_TOLERANCE))
    cases = doc.get("cases")
    if not isinstance(cases, dict):
        raise BaselineError(f'{source}: "cases" must be an object of case name -> inputs')
    for case, inputs in cases.items():
        if not isinstance(inputs, dict):
            raise BaselineError(f"{source}: cases[{case!r}] must be an object of input -> entry")
        for inp, entry in inputs.items():
            where = f"{source}: cases[{case!r}][{inp!r}]"
            if not isinstance(entry, dict):
                raise BaselineError(f"{where} must be an object with peak_rss_bytes")
            peak = entry.get("peak_rss_bytes")
            if not isinstance(peak, int) or isinstance(peak, bool) or peak < 0:
                raise BaselineError(f"{where}.peak_rss_bytes must be a number of bytes (got {peak!r})")
            phases = entry.get("phases", {})
            if not isinstance(phases, dict) or not all(_valid_phase(v) for v in phases.values()):
                raise BaselineError(
                    f"{where}.phases must map phase names to numbers of bytes (version 1) or to "
                    "{peak_rss_bytes, footprint_bytes, growth_bytes}"
                )
            if "tolerance" in entry:
                try:
                    parse_tolerance(entry["tolerance"])
                except BaselineError as exc:
                    raise BaselineError(f"{where}.tolerance: {exc}") from None
    return migrate(doc)


def load_baseline(path: str | Path) -> dict[str, Any]:
    return validate_baseline(load_json(path, "baseline"), str(path))


def load_results(sources: list[str], db: str | None = None) -> list[dict[str, Any]]:
    """Results documents from each source, ready for :func:`check` and :func:`update`.

    A source is a ``memview profile`` JSON file, a stored session id or a bundle
    (``.memview.zip``) of a session recorded by ``memview profile`` (it knows its case and input
    from its tags). This is the one place that decides what a "results" argument can be.
    """
    docs: list[dict[str, Any]] = []
    summaries: list[tuple[str, dict[str, Any]]] = []
    sids: list[int] = []
    for src in sources:
        if src.isdigit() and not Path(src).exists():
            sids.append(int(src))
        elif zipfile.is_zipfile(src) if Path(src).is_file() else src.endswith(".zip"):
            from memview.bundle import BundleError, read_manifest

            try:
                summaries.append((src, read_manifest(Path(src))["summary"]))
            except BundleError as exc:
                raise BaselineError(str(exc)) from None
        else:
            doc = load_json(src, "results file")
            validate_results(doc, src)
            docs.append(doc)
    if sids:
        summaries.extend(_session_summaries(sids, db))
    if summaries:
        docs.append(results_from_summaries(summaries))
    return docs


def _session_summaries(session_ids: list[int], db: str | None) -> list[tuple[str, dict[str, Any]]]:
    from memview.analysis import session_summary
    from memview.store import Store, StoreError

    try:
        store = Store(Path(db) if db else None)
        return [(f"session {sid}", session_summary(store, sid)) for sid in session_ids]
    except StoreError as exc:
        raise BaselineError(str(exc)) from None


def results_from_summaries(summaries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A results document made of ``memview profile`` sessions' summaries (one record each)."""
    from memview.results import record_from_summary, results_document

    records = []
    for source, summary in summaries:
        tags = summary.get("tags") or []
        case = next((t[5:] for t in tags if t.startswith("case:")), None)
        if case is None:
            raise BaselineError(f"{source} was not recorded by memview profile (it has no case: tag)")
        inp = next((t[6:] for t in tags if t.startswith("input:")), NO_INPUT)
        records.append(record_from_summary(summary, case, inp))
    return results_document(records, meta={})


def records_by_key(results: dict[str, Any] | list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    docs = results if isinstance(results, list) else [results]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for i, doc in enumerate(docs):
        for r in validate_results(doc, f"results #{i + 1}" if len(docs) > 1 else "results"):
            key = record_key(r)
            if key in out:
                raise BaselineError(f"case {key[0]} input {key[1]} appears twice in the results")
            out[key] = r
    return out


# -- writing --------------------------------------------------------------------------------
