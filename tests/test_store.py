"""The store on a real SQLite file: round trips, refusal of foreign files, migrations."""

import sqlite3
import time

import pytest

from memview.model import Batch
from memview.store import SCHEMA_VERSION, Store, StoreError, StoreWriter


def test_batches_round_trip_and_are_compact(db_path):
    store = Store(db_path)
    sid = store.create_session(kind="run", target="x", started_at=0.0)
    writer = StoreWriter(db_path, sid)
    writer.start()
    times = [i * 0.01 for i in range(10_000)]
    values = [100_000_000 + (i % 7) * 4096 for i in range(10_000)]
    for k in range(0, 10_000, 500):
        writer.write_batch(Batch(sid, {"rss": (times[k : k + 500], values[k : k + 500])}))
    assert writer.close()
    got_t, got_v = store.load_series(sid)
    assert got_v == values and max(abs(a - b) for a, b in zip(got_t, times)) < 1e-6
    blob_bytes = store.conn.execute("SELECT sum(length(t) + length(v)) FROM samples").fetchone()[0]
    assert blob_bytes / 10_000 < 8


def test_a_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        Store(path)
    assert path.read_bytes() == before


def test_a_non_database_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        Store(path)
    assert path.read_bytes() == b"not a database at all" * 100


def test_schema_is_versioned_and_private(db_path):
    Store(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"sessions", "samples", "processes", "phases", "events", "captures", "_sqlite_migrations"} <= {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert db_path.stat().st_mode & 0o077 == 0


def test_edit_and_delete(db_path):
    store = Store(db_path)
    sid = store.create_session(kind="run", target="x", started_at=0.0)
    store.update_session(sid, name="baseline", tags=["ci", "pdf"])
    s = store.session(sid)
    assert s["name"] == "baseline" and s["tags"] == ["ci", "pdf"]
    store.delete_session(sid)
    assert store.sessions() == []
    with pytest.raises(ValueError):
        store.update_session(sid, status="completed")


def _tree_batches(sid, n_batches=12, procs=5, per=25):
    """What the recorder hands the writer for a tree: the total and one series per process."""
    batches, t = [], 0.0
    for b in range(n_batches):
        times = [t + k * 0.01 for k in range(per)]
        series = {
            f"pid:{100 + i}": (times, [1_000_000 * (i + 1) + 4096 * ((b + k) % 3) for k in range(per)])
            for i in range(procs)
        }
        series["hwm:100"] = (times, [2_000_000 + k for k in range(per)])
        series["rss"] = (times, [sum(series[f"pid:{100 + i}"][1][k] for i in range(procs)) for k in range(per)])
        batches.append(Batch(sid, series))
        t += per * 0.01
    return batches


def test_the_total_is_written_with_every_batch_per_process_series_are_held_then_all_written(db_path):
    """The writer's per-series cost for trees: per-process series wait (one row per process per
    hold), the total never waits, and a close writes everything held: nothing is lost."""
    store = Store(db_path)
    sid = store.create_session(kind="run", target="tree", started_at=0.0)
    writer = StoreWriter(db_path, sid, hold_every=3600.0)
    writer.start()
    batches = _tree_batches(sid)
    for batch in batches:
        writer.write_batch(batch)
    reader = Store(db_path)
    deadline = time.monotonic() + 120  # generous: the writer commits within half a second when idle
    while len(reader.load_series(sid, "rss")[0]) < 12 * 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(reader.load_series(sid, "rss")[0]) == 12 * 25  # the total reached the disk ...
    assert reader.load_series(sid, "pid:100") == ([], [])  # ... the processes' series are still held
    assert writer.close()
    for name in batches[0].series:
        want_t = [t for b in batches for t in b.series[name][0]]
        want_v = [v for b in batches for v in b.series[name][1]]
        got_t, got_v = store.load_series(sid, name)
        assert got_v == want_v, name
        assert max(abs(a - b) for a, b in zip(got_t, want_t, strict=True)) < 1e-6
    rows = dict(store.conn.execute("SELECT series, count(*) FROM samples GROUP BY series").fetchall())
    assert rows["rss"] == 12 and rows["pid:100"] == 1 and rows["hwm:100"] == 1, rows
    reader.close()


def test_series_of_one_batch_with_different_times_keep_their_own(db_path):
    """The writer packs a time column once for the series that share it, never for one that differs."""
    store = Store(db_path)
    sid = store.create_session(kind="run", target="x", started_at=0.0)
    writer = StoreWriter(db_path, sid, hold_every=0.0)
    writer.start()
    a = ([0.0, 0.1, 0.2], [1, 2, 3])
    b = ([0.0, 0.1, 0.2], [4, 5, 6])
    c = ([0.05, 0.15, 0.3], [7, 8, 9])
    writer.write_batch(Batch(sid, {"pid:1": a, "pid:2": b, "pid:3": c, "rss": a}))
    assert writer.close()
    for name, (t, v) in {"pid:1": a, "pid:2": b, "pid:3": c, "rss": a}.items():
        got_t, got_v = store.load_series(sid, name)
        assert got_v == v and got_t == pytest.approx(t, abs=1e-6), name


def test_held_series_are_written_once_they_hold_enough_samples(db_path):
    """What the writer holds stays small at any rate: 1 kHz for 3 s is written in ~0.5 s chunks."""
    from memview.store import HOLD_MAX_SAMPLES

    store = Store(db_path)
    sid = store.create_session(kind="run", target="x", started_at=0.0)
    writer = StoreWriter(db_path, sid, hold_every=3600.0)
    writer.start()
    for b in range(12):
        times = [(b * 250 + k) / 1000 for k in range(250)]
        values = list(range(250))
        writer.write_batch(Batch(sid, {"rss": (times, values), "pid:7": (times, values)}))
        assert all(len(cols[0]) < HOLD_MAX_SAMPLES for cols in writer._held.values())
    assert writer.close()
    assert len(store.load_series(sid, "pid:7")[1]) == 3000
    rows = store.conn.execute("SELECT count(*) FROM samples WHERE series = 'pid:7'").fetchone()[0]
    assert rows == 4, rows  # 750 samples a row: three batches, the first past HOLD_MAX_SAMPLES
