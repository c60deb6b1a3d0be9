"""Any JSON document -> series, by ``--field KEY=path.to.value`` mappings and one ``--unit``.

A path is dot-separated keys; a segment that is a number indexes a list (``workers.0.rss``).
Keys name series: ``current`` (or ``rss``) is the required ``rss`` series, ``peak`` the
``service_peak``, ``pressure`` a normal/warning/critical state (or 0/1/2), ``timestamp`` the
document time (ISO 8601 or Unix seconds); a key with a colon (``component:cache``) is used as the
series name as it is; any other key becomes ``field:KEY``. The unit is ``--unit`` for all memory
fields, or else read from the last path segment's suffix (``used_mb`` is MiB, ``rss_bytes``
bytes); a field with neither is refused when the session starts, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memview.collectors.formats.values import (
    BadValue,
    FormatError,
    Parsed,
    epoch_ms,
    pressure,
    scaled,
    suffix_unit,
    unit_factor,
)
from memview.model import RSS_SERIES

NAME = "json"
_ALIASES = {
    "current": RSS_SERIES,
    "rss": RSS_SERIES,
    "peak": "service_peak",
    "service_peak": "service_peak",
    "pressure": "pressure",
    "timestamp": "doc_time",
    "doc_time": "doc_time",
}
_MISSING = object()


@dataclass(slots=True, frozen=True)
class Field:
    key: str
    series: str
    path: tuple[str, ...]
    factor: int  # bytes per unit; 0 for pressure and timestamp

    @property
    def where(self) -> str:
        return ".".join(self.path)


def parse_fields(specs: object, unit: str | None) -> list[Field]:
    """``["current=a.b", …]`` or ``{"current": "a.b"}`` -> fields; ValueError with a clear message."""
    pairs: list[tuple[str, str]] = []
    if isinstance(specs, dict):
        pairs = [(str(k), str(v)) for k, v in specs.items()]
    else:
        for spec in specs or []:  # type: ignore[attr-defined]
            key, sep, path = str(spec).partition("=")
            if not sep or not key.strip() or not path.strip():
                raise ValueError(f"a field must look like KEY=path.to.value (got {spec!r})")
            pairs.append((key, path))
    factor = unit_factor(unit) if unit else None
    fields: list[Field] = []
    for key, path in pairs:
        key, path = key.strip(), path.strip()
        series = _ALIASES.get(key.lower()) or (key if ":" in key else f"field:{key}")
        segments = tuple(p for p in path.split("."))
        if any(not p for p in segments):
            raise ValueError(f"empty segment in the path {path!r} of field {key}")
        if series in ("pressure", "doc_time"):
            fields.append(Field(key, series, segments, 0))
            continue
        f = factor
        if f is None:
            sized = suffix_unit(segments[-1])
            if sized is None:
                raise ValueError(f"say the unit of field {key} ({path}): --unit MiB|MB|KiB|bytes|GiB|GB")
            f = sized[1]
        fields.append(Field(key, series, segments, f))
    if len({f.series for f in fields}) != len(fields):
        raise ValueError("two --field options feed the same series")
    if not any(f.series == RSS_SERIES for f in fields):
        raise ValueError("say which value is the current usage: --field current=path.to.value")
    return fields


def lookup(doc: Any, path: tuple[str, ...]) -> Any:
    node = doc
    for seg in path:
        if isinstance(node, dict):
            node = node.get(seg, _MISSING)
        elif isinstance(node, list) and seg.lstrip("-").isdigit() and -len(node) <= int(seg) < len(node):
            node = node[int(seg)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def parse(doc: Any, fields: list[Field]) -> Parsed:
    out = Parsed()
    for f in fields:
        value = lookup(doc, f.path)
        required = f.series == RSS_SERIES
        if value is _MISSING or value is None:
            if required:
                raise FormatError(f"no value at {f.where} in the document", "missing")
            continue
        try:
            if f.series == "pressure":
                level, out.pressure = pressure(value, f.where)
                out.put("pressure", level, "state", "pressure (0 normal, 1 warning, 2 critical)")
            elif f.series == "doc_time":
                out.put("doc_time", epoch_ms(value, f.where), "epoch_ms", "document timestamp")
            else:
                out.put(f.series, scaled(value, f.factor, f.where), "bytes", f.where)
        except BadValue as exc:
            if required:
                raise FormatError(str(exc), "bad_value") from None
            out.problems[f.where] = str(exc)
    return out
