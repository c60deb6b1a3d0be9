"""The store on a real SQLite file: round trips, refusal of foreign files, migrations."""

import sqlite3

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
        writer.write_batch(Batch(sid, {"rss": (times[k:k + 500], values[k:k + 500])}))
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
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
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
