"""Sizes, rates and durations as people type them, and as people read them.

Decimal units (KB, MB, GB) are powers of 1000 and binary units (KiB, MiB, GiB) powers of
1024, as the SI and IEC say; a bare number is bytes. Being strict here is what lets a baseline
written on one machine mean the same on another.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


class UnitError(ValueError):
    """A size, rate or duration that cannot be read; the message says what was expected."""


def parse_size(text: str) -> int:
    """'800MB' -> 800000000, '2GiB' -> 2147483648, '512' -> 512 bytes."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise UnitError(f"not a size: {text!r} (expected e.g. 800MB, 2GiB, 512KiB)")
    number, unit = m.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise UnitError(f"unknown size unit {unit!r} in {text!r} (use B, KB, MB, GB, KiB, MiB, GiB)")
    return int(round(float(number) * factor))


def parse_duration(text: str) -> float:
    """'30', '30s', '250ms', '2m', '1h' -> seconds."""
    m = re.match(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|min|h)?\s*$", str(text))
    if not m:
        raise UnitError(f"not a duration: {text!r} (expected e.g. 30s, 250ms, 2m)")
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def format_bytes(n: float | None) -> str:
    """Human-readable binary size: 1536 -> '1.5 KiB'; None -> '-'."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ""
    n = abs(float(n))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float | None) -> str:
    """'mm:ss' below an hour, 'h:mm:ss' above; sub-10-second values keep milliseconds."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.3f}s"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"
