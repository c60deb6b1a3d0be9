"""The database file: connecting, refusing foreign or newer files, the schema and its migrations.

Why apart from the queries: whether a file may be opened at all (ours, not newer, not another
program's) and how an older file is brought up to date are decided once, before any query runs,
and every other module of the store relies on that having happened.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memview.store import chunks

if TYPE_CHECKING:
    import sqlite_utils

SCHEMA_VERSION = 2
APPLICATION_ID = 0x6D656D76  # "memv": tells our files from other SQLite files


class StoreError(Exception):
    """The database cannot be used; the message says why and what to do."""


def default_db_path() -> Path:
    """``$MEMVIEW_DB``, else the platform's user data directory (XDG on Linux)."""
    env = os.environ.get("MEMVIEW_DB")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("memview", appauthor=False)) / "memview.db"


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with the settings every memview connection needs."""
    conn = sqlite3.connect(str(path), timeout=15, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 15000")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION through sqlite-utils' recorded migrations."""
    import sqlite_utils
    from sqlite_utils.migrations import Migrations

    migrations = Migrations("memview")

    @migrations(name="0001_initial")
    def initial(db: sqlite_utils.Database) -> None:
        # a file from a memview that predates the migrations table has these tables already:
        # they are adopted (missing columns added), never dropped or rebuilt
        _table(
            db,
            "sessions",
            {
                "id": int,
                "uid": str,
                "kind": str,
                "name": str,
                "command": str,
                "target": str,
                "pid": int,
                "cwd": str,
                "started_at": float,
                "ended_at": float,
                "wall_s": float,
                "status": str,
                "exit_code": int,
                "signal": int,
                "interval_s": float,
                "samples": int,
                "peak_rss_bytes": int,
                "peak_source": str,
                "avg_rss_bytes": int,
                "final_rss_bytes": int,
                "meta": str,
                "tags": str,
                "notes": str,
                "writer_pid": int,
                "writer_host": str,
                "summary": str,
            },
            pk="id",
        )
        db.table("sessions").create_index(["uid"], unique=True, if_not_exists=True)
        _table(
            db,
            "samples",
            {
                "session_id": int,
                "series": str,
                "seq": int,
                "n": int,
                "t_first": float,
                "t_last": float,
                "vmax": int,
                "t": bytes,
                "v": bytes,
            },
            pk=("session_id", "series", "seq"),
            foreign_keys=[("session_id", "sessions", "id")],
        )
        _table(
            db,
            "series",
            {"session_id": int, "name": str, "unit": str, "label": str},
            pk=("session_id", "name"),
            foreign_keys=[("session_id", "sessions", "id")],
        )
        _table(
            db,
            "processes",
            {
                "id": int,
                "session_id": int,
                "pid": int,
                "ppid": int,
                "name": str,
                "cmdline": str,
                "create_time": float,
                "first_s": float,
                "last_s": float,
                "peak_rss_bytes": int,
                "peak_source": str,
                "exit_code": int,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db.table("processes").create_index(["session_id", "pid", "create_time"], unique=True, if_not_exists=True)
        _table(
            db,
            "phases",
            {
                "id": int,
                "session_id": int,
                "seq": int,
                "name": str,
                "depth": int,
                "start_s": float,
                "end_s": float,
                "start_rss_bytes": int,
                "end_rss_bytes": int,
                "peak_rss_bytes": int,
                "peak_source": str,
                "growth_bytes": int,
                "flags": str,
                "data": str,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db.table("phases").create_index(["session_id", "seq"], unique=True, if_not_exists=True)
        _table(
            db,
            "events",
            {
                "id": int,
                "session_id": int,
                "t_s": float,
                "kind": str,
                "level": str,
                "message": str,
                "data": str,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db.table("events").create_index(["session_id", "t_s"], if_not_exists=True)
        _table(
            db,
            "captures",
            {
                "id": int,
                "session_id": int,
                "seq": int,
                "tool": str,
                "pid": int,
                "trigger": str,
                "started_s": float,
                "ended_s": float,
                "path": str,
                "size_bytes": int,
                "exit_status": int,
                "status": str,
                "stderr_tail": str,
                "data": str,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db.table("captures").create_index(["session_id", "seq"], unique=True, if_not_exists=True)

    @migrations(name="0002_chunk_bounds")
    def chunk_bounds(db: sqlite_utils.Database) -> None:
        # each chunk's lowest value and sum beside its highest, and an index holding every bound, so
        # a time window at N pixels is answered from the index alone (chunks.window); the chunks of a
        # file written before are decoded once here, and their times made the decoded ones
        _table(db, "samples", {"vmin": int, "vsum": float})
        chunks.fill_bounds(db.conn)
        chunks.create_bounds_index(db.conn)

    db = sqlite_utils.Database(conn)
    migrations.apply(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _table(db: sqlite_utils.Database, name: str, columns: dict[str, Any], **kw: Any) -> None:
    """Create ``name``, or add the columns an older file's table lacks (its rows and extra columns kept)."""
    table = db.table(name)
    if not table.exists():
        table.create(columns, **kw)
        return
    have = {c.lower() for c in table.columns_dict}
    for col, col_type in columns.items():
        if col.lower() not in have:
            table.add_column(col, col_type)


def _create_or_migrate(conn: sqlite3.Connection) -> None:
    """Switch to WAL and migrate once, even when several memviews open a new file at the same moment.

    Changing the journal mode does not wait on the busy handler, so it is retried here; the migration
    runs under BEGIN IMMEDIATE and re-reads the version, so the second opener finds the work done.
    """
    deadline = time.monotonic() + 15
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            _migrate(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def prepare(path: Path) -> None:
    """Create or check the file: ours and current, or a clear StoreError; never overwrite."""
    existed = path.exists() and path.stat().st_size > 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot create the database folder {path.parent}: {exc.strerror}") from exc
    if not existed:
        try:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot write the database {path}: {exc.strerror}") from exc
    try:
        conn = connect(path)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != APPLICATION_ID and tables:
                raise StoreError(f"{path} is an SQLite database of another program; memview leaves it untouched")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} was written by a newer memview (schema {version} > {SCHEMA_VERSION}); upgrade memview"
                )
            if version < SCHEMA_VERSION or not tables:
                _create_or_migrate(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise StoreError(f"{path} is not a readable SQLite database ({exc}); memview leaves it untouched") from exc
        hint = ""
        try:
            import shutil

            if shutil.disk_usage(path.parent).free < 1 << 20:
                hint = " — the disk is full"
        except OSError:
            pass
        raise StoreError(f"cannot open the database {path}: {exc}{hint}") from exc
