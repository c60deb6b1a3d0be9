"""The store's time-window query on real SQLite files: per pixel column, the exact lowest and highest
sample (numpy over the raw samples is the reference), the one-sample spike at every zoom, the
samples themselves when zoomed in, and a file written before chunk bounds existed."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from memview.model import Batch
from memview.store import SCHEMA_VERSION, Store, StoreWriter

N = 60_000
SPIKE = 31_337
MiB = 2**20


def _samples() -> tuple[list[float], list[int]]:
    """1 kHz with jittered times (not on whole microseconds), noisy values and one 900 MiB sample."""
    rng = np.random.default_rng(7)
    times = (np.arange(N) / 1000.0 + rng.uniform(0, 0.0004, N)).tolist()
    values = (200 * MiB + rng.integers(-MiB, MiB, N) + (np.arange(N) % 5000) * 4096).tolist()
    values[SPIKE] = 900 * MiB
    return times, values


def _write(db_path, times, values) -> tuple[Store, int]:
    """A session written as the recorder writes one: 250-sample batches through the writer thread."""
    store = Store(db_path)
    sid = store.create_session(kind="run", target="window", started_at=0.0)
    writer = StoreWriter(db_path, sid)
    writer.start()
    for k in range(0, len(times), 250):
        writer.write_batch(Batch(sid, {"rss": (times[k : k + 250], values[k : k + 250])}))
    assert writer.close()
    return store, sid


def _reference(store: Store, sid: int, x0: float, x1: float, pixels: int):
    """numpy's min and max of the stored samples in each of ``pixels`` equal columns of [x0, x1]."""
    t, v = (np.asarray(c, dtype=np.float64) for c in store.load_series(sid))
    keep = (t >= x0) & (t <= x1)
    t, v = t[keep], v[keep]
    dx = (x1 - x0) / pixels
    col = np.minimum(((t - x0) / dx).astype(np.int64), pixels - 1)
    cols = np.unique(col)
    lo = np.array([v[col == c].min() for c in cols])
    hi = np.array([v[col == c].max() for c in cols])
    return x0 + cols * dx, lo, hi


@pytest.mark.parametrize(
    ("x0", "x1", "pixels"),
    [
        (0.0, 60.0, 800),  # the whole session, ~300 chunks: most lie inside one column
        (12.3456, 47.0001, 1_111),  # edges in the middle of chunks, columns narrower than a chunk
        (-5.0, 80.0, 97),  # a view wider than the session: the empty columns are left out
        (31.0, 31.8, 150),  # 800 samples at 150 px: still per column (more than 4 per column)
    ],
)
def test_the_window_gives_numpys_min_and_max_of_every_pixel_column(db_path, x0, x1, pixels):
    times, values = _samples()
    store, sid = _write(db_path, times, values)
    got = store.window(sid, "rss", x0, x1, pixels)
    want_t, want_lo, want_hi = _reference(store, sid, x0, x1, pixels)
    assert not got.raw
    assert len(got.t) == len(want_t) > 0
    np.testing.assert_array_equal(got.lo, want_lo)
    np.testing.assert_array_equal(got.hi, want_hi)
    np.testing.assert_allclose(got.t, want_t, rtol=0, atol=1e-9)


def test_the_one_sample_spike_is_the_highest_value_at_every_zoom(db_path):
    times, values = _samples()
    store, sid = _write(db_path, times, values)
    for x0, x1, pixels in [(-np.inf, np.inf, 100), (0.0, 60.0, 1400), (20.0, 40.0, 7), (31.0, 31.7, 300)]:
        got = store.window(sid, "rss", x0, x1, pixels)
        assert float(got.hi.max()) == 900 * MiB, (x0, x1, pixels)
        k = int(np.argmax(got.hi))
        dx = (min(x1, 60.0) - max(x0, 0.0)) / pixels
        assert got.t[k] <= times[SPIKE] < got.t[k] + dx + 1e-6


def test_zoomed_in_the_window_gives_the_samples_themselves(db_path):
    times, values = _samples()
    store, sid = _write(db_path, times, values)
    got = store.window(sid, "rss", 31.2, 31.5, 400)  # ~300 samples, fewer than 4 a pixel
    all_t, all_v = store.load_series(sid)
    inside = [i for i, t in enumerate(all_t) if 31.2 <= t <= 31.5]
    want = range(inside[0] - 1, inside[-1] + 2)  # with one neighbour each side
    assert got.raw and got.lo is got.hi
    assert got.lo.tolist() == [float(all_v[i]) for i in want]
    assert got.t.tolist() == [all_t[i] for i in want]


