"""The per-pixel min/max envelope a long stored series is drawn from: every view keeps the true
extremes of what it shows (a one-sample spike survives any zoom), a gap stays a gap, and the
number of points handed to the curve depends on the pixels, not on the samples."""

from __future__ import annotations

import numpy as np
import pytest

from memview.ui.envelope import Envelope, with_gaps


@pytest.fixture(scope="module")
def series():
    n = 3_000_000
    rng = np.random.default_rng(7)
    t = np.arange(n) / 1000.0  # 50 minutes at 1 kHz
    v = 100.0 + rng.random(n) * 10
    v[1_234_567] = 999.0  # one sample
    v[2_500_001] = 1.0  # one low sample
    return t, v


@pytest.mark.parametrize("x0,x1", [(0, 3000), (1000, 1300), (1234.0, 1235.5), (2400, 2600), (2999, 3001)])
def test_every_view_keeps_the_extremes_with_few_points(series, x0, x1):
    t, v = series
    env = Envelope(t, v)
    xs, ys = env.view(x0, x1, 1000)
    inside = (t >= x0) & (t <= x1)
    assert len(xs) <= 4 * 1000 + 2 * 64 + 4
    assert ys.max() >= v[inside].max() and ys.min() <= v[inside].min()
    assert ys.max() <= v.max() and np.all(np.diff(xs) >= 0)
    # and nothing from far outside the view
    assert xs[0] >= x0 - 64 * 8**3 / 1000 and xs[-1] <= x1 + 64 * 8**3 / 1000


def test_a_gap_stays_a_gap_at_every_level(series):
    t, v = series
    gt, gv = with_gaps(t, v, [(1500.0, 1510.0, "HTTP 500")])
    env = Envelope(gt, gv)
    for x0, x1 in ((0, 3000), (1400, 1600), (1499, 1501)):
        xs, ys = env.view(x0, x1, 800)
        assert np.isnan(ys).any(), (x0, x1)
