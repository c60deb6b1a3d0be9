"""Growable numpy columns for one plotted series.

Why not lists: pyqtgraph wants numpy arrays, and converting a million-element list on every
redraw would cost more than the redraw. Why not a fixed ring: a session's whole history stays
visible (zoomed out, peak-downsampled), so nothing may fall off. The buffer doubles its
capacity when full (amortised O(1) per sample) and hands out views of the filled part, which
stay valid until the next growth; running figures are kept so the side panel never scans.

A *live* buffer is given ``max_points`` so a long recording cannot grow memview without bound
(1 kHz for a day is 86 million samples, 1.4 GB of columns). When it is full, the older half is
compacted: every four points become the lowest and the highest of them, in time order, so every
spike and every trough stays drawn and the newest samples keep full resolution. ``count`` and
the running figures still cover every sample received; the full-resolution data is in the store.
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

    __slots__ = ("_n", "_t", "_v", "count", "last", "max", "max_points", "max_t", "total")

    def __init__(self, capacity: int = 4096, max_points: int | None = None) -> None:
        if max_points is not None:
            max_points = max(max_points, 64)
            capacity = min(capacity, max_points)
        self._t = np.empty(max(capacity, 16), dtype=np.float64)
        self._v = np.empty(max(capacity, 16), dtype=np.float64)
        self.max_points = max_points
        self._n = 0  # points held (fewer than count once compacted)
        self.count = 0  # samples received
        self.total = 0.0
        self.max: float | None = None
        self.max_t: float | None = None
        self.last: float | None = None

    @classmethod
    def from_arrays(
        cls,
        times: Sequence[float] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        stats: tuple[float, float, float] | None = None,
    ) -> SeriesBuffer:
        """A buffer over a stored series. float64 arrays are taken as they are, not copied: a day
        at 1 kHz is 1.4 GB, and the UI thread must not spend a second duplicating it (a later
        :meth:`extend` reallocates, as on any growth)."""
        if (
            isinstance(times, np.ndarray)
            and isinstance(values, np.ndarray)
            and times.dtype == np.float64
            and values.dtype == np.float64
            and times.ndim == values.ndim == 1
            and len(times) == len(values)
            and len(times)
        ):
            buf = cls(16)
            buf._t, buf._v = times, values
            buf.count = buf._n = len(times)
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
        if self.max_points is not None and n > self.max_points // 4:  # one huge batch: take it in parts
            half = self.max_points // 4
            for k in range(0, n, half):
                self.extend(times[k : k + half], values[k : k + half])
            return
        start = self._n
        end = start + n
        while self.max_points is not None and end > self.max_points:
            held = self._n
            self._compact()
            if self._n == held:
                break
            start = self._n
            end = start + n
        if end > len(self._t):
            cap = len(self._t)
            while cap < end:
                cap *= 2
            if self.max_points is not None:
                cap = min(cap, self.max_points)
            t = np.empty(cap, dtype=np.float64)
            v = np.empty(cap, dtype=np.float64)
            t[:start] = self._t[:start]
            v[:start] = self._v[:start]
            self._t, self._v = t, v
        new_v = self._v[start:end]
        self._t[start:end] = times
        new_v[:] = values
        i = int(np.argmax(new_v))
        if self.max is None or new_v[i] > self.max:
            self.max = float(new_v[i])
            self.max_t = float(self._t[start + i])
        self.total += float(new_v.sum())
        self.last = float(new_v[-1])
        self._n = end
        self.count += n

    def _compact(self) -> None:
        """Halve the older half of what is held: each group of 4 points -> its min and max, in time order."""
        old = (self._n // 2) // 4 * 4
        if old < 8:
            return
        t = self._t[:old].reshape(-1, 4)
        v = self._v[:old].reshape(-1, 4)
        rows = np.arange(len(v))
        lo, hi = v.argmin(axis=1), v.argmax(axis=1)
        first, second = np.minimum(lo, hi), np.maximum(lo, hi)
        flat = first == second  # all four equal: keep the group's ends, so times stay strictly increasing
        first[flat], second[flat] = 0, 3
        keep_t = np.empty((len(v), 2))
        keep_v = np.empty((len(v), 2))
        keep_t[:, 0], keep_t[:, 1] = t[rows, first], t[rows, second]
        keep_v[:, 0], keep_v[:, 1] = v[rows, first], v[rows, second]
        kept = old // 2
        rest = self._n - old
        self._t[:kept] = keep_t.ravel()
        self._v[:kept] = keep_v.ravel()
        self._t[kept : kept + rest] = self._t[old : self._n]
        self._v[kept : kept + rest] = self._v[old : self._n]
        self._n = kept + rest

    @property
    def t(self) -> np.ndarray:
        return self._t[: self._n]

    @property
    def v(self) -> np.ndarray:
        return self._v[: self._n]

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def first_t(self) -> float | None:
        return float(self._t[0]) if self.count else None

    @property
    def last_t(self) -> float | None:
        return float(self._t[self._n - 1]) if self._n else None

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