def test_series_figures_come_from_the_bounds_and_match_the_samples(db_path):
    times, values = _samples()
    store, sid = _write(db_path, times, values)
    fig = store.series_figures(sid, "rss")
    all_t, all_v = store.load_series(sid)
    assert fig == {
        "samples": N,
        "sum": float(sum(values)),
        "peak": 900 * MiB,
        "peak_s": all_t[SPIKE],
        "last": values[-1],
        "last_s": all_t[-1],
    }
    assert store.series_figures(sid, "nothing") is None


def _age_to_schema_1(db_path) -> None:
    """Make the file what a memview of schema 1 wrote: no vmin/vsum columns nor bounds index, no
    0002 migration recorded, and chunk times as the writer was given them (not whole microseconds)."""
    conn = sqlite3.connect(db_path)
    conn.execute("DROP INDEX samples_bounds")
    conn.execute("ALTER TABLE samples DROP COLUMN vmin")
    conn.execute("ALTER TABLE samples DROP COLUMN vsum")
    conn.execute("UPDATE samples SET t_first = t_first + 3e-7, t_last = t_last + 3e-7")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0002_chunk_bounds'")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_database_written_before_chunk_bounds_opens_and_answers_windows(db_path):
    times, values = _samples()
    store, sid = _write(db_path, times, values)
    store.close()
    _age_to_schema_1(db_path)
    conn = sqlite3.connect(db_path)
    assert "vmin" not in {r[1] for r in conn.execute("PRAGMA table_info(samples)")}
    conn.close()
    store = Store(db_path)  # migrates: each chunk decoded once for its bounds
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.conn.execute("SELECT count(*) FROM samples WHERE vmin IS NULL").fetchone()[0] == 0
    for x0, x1, pixels in [(0.0, 60.0, 800), (12.3456, 47.0001, 1_111)]:
        got = store.window(sid, "rss", x0, x1, pixels)
        want_t, want_lo, want_hi = _reference(store, sid, x0, x1, pixels)
        np.testing.assert_array_equal(got.lo, want_lo)
        np.testing.assert_array_equal(got.hi, want_hi)
    assert store.series_figures(sid, "rss")["peak"] == 900 * MiB


def test_columns_appended_at_once_are_stored_as_the_writer_stores_them(tmp_path):
    times, values = _samples()
    written, sid = _write(tmp_path / "writer.db", times, values)
    appended = Store(tmp_path / "arrays.db")
    aid = appended.create_session(kind="run", target="window", started_at=0.0)
    appended.append_arrays(aid, "rss", np.asarray(times[:30_000]), np.asarray(values[:30_000]))
    appended.append_arrays(aid, "rss", np.asarray(times[30_000:]), np.asarray(values[30_000:]))
    cols = "seq, n, t_first, t_last, vmin, vmax, vsum, t, v"
    assert (
        appended.conn.execute(f"SELECT {cols} FROM samples ORDER BY seq").fetchall()
        == written.conn.execute(f"SELECT {cols} FROM samples ORDER BY seq").fetchall()
    )


def test_an_overview_of_whole_chunks_keeps_every_extreme_without_decoding(db_path):
    times, values = _samples()
    store, sid = _write(db_path, times, values)
    got = store.window(sid, "rss", -np.inf, np.inf, 64, whole_chunks=True)
    assert not got.raw and len(got.t) <= 64
    assert float(got.hi.max()) == 900 * MiB and float(got.lo.min()) == float(min(values))
    # each column is exact for the chunks whose first sample lies in it
    rows = store.conn.execute("SELECT t_first, vmin, vmax FROM samples ORDER BY seq").fetchall()
    dx = (times[-1] - rows[0][0]) / 64
    for k, t0 in enumerate(got.t):
        mine = [r for r in rows if t0 - 1e-9 <= r[0] < t0 + dx - 1e-9 or (k == len(got.t) - 1 and r[0] >= t0)]
        assert got.lo[k] == min(r[1] for r in mine) and got.hi[k] == max(r[2] for r in mine)
