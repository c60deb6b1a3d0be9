"""Growable numpy columns for one plotted series.

Why not lists: pyqtgraph wants numpy arrays, and converting a million-element list on every
redraw would cost more than the redraw. Why not a fixed ring: a session's whole history stays
visible (zoomed out, peak-downsampled), so nothing may fall off. The buffer doubles its
capacity when full (amortised O(1) per sample) and hands out views of the filled part, which
stay valid until the next growth; running figures are kept so the side panel never scans.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def series_stats(times: np.ndarray, values: np.ndarray) -> tuple[float, float, float]:
    """(max, time of the max, sum): what a buffer keeps, computed once (on the database thread
    for a stored series, so the UI thread does not scan a hundred million samples)."""
    i = int(np.argmax(values))
    return float(values[i]), float(times[i]), float(values.sum())


class SeriesBuffer:
    """Times (seconds since the session start) and values of one series, in arrival order."""

    __slots__ = ("_t", "_v", "count", "last", "max", "max_t", "total")

    def __init__(self, capacity: int = 4096) -> None:
        self._t = np.empty(max(capacity, 16), dtype=np.float64)
        self._v = np.empty(max(capacity, 16), dtype=np.float64)
        self.count = 0
        self.total = 0.0
        self.max: float | None = None
        self.max_t: float | None = None
        self.last: float | None = None

    @classmethod
    def from_arrays(cls, times: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                    stats: tuple[float, float, float] | None = None) -> SeriesBuffer:
        """A buffer over a stored series. float64 arrays are taken as they are, not copied: a day
        at 1 kHz is 1.4 GB, and the UI thread must not spend a second duplicating it (a later
        :meth:`extend` reallocates, as on any growth)."""
        if (isinstance(times, np.ndarray) and isinstance(values, np.ndarray) and times.dtype == np.float64
                and values.dtype == np.float64 and times.ndim == values.ndim == 1 and len(times) == len(values)
                and len(times)):
            buf = cls(16)
            buf._t, buf._v = times, values
            buf.count = len(times)
            if stats is None:
                stats = series_stats(times, values)
            buf.max, buf.max_t, buf.total = stats
            buf.last = float(values[-1])
            return buf
        buf = cls(len(times) + 16)
        buf.extend(times, values)
        return buf

    def extend(self, times: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray) -> None:
        n = len(times)
        if n == 0:
            return
        if n != len(values):
            raise ValueError("times and values differ in length")
        end = self.count + n
        if end > len(self._t):
            cap = len(self._t)
            while cap < end:
                cap *= 2
            t = np.empty(cap, dtype=np.float64)
            v = np.empty(cap, dtype=np.float64)
            t[: self.count] = self._t[: self.count]
            v[: self.count] = self._v[: self.count]
            self._t, self._v = t, v
        new_v = self._v[self.count: end]
        self._t[self.count: end] = times
        new_v[:] = values
        i = int(np.argmax(new_v))
        if self.max is None or new_v[i] > self.max:
            self.max = float(new_v[i])
            self.max_t = float(self._t[self.count + i])
        self.total += float(new_v.sum())
        self.last = float(new_v[-1])
        self.count = end

    @property
    def t(self) -> np.ndarray:
        return self._t[: self.count]

    @property
    def v(self) -> np.ndarray:
        return self._v[: self.count]

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def first_t(self) -> float | None:
        return float(self._t[0]) if self.count else None

    @property
    def last_t(self) -> float | None:
        return float(self._t[self.count - 1]) if self.count else None

    def value_at(self, t: float) -> float | None:
        """The value of the last sample at or before ``t`` (what the series read at that time)."""
        if not self.count:
            return None
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        return float(self._v[max(i, 0)])

    def max_between(self, t0: float, t1: float) -> float | None:
        """The largest value sampled in [t0, t1] (a phase's sampled peak while it is open)."""
        times = self.t
        i0 = int(np.searchsorted(times, t0, side="left"))
        i1 = int(np.searchsorted(times, t1, side="right"))
        if i1 <= i0:
            return None
        return float(self._v[i0:i1].max())
