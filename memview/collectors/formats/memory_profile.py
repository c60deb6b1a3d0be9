"""The memory-profile JSON document (RipTide's ``GET /api/v1/memory/profile``) -> series.

Every ``*_mb`` figure is MiB (2**20 bytes): RipTide computes them as bytes / (1024*1024) and
truncates the top-level ones to whole MiB, so ``rss`` from such a service moves in 1 MiB steps.

==========================  =====================================  =========================
document field              series                                 unit
==========================  =====================================  =========================
``current_usage_mb``        ``rss`` (required: else the tick is a  bytes
                            gap)
``peak_usage_mb``           ``service_peak``                       bytes
``total_allocated_mb``      ``total_allocated``                    bytes
``by_component.NAME``       ``component:NAME``                     bytes
``jemalloc.X_mb``           ``jemalloc:X``                         bytes
``jemalloc.X`` (others)     ``jemalloc:X``                         milli (×1000)
``stats.X``                 ``stats:X``                            see :func:`_generic`
``pressure``                ``pressure``                           0 normal, 1 warning,
                                                                   2 critical
``timestamp``               ``doc_time``                           Unix milliseconds
other top-level numbers     ``field:KEY``                          see :func:`_generic`
==========================  =====================================  =========================
"""

from __future__ import annotations

from typing import Any

from memview.collectors.formats.values import (
    MIB,
    BadValue,
    FormatError,
    Parsed,
    epoch_ms,
    pressure,
    scaled,
    suffix_unit,
)
from memview.model import RSS_SERIES

NAME = "memory-profile"
REQUIRED = "current_usage_mb"
_TOP = {
    "current_usage_mb": (RSS_SERIES, "current usage (service)"),
    "peak_usage_mb": ("service_peak", "peak usage (service's own)"),
    "total_allocated_mb": ("total_allocated", "total allocated (service)"),
}
_KNOWN = {*_TOP, "by_component", "jemalloc", "stats", "pressure", "timestamp"}


def looks_like(doc: object) -> bool:
    return isinstance(doc, dict) and REQUIRED in doc


def parse(doc: Any) -> Parsed:
    if not isinstance(doc, dict):
        raise FormatError(f"expected a JSON object, got a {type(doc).__name__}", "format")
    out = Parsed()
    if doc.get(REQUIRED) is None:
        raise FormatError(f"no {REQUIRED} in the document", "missing")
    for key, (series, label) in _TOP.items():
        value = doc.get(key)
        if value is None:
            continue
        try:
            out.put(series, scaled(value, MIB, key), "bytes", label)
        except BadValue as exc:
            if key == REQUIRED:
                raise FormatError(str(exc), "bad_value") from None
            out.problems[key] = str(exc)
    _components(doc.get("by_component"), out)
    _group(doc.get("jemalloc"), "jemalloc", out)
    _group(doc.get("stats"), "stats", out)
    if doc.get("pressure") is not None:
        try:
            level, out.pressure = pressure(doc["pressure"])
            out.put("pressure", level, "state", "pressure (0 normal, 1 warning, 2 critical)")
        except BadValue as exc:
            out.problems["pressure"] = str(exc)
    if doc.get("timestamp") is not None:
        try:
            out.put("doc_time", epoch_ms(doc["timestamp"]), "epoch_ms", "document timestamp")
        except BadValue as exc:
            out.problems["timestamp"] = str(exc)
    for key, value in doc.items():
        if key not in _KNOWN and isinstance(value, (int, float)) and not isinstance(value, bool):
            _generic(f"field:{key}", key, value, key, out)
    return out


def _components(block: object, out: Parsed) -> None:
    if block is None:
        return
    if not isinstance(block, dict):
        out.problems["by_component"] = "by_component is not an object"
        return
    for name, value in block.items():
        if value is None:
            continue
        try:
            out.put(f"component:{name}", scaled(value, MIB, f"by_component.{name}"), "bytes", f"component {name}")
        except BadValue as exc:
            out.problems[f"by_component.{name}"] = str(exc)


def _group(block: object, prefix: str, out: Parsed) -> None:
    if block is None:
        return
    if not isinstance(block, dict):
        out.problems[prefix] = f"{prefix} is not an object"
        return
    for key, value in block.items():
        if value is None or isinstance(value, (bool, str, list, dict)):
            continue  # flags and texts are not series; null is "not known now" (serde's NaN)
        _generic(f"{prefix}:{key}", key, value, f"{prefix}.{key}", out)


def _generic(series: str, key: str, value: object, where: str, out: Parsed) -> None:
    """A number whose unit only its name tells: sizes by suffix, counts, seconds, else milli-units."""
    low = key.lower()
    try:
        sized = suffix_unit(key)
        if sized is not None:
            base, factor = sized
            out.put(series[: len(series) - len(key)] + base, scaled(value, factor, where), "bytes", where)
        elif low.endswith("count") or low.endswith("_total"):
            out.put(series, scaled(value, 1, where), "count", where)
        elif low.endswith(("_secs", "_secs_ago", "_seconds", "_s")):
            out.put(series, scaled(value, 1000, where), "ms", where)
        else:
            out.put(series, scaled(value, 1000, where), "milli", f"{where} (×1000)")
    except BadValue as exc:
        out.problems[where] = str(exc)
