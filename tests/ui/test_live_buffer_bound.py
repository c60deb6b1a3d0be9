"""Issue 17 item 14: the desktop app's live series buffers are bounded, and keep every spike.

Before: a live series kept every sample in numpy columns, 16 bytes each without bound (1 kHz for
a day is 86 million samples, 1.4 GB per series). Now a live buffer holds at most
``LIVE_MAX_POINTS``; the older half is compacted to each group's min and max.
"""

from __future__ import annotations

import numpy as np

from memview.ui.live_feed import LIVE_MAX_POINTS
from memview.ui.series_buffer import SeriesBuffer


def test_a_day_at_1khz_in_a_live_buffer_stays_within_its_bound_and_keeps_spikes():
    buf = SeriesBuffer(max_points=LIVE_MAX_POINTS)
    per_batch = 250  # one sampler flush at 1 kHz
    n_batches = 86_400_000 // per_batch // 40  # 36 simulated minutes: far past the bound, quick to run
    rnd = np.random.default_rng(3)
    spikes = {n_batches // 7: 3e9, n_batches // 2: 2.5e9, n_batches - 3: 2e9}
    trough = n_batches // 3
    peak_bytes = 0
    for k in range(n_batches):
        t = (k * per_batch + np.arange(per_batch)) * 0.001
        v = 2e8 + rnd.integers(0, 4096, per_batch).astype(np.float64)
        if k in spikes:
            v[17] = spikes[k]
        if k == trough:
            v[101] = 1e6
        buf.extend(t, v)
        peak_bytes = max(peak_bytes, buf._t.nbytes + buf._v.nbytes)
    assert buf.count == n_batches * per_batch
    assert len(buf.t) <= LIVE_MAX_POINTS
    assert peak_bytes <= 16 * LIVE_MAX_POINTS  # 4 MiB for 262k points, whatever the length
    assert np.all(np.diff(buf.t) > 0)
    held = set(buf.v.tolist())
    assert all(s in held for s in spikes.values()) and 1e6 in held  # every spike and the trough still drawn
    assert buf.max == 3e9 and buf.v.max() == 3e9
    # the newest samples keep full resolution
    assert np.allclose(np.diff(buf.t[-1000:]), 0.001)
    assert abs(buf.mean - 2e8) < 1e6 + 2048


def test_a_stored_session_opened_for_display_is_not_decimated():
    t = np.arange(1_000_000) * 0.001
    buf = SeriesBuffer.from_arrays(t, np.ones_like(t))
    assert len(buf.t) == 1_000_000 == buf.count
