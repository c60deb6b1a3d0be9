"""The marker's arguments: ``max_peak`` / ``limit_memory`` / ``baseline`` / ``timeout``, and the baseline file.

Apart from the hooks because the spelling rules are a contract of their own: ``max_peak`` takes
memview's units (``MB`` = 10^6 bytes), ``limit_memory`` takes pytest-memray's (``MB`` = MiB, so a
ported test keeps its limit), ``baseline=True`` takes the test's entry in ``--memview-baseline``
plus its tolerance, and ``--memview-baseline-update`` writes those entries back. Each bad
argument fails its test with one line naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

import pytest

from memview.baseline import dumps
from memview.baseline_files import FORMAT, VERSION, BaselineError, load_baseline
from memview.tolerance import DEFAULT_TOLERANCE, ToleranceError, parse_tolerance
from memview.units import UnitError, format_bytes, parse_duration, parse_size

from .state import BASELINE_CASE, MARK, PluginState

KWARGS = {"max_peak", "limit_memory", "timeout", "baseline"}
#: pytest-memray's units: its "MB" is 1024 * 1024 bytes
MEMRAY_UNITS = {
    "b": 1,
    "kb": 1024,
    "mb": 1024**2,
    "gb": 1024**3,
    "tb": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def _refuse(message: str) -> NoReturn:
    pytest.fail(message, pytrace=False)


def marker_kwargs(marker: pytest.Mark) -> dict[str, Any]:
    """The marker's keyword arguments (a lone positional one is ``max_peak``); unknown ones fail the test."""
    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("max_peak", marker.args[0])
    unknown = set(kwargs) - KWARGS
    if unknown or len(marker.args) > 1:
        _refuse(
            f"{MARK}: unknown arguments {sorted(unknown) or marker.args[1:]} (it takes max_peak='300MB', "
            "limit_memory='300 MB' (pytest-memray's units), timeout='5m', baseline=True)"
        )
    if "max_peak" in kwargs and "limit_memory" in kwargs:
        _refuse(f"{MARK}: give max_peak (memview's units) or limit_memory (pytest-memray's), not both")
    return kwargs


def memray_size(text: str) -> int:
    """A size in pytest-memray's spelling: ``"50 MB"`` is 50 MiB there (its units are binary)."""
    m = re.match(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*$", text)
    factor = MEMRAY_UNITS.get((m.group(2) or "b").lower()) if m else None
    if m is None or factor is None:
        raise ValueError(f"not a size: {text!r} (pytest-memray's spelling, e.g. '24 MB' = 24 MiB)")
    return int(float(m.group(1)) * factor)


def peak_limit(item: pytest.Function, marker: pytest.Mark, state: PluginState) -> tuple[int | None, str | None]:
    """The test's limit in bytes and as the user wrote it (None, None: measured, not limited)."""
    kwargs = marker_kwargs(marker)
    if "limit_memory" in kwargs:
        memray = str(kwargs["limit_memory"])
        try:
            n = memray_size(memray)
        except ValueError as exc:
            _refuse(f"{MARK}(limit_memory={memray!r}): {exc}")
        return n, f"{memray} (pytest-memray units: {n:,} bytes)"
    text = kwargs.get("max_peak")
    if text is None:
        return baseline_limit(item, kwargs.get("baseline"), state)
    if isinstance(text, int) and not isinstance(text, bool):
        return text, f"{text} bytes"
    try:
        return parse_size(str(text)), str(text)
    except UnitError as exc:
        _refuse(f"{MARK}(max_peak={text!r}): {exc}")


def baseline_limit(item: pytest.Function, wanted: Any, state: PluginState) -> tuple[int | None, str | None]:
    """The limit from ``--memview-baseline``: the test's entry plus its tolerance (None: no entry)."""
    if state.baseline is None:
        if wanted and not state.update_baseline:
            _refuse(f"{MARK}(baseline=True) needs --memview-baseline FILE")
        return None, None
    entry = state.baseline["cases"].get(BASELINE_CASE, {}).get(item.nodeid)
    if entry is None:
        if wanted:
            _refuse(
                f"{MARK}: no entry for {item.nodeid} in {state.baseline_path} "
                "(write one with --memview-baseline-update)"
            )
        return None, None
    text = entry.get("tolerance") or state.baseline.get("default_tolerance", DEFAULT_TOLERANCE)
    try:
        tol = parse_tolerance(text)
    except ToleranceError as exc:
        _refuse(f"{MARK}: {state.baseline_path}: {exc}")
    limit = tol.limit(entry["peak_rss_bytes"])
    return limit, f"baseline {format_bytes(entry['peak_rss_bytes'])} {tol.text}"


def body_timeout(marker: pytest.Mark, state: PluginState) -> float:
    """The marker's ``timeout=`` in seconds, else ``--memview-timeout`` (0: none)."""
    value = marker.kwargs.get("timeout")
    if value is None:
        return state.timeout
    try:
        return parse_duration(str(value))
    except UnitError as exc:
        _refuse(f"{MARK}(timeout={value!r}): {exc}")


def write_baseline(state: PluginState) -> None:
    """``--memview-baseline-update``: each measured body's peak as an entry of case ``pytest``.

    An entry's own tolerance survives the update; the other cases of the file are kept as they are.
    """
    path = Path(state.baseline_path or "")
    try:
        doc = load_baseline(path) if path.exists() else None
    except BaselineError as exc:
        raise pytest.UsageError(f"--memview-baseline: {exc}") from None
    doc = doc or {"format": FORMAT, "version": VERSION, "default_tolerance": DEFAULT_TOLERANCE, "cases": {}}
    entries = doc["cases"].setdefault(BASELINE_CASE, {})
    for m in state.measured:
        if m.get("peak_bytes") is not None:
            old = entries.get(m["nodeid"], {})
            entries[m["nodeid"]] = {
                "peak_rss_bytes": max(m["peak_bytes"], 0),
                **({"tolerance": old["tolerance"]} if "tolerance" in old else {}),
            }
    doc.pop("migrated_from", None)
    doc["cases"][BASELINE_CASE] = dict(sorted(entries.items()))
    path.write_text(dumps(doc))


__all__ = ["body_timeout", "baseline_limit", "marker_kwargs", "memray_size", "peak_limit", "write_baseline"]
