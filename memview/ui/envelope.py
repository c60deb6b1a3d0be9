"""A per-pixel min/max envelope of a long stored series, so a frame costs the same at 1M or 100M samples.

pyqtgraph's peak downsampling scans every visible sample on every paint: a day at 10 Hz (864k
samples) costs ~200 ms a frame on this machine, a day at 1 kHz would cost seconds. A stored
series does not change, so its block minima and maxima are computed once, in levels (blocks of
64, 512, 4096, … samples); a view then takes the finest level that still gives at most a few
values per pixel column, slices the visible blocks and hands the curve one min/max pair per
block. A spike stays visible at every level (the max of its block), and a gap stays a gap
(a block holding a NaN is NaN: ``np.max`` propagates it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: below this many samples pyqtgraph's own downsampling is cheap enough
MIN_SAMPLES = 200_000
FACTOR = 8
FIRST_BLOCK = 64


def with_gaps(t: np.ndarray, v: np.ndarray, gaps: list[tuple[float, float | None, str]]) -> tuple[Any, Any]:
    """``t, v`` with a NaN sample at each gap's start, so a ``connect="finite"`` curve breaks there."""
    if not gaps or not len(t):
        return t, v
    starts = np.array(sorted(g[0] for g in gaps), dtype=np.float64)
    starts = starts[(starts >= t[0]) & (starts <= t[-1] + 1e9)]
    if not len(starts):
        return t, v
    idx = np.searchsorted(t, starts, side="left")
    return np.insert(t, idx, starts), np.insert(v, idx, np.nan)


class Envelope:
    """Min/max pyramid of one (times, values) series; :meth:`view` gives what to draw."""

    def __init__(self, t: np.ndarray, v: np.ndarray) -> None:
        self.t = t
        self.v = v
        self.levels: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []  # (block, t0, min, max)
        block = FIRST_BLOCK
        lo, hi, n = v, v, len(v)
        step = FIRST_BLOCK
        while n // step >= 256:
            m = n // step
            lo = lo[: m * step].reshape(m, step).min(axis=1)
            hi = hi[: m * step].reshape(m, step).max(axis=1)
            self.levels.append((block, t[: m * block: block], lo, hi))
            n = m
            block *= FACTOR
            step = FACTOR

    def view(self, x0: float, x1: float, pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) to draw [x0, x1] on ``pixels`` columns: raw samples when few, else one
        (min, max) pair per pixel column, from the finest level with at most 8 blocks a column
        (so a frame reads at most 8 x pixels blocks, whatever the session's length)."""
        t = self.t
        i0 = max(int(np.searchsorted(t, x0, side="left")) - 1, 0)
        i1 = min(int(np.searchsorted(t, x1, side="right")) + 1, len(t))
        n = i1 - i0
        pixels = max(pixels, 100)
        if n <= 4 * pixels or not self.levels:
            return t[i0:i1], self.v[i0:i1]
        block, starts, lo, hi = next((lv for lv in self.levels if n / lv[0] <= 8 * pixels), self.levels[-1])
        full = len(lo)
        b0, b1 = i0 // block, min(-(-i1 // block), full)
        starts, lo, hi = starts[b0:b1], lo[b0:b1], hi[b0:b1]
        per = -(-len(lo) // pixels)  # blocks per column
        if per > 1:
            m = len(lo) // per
            tail_lo, tail_hi = lo[m * per:], hi[m * per:]
            starts_c = starts[: m * per: per]
            lo_c = lo[: m * per].reshape(m, per).min(axis=1)
            hi_c = hi[: m * per].reshape(m, per).max(axis=1)
            if len(tail_lo):
                starts_c = np.append(starts_c, starts[m * per])
                lo_c = np.append(lo_c, tail_lo.min())
                hi_c = np.append(hi_c, tail_hi.max())
            starts, lo, hi = starts_c, lo_c, hi_c
        xs = np.repeat(starts, 2)
        ys = np.empty(2 * len(lo))
        ys[0::2] = lo
        ys[1::2] = hi
        tail = b1 * block  # samples past the last whole block: drawn as they are
        if b1 == full and tail < i1:
            xs = np.concatenate((xs, t[tail:i1]))
            ys = np.concatenate((ys, self.v[tail:i1]))
        return xs, ys
