"""How far a memory figure may grow before it is a regression: ``+10%``, ``+5MB``, ``+10% or +5MB``.

Its own module because three places read a tolerance — a manifest case (``tolerance = "+10%"``),
a baseline entry and ``memview compare --tolerance`` — and none of them should import another to
parse one (the manifest imported the baseline for it, which made baseline → profile → manifest →
baseline a cycle). It imports nothing of memview but :mod:`memview.units`.

Why both forms: small peaks are noisy in absolute terms (allocator arenas, a shared library's
page cache), big ones in relative terms; ``+10% or +5MB`` allows whichever is more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from memview.units import UnitError, parse_size

DEFAULT_TOLERANCE = "+10%"
#: the least a phase's footprint or growth may exceed its baseline before it is a regression
OWN_USE_FLOOR = 2 * 1024 * 1024


class ToleranceError(ValueError):
    """A tolerance that cannot be used; ``str()`` is the one line to show."""


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far above its baseline a peak may go: ``+10%``, ``+5MB`` or ``+10% or +5MB``."""

    text: str
    relative: float | None  # 0.10 for +10%
    absolute: int | None  # bytes

    def limit(self, base: int) -> int:
        """The highest peak that still passes (the larger of the allowed forms)."""
        allowed = [base]
        if self.relative is not None:
            allowed.append(int(base * (1 + self.relative)))
        if self.absolute is not None:
            allowed.append(base + self.absolute)
        return max(allowed)


_PERCENT_RE = re.compile(r"^\+?\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%$")


def parse_tolerance(text: Any) -> Tolerance:
    """``"+10%"``, ``"+5MB"``, ``"+10% or +5MB"`` -> :class:`Tolerance`; ToleranceError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ToleranceError(f"not a tolerance: {text!r} (expected e.g. +10%, +5MB or '+10% or +5MB')")
    relative: float | None = None
    absolute: int | None = None
    for term in re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE):
        m = _PERCENT_RE.match(term)
        if m:
            if relative is not None:
                raise ToleranceError(f"tolerance {text!r} has two percentages")
            relative = float(m.group(1)) / 100
            continue
        if term.startswith("-"):
            raise ToleranceError(f"tolerance {text!r} must not be negative")
        try:
            size = parse_size(term.lstrip("+").strip())
        except UnitError:
            raise ToleranceError(f"not a tolerance: {text!r} (expected e.g. +10%, +5MB or '+10% or +5MB')") from None
        if absolute is not None:
            raise ToleranceError(f"tolerance {text!r} has two sizes")
        absolute = size
    return Tolerance(text.strip(), relative, absolute)


def own_use_limit(tol: Tolerance, base: int) -> int:
    """The largest footprint or growth that passes: the tolerance on ``max(base, 0)``, at least
    :data:`OWN_USE_FLOOR` above the baseline (own-use figures are small; allocator noise is not a regression)."""
    return max(tol.limit(max(base, 0)) + min(base, 0), base + OWN_USE_FLOOR)


__all__ = ["DEFAULT_TOLERANCE", "OWN_USE_FLOOR", "Tolerance", "ToleranceError", "own_use_limit", "parse_tolerance"]
