"""Turning a document's numbers into memview's integer series, and refusing the ones that lie.

Every format reads its figures through these helpers, so "NaN", "-5", ``true`` or a string
where a number belongs is refused the same way everywhere: a :class:`BadValue` naming the
field, never a zero. Units are decided from the field's name once (``_mb`` -> MiB, ``_ratio``
-> milli-units), never from how a number happens to be spelled in one response, so a series
keeps one unit for the whole session.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

MIB = 2**20

#: ``--unit`` choices. Decimal units are powers of 1000, as in :mod:`memview.units`.
UNITS = {"bytes": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": MIB, "gb": 1000**3, "gib": 2**30}

#: field-name suffixes that say the unit. ``_mb`` is MiB: services compute it as bytes / (1024*1024)
#: (RipTide's jemalloc_stats.rs does exactly that), so that is what the figure means.
SUFFIXES = (("_bytes", 1), ("_kib", 1024), ("_kb", 1024), ("_mib", MIB), ("_mb", MIB), ("_gib", 2**30), ("_gb", 2**30))

PRESSURE = {"normal": 0, "warning": 1, "critical": 2}


class BadValue(Exception):
    """A field whose value cannot be a memory figure; the message names the field."""


class FormatError(Exception):
    """The response as a whole cannot be read (the tick is a gap); ``kind`` is a short stable name."""

    def __init__(self, reason: str, kind: str = "format") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(slots=True)
class Parsed:
    """One response read: integer series, their units, the pressure state, per-field problems.

    ``problems`` maps a field to why it was left out this time; the series it would have fed has
    no sample for this tick (a gap in that series only).
    """

    values: dict[str, int] = field(default_factory=dict)
    units: dict[str, tuple[str, str]] = field(default_factory=dict)
    pressure: str | None = None
    problems: dict[str, str] = field(default_factory=dict)

    def put(self, series: str, value: int, unit: str, label: str) -> None:
        self.values[series] = value
        self.units[series] = (unit, label)


def unit_factor(name: str) -> int:
    """``--unit`` text -> bytes per unit."""
    factor = UNITS.get(name.strip().lower())
    if factor is None:
        raise ValueError(f"unknown unit {name!r} (use bytes, KiB, MiB, GiB, KB, MB, GB)")
    return factor


def suffix_unit(key: str) -> tuple[str, int] | None:
    """``allocated_mb`` -> ("allocated", 1048576); None when the name does not say a size unit."""
    low = key.lower()
    for suffix, factor in SUFFIXES:
        if low.endswith(suffix) and len(low) > len(suffix):
            return key[: -len(suffix)], factor
    return None


def describe(value: object) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "infinite"
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of ~{int(value.bit_length() * 0.30103) + 1} digits"  # repr() of 5000 digits raises
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def number(value: object, name: str) -> float:
    """A finite, non-negative JSON/Prometheus number; BadValue otherwise (``true`` is not 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadValue(f"{name} is not a number ({describe(value)})")
    if isinstance(value, int) and value.bit_length() > 63:  # math.isfinite() would overflow on it
        raise BadValue(f"{name} is too large ({describe(value)})")
    if not math.isfinite(value):
        raise BadValue(f"{name} is {describe(value)}")
    if value < 0:
        raise BadValue(f"{name} is negative ({describe(value)})")
    return value


#: the largest figure a series takes (2^62 - 1, ~4.6 EB): the store packs deltas as int64, and no
#: real memory figure comes near it. Anything beyond is a broken or hostile document.
MAX_VALUE = 2**62 - 1


def scaled(value: object, factor: float, name: str) -> int:
    """``value * factor`` as an integer series value; BadValue when it is beyond :data:`MAX_VALUE`."""
    got = number(value, name) * factor
    if got > MAX_VALUE:  # also a 4000-digit integer: never turned into a 4000-digit int or an overflow
        raise BadValue(f"{name} is too large ({describe(value)})")
    return round(got)


def pressure(value: object, name: str = "pressure") -> tuple[int, str]:
    """ "normal"/"warning"/"critical" (or 0/1/2) -> (level, state)."""
    if isinstance(value, str) and value.strip().lower() in PRESSURE:
        state = value.strip().lower()
        return PRESSURE[state], state
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1, 2):
        level = int(value)
        return level, next(k for k, v in PRESSURE.items() if v == level)
    raise BadValue(f"{name} is not normal/warning/critical ({describe(value)})")


def epoch_ms(value: object, name: str = "timestamp") -> int:
    """An ISO 8601 time (naive means UTC) or Unix seconds/milliseconds -> Unix milliseconds."""
    if isinstance(value, str):
        text = value.strip()
        try:
            when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise BadValue(f"{name} is not an ISO 8601 time ({describe(value)})") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return round(when.timestamp() * 1000)
    seconds = number(value, name)
    ms = seconds if seconds > 1e11 else seconds * 1000  # > 1e11 can only be milliseconds
    if ms > MAX_VALUE:
        raise BadValue(f"{name} is too large ({describe(value)})")
    return round(ms)
