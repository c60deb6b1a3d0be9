"""A long stored series drawn per pixel from a real store: every view keeps the true extremes of
what it shows (a one-sample spike and trough survive any zoom), a gap stays a gap, the number of
points handed to the curve depends on the pixels, not on the samples, and the answer is read on
the reader thread and announced on the UI thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memview.model import Batch
from memview.store import Store, StoreWriter
from memview.ui.envelope import StoredEnvelope, WindowReader
from memview.ui.session_data import load_session

N = 300_000  # 5 minutes at 1 kHz: above MIN_SAMPLES, so the session is read per view
HIGH, LOW = 123_457, 250_001


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    db = tmp_path_factory.mktemp("envelope") / "memview.db"
    rng = np.random.default_rng(7)
    t = np.arange(N) / 1000.0
    v = 100_000 + rng.integers(0, 10_000, N)
    v[HIGH] = 999_000  # one sample
    v[LOW] = 1_000  # one low sample
    store = Store(db)
    sid = store.create_session(kind="run", target="envelope", started_at=0.0)
    writer = StoreWriter(db, sid)
    writer.start()
    times, values = t.tolist(), v.tolist()
    for k in range(0, N, 250):
        writer.write_batch(Batch(sid, {"rss": (times[k : k + 250], values[k : k + 250])}))
    assert writer.close()
    return store, sid, t, v.astype(np.float64)


def _answer(qtbot, env: StoredEnvelope, x0: float, x1: float, pixels: int):
    """What the view draws once the store's answer for this view has arrived (the UI thread is told)."""
    told = threading.Event()
    env.on_ready(lambda: told.set() if threading.current_thread() is threading.main_thread() else None)
    env.view(x0, x1, pixels)
    qtbot.waitUntil(lambda: env.exact(x0, x1, pixels) and told.is_set(), timeout=60_000)
    return env.view(x0, x1, pixels)


@pytest.mark.parametrize("x0,x1", [(0.5, 299.5), (100, 130), (123.0, 124.5), (240, 260), (299, 301)])
def test_every_view_keeps_the_extremes_with_few_points(qtbot, stored, x0, x1):
    store, sid, t, v = stored
    env = StoredEnvelope(WindowReader(store, sid), "rss", store.window(sid, "rss", -np.inf, np.inf, 4096), [])
    xs, ys = _answer(qtbot, env, x0, x1, 1000)
    inside = (t >= x0) & (t <= x1)
    assert len(xs) <= 2 * 1000 + 2
    assert ys.max() == v[inside].max() and ys.min() == v[inside].min()
    assert np.all(np.diff(xs) >= 0)
    assert xs[0] >= x0 - 0.001 and xs[-1] <= x1 + 0.001  # nothing from outside the view (but a neighbour)


def test_a_gap_stays_a_gap_at_every_zoom(qtbot, stored):
    store, sid, _t, _v = stored
    gaps = [(150.0, 151.0, "HTTP 500")]
    env = StoredEnvelope(WindowReader(store, sid), "rss", store.window(sid, "rss", -np.inf, np.inf, 4096), gaps)
    assert np.isnan(env.view(-np.inf, np.inf, 800)[1]).any()
    for x0, x1 in ((140, 160), (149.9, 150.2)):
        _xs, ys = _answer(qtbot, env, x0, x1, 800)
        assert np.isnan(ys).any(), (x0, x1)


def test_a_long_session_loads_an_overview_and_its_figures_not_its_samples(stored):
    store, sid, t, v = stored
    store.conn.execute(
        "UPDATE sessions SET status = 'completed', ended_at = 300.0, wall_s = 300.0 WHERE id = ?", (sid,)
    )
    data = load_session(store, sid)
    ot, ov = data.series["rss"]
    assert "rss" in data.envelopes and len(ot) <= 2 * 4096
    assert np.nanmax(ov) == 999_000 and np.nanmin(ov) == 1_000  # both one-sample extremes in the overview
    assert data.stats["rss"] == (999_000.0, t[HIGH], float(v.sum()))


def test_the_compare_view_reads_a_long_session_as_its_overview(stored):
    from memview.ui.compare_view import load_sessions

    store, sid, _t, v = stored
    store.conn.execute(
        "UPDATE sessions SET status = 'completed', ended_at = 300.0, wall_s = 300.0 WHERE id = ?", (sid,)
    )
    (loaded,) = load_sessions(Store(store.path), [sid])
    assert len(loaded.times) <= 2 * 4096  # not the 300k samples
    assert loaded.values.max() == v.max() == 999_000 and loaded.values.min() == v.min() == 1_000


def test_the_value_at_the_cursor_is_the_sample_zoomed_in_and_the_columns_range_zoomed_out(qtbot, stored):
    store, sid, t, v = stored
    env = StoredEnvelope(WindowReader(store, sid), "rss", store.window(sid, "rss", -np.inf, np.inf, 4096), [])
    _answer(qtbot, env, 123.40, 123.50, 1000)  # ~100 samples: drawn as they are
    at = t[HIGH] + 0.0004  # between the spike and the next sample
    assert env.value_at(at) == (999_000.0, 999_000.0)
    assert env.value_at(123.45) == (v[123_450], v[123_450])
    _answer(qtbot, env, 100.0, 200.0, 200)  # 0.5 s a column: 500 samples each
    lo, hi = env.value_at(t[HIGH])
    k = int((t[HIGH] - 100.0) / 0.5)
    column = (t >= 100.0 + k * 0.5) & (t < 100.0 + (k + 1) * 0.5)
    assert (lo, hi) == (v[column].min(), v[column].max()) and hi == 999_000
    assert env.value_at(-1.0) is None
