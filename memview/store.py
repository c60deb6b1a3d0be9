"""The SQLite store: schema and migrations, the batched writer thread, and the queries.

One file holds every session. The writer thread owns the only write connection (created in
that thread: sqlite3 connections are bound to their thread) and commits whatever has queued up
at least twice a second, in one transaction, so a crash of memview loses well under a second of
samples. Readers open their own connections; WAL mode lets two memview processes share a file.
A session whose writer died without closing it is marked ``interrupted`` the next time the
store is opened, with what it had written kept.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from memview import codec
from memview.model import Batch

SCHEMA_VERSION = 1
APPLICATION_ID = 0x6D656D76  # "memv": tells our files from other SQLite files
INT64_MAX = 2**63 - 1
#: codec deltas must fit int64 too, so a stored sample value lies in [0, VALUE_MAX] or its negation
VALUE_MAX = 2**62 - 1

_MISSING = object()
log = logging.getLogger(__name__)


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
            db, "sessions",
            {
                "id": int, "uid": str, "kind": str, "name": str, "command": str, "target": str,
                "pid": int, "cwd": str, "started_at": float, "ended_at": float, "wall_s": float,
                "status": str, "exit_code": int, "signal": int, "interval_s": float,
                "samples": int, "peak_rss_bytes": int, "peak_source": str, "avg_rss_bytes": int,
                "final_rss_bytes": int, "meta": str, "tags": str, "notes": str,
                "writer_pid": int, "writer_host": str, "summary": str,
            },
            pk="id",
        )
        db["sessions"].create_index(["uid"], unique=True, if_not_exists=True)
        _table(
            db, "samples",
            {
                "session_id": int, "series": str, "seq": int, "n": int, "t_first": float,
                "t_last": float, "vmax": int, "t": bytes, "v": bytes,
            },
            pk=("session_id", "series", "seq"),
            foreign_keys=[("session_id", "sessions", "id")],
        )
        _table(
            db, "series",
            {"session_id": int, "name": str, "unit": str, "label": str},
            pk=("session_id", "name"),
            foreign_keys=[("session_id", "sessions", "id")],
        )
        _table(
            db, "processes",
            {
                "id": int, "session_id": int, "pid": int, "ppid": int, "name": str,
                "cmdline": str, "create_time": float, "first_s": float, "last_s": float,
                "peak_rss_bytes": int, "peak_source": str, "exit_code": int,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db["processes"].create_index(["session_id", "pid", "create_time"], unique=True, if_not_exists=True)
        _table(
            db, "phases",
            {
                "id": int, "session_id": int, "seq": int, "name": str, "depth": int,
                "start_s": float, "end_s": float, "start_rss_bytes": int, "end_rss_bytes": int,
                "peak_rss_bytes": int, "peak_source": str, "growth_bytes": int, "flags": str,
                "data": str,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db["phases"].create_index(["session_id", "seq"], unique=True, if_not_exists=True)
        _table(
            db, "events",
            {
                "id": int, "session_id": int, "t_s": float, "kind": str, "level": str,
                "message": str, "data": str,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db["events"].create_index(["session_id", "t_s"], if_not_exists=True)
        _table(
            db, "captures",
            {
                "id": int, "session_id": int, "seq": int, "tool": str, "pid": int, "trigger": str,
                "started_s": float, "ended_s": float, "path": str, "size_bytes": int,
                "exit_status": int, "status": str, "stderr_tail": str, "data": str,
            },
            pk="id",
            foreign_keys=[("session_id", "sessions", "id")],
        )
        db["captures"].create_index(["session_id", "seq"], unique=True, if_not_exists=True)

    db = sqlite_utils.Database(conn)
    migrations.apply(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _table(db: Any, name: str, columns: dict[str, type], **kw: Any) -> None:
    """Create ``name``, or add the columns an older file's table lacks (its rows and extra columns kept)."""
    table = db[name]
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


def _prepare(path: Path) -> None:
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


def remove_stale_imports(folder: Path) -> list[Path]:
    """Remove the temporary folders of bundle imports whose process is gone (killed mid-import).

    An import unpacks into ``.memview-import-PID-…`` beside the database and removes it when done;
    a SIGKILL leaves it behind, with up to the bundle's size in it. Only folders of this user whose
    PID is not alive are removed.
    """
    import shutil

    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".memview-import-"):
            continue
        pid_text = entry.name[len(".memview-import-"):].split("-", 1)[0]
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Opens (creating or migrating) a memview database and answers queries about it.

    Each thread that calls a query gets its own connection; writes during recording go through
    :class:`StoreWriter` instead.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        _prepare(self.path)
        self._local = threading.local()
        self.mark_interrupted()
        remove_stale_imports(self.path.parent)

    # -- connections -----------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def artefact_dir(self, session_id: int) -> Path:
        """The folder for one session's capture artefacts, beside the database; not world-readable."""
        base = self.path.with_name(self.path.stem + ".artefacts")
        folder = base / f"session-{session_id}"
        base.mkdir(exist_ok=True, mode=0o700)  # mkdir(parents=True) would give the parent the umask's mode
        folder.mkdir(exist_ok=True, mode=0o700)
        return folder

    # -- session lifecycle (called before and after recording) ------------------------------
    def create_session(self, **fields: Any) -> int:
        """Insert a new ``running`` session owned by this process and return its id."""
        import uuid

        row = {
            "uid": uuid.uuid4().hex,
            "status": "running",
            "writer_pid": os.getpid(),
            "writer_host": socket.gethostname(),
            "tags": "[]",
            "notes": "",
        }
        row.update({k: _json_field(v) for k, v in fields.items()})
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            cur = self.conn.execute(f"INSERT INTO sessions ({cols}) VALUES ({marks})", list(row.values()))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to {self.path}: {exc}") from exc
        return int(cur.lastrowid)

    def check_writable(self) -> None:
        """StoreError unless a session could be written now; run before launching anything.

        Opening a file SQLite cannot write succeeds (it falls back to read-only), and a folder
        that refuses the journal only shows at the first write: both must be known before a
        child is started, not after. The probe row is rolled back, so the file is unchanged.
        """
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO sessions (uid, status) VALUES (?, 'probe')", (f"probe-{os.getpid()}",))
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the database {self.path}: {exc}") from None

    def mark_interrupted(self) -> list[int]:
        """Sessions left ``running`` by a memview process that no longer exists become ``interrupted``."""
        host = socket.gethostname()
        rows = self.conn.execute(
            "SELECT id, writer_pid, writer_host FROM sessions WHERE status = 'running'"
        ).fetchall()
        dead = [r["id"] for r in rows if r["writer_host"] == host and not _pid_alive(r["writer_pid"] or 0)]
        for sid in dead:
            self._finish_from_samples(sid)
        return dead

    def _finish_from_samples(self, sid: int) -> None:
        """Close a session nobody closed: totals from what reached the disk."""
        row = self.conn.execute(
            "SELECT sum(n) AS n, max(vmax) AS peak, max(t_last) AS last FROM samples "
            "WHERE session_id = ? AND series = 'rss'",
            (sid,),
        ).fetchone()
        started = self.conn.execute("SELECT started_at FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
        self.conn.execute(
            "UPDATE sessions SET status = 'interrupted', samples = ?, peak_rss_bytes = ?, "
            "peak_source = 'sampled', wall_s = ?, ended_at = ? WHERE id = ?",
            (
                row["n"] or 0,
                row["peak"],
                row["last"],
                (started or 0) + (row["last"] or 0),
                sid,
            ),
        )

    def mark_incomplete(self, sid: int, reason: str) -> bool:
        """The session's writer stopped before the end: say so in the row (False if even that fails)."""
        try:
            self.conn.execute("UPDATE sessions SET status = 'incomplete', notes = ? WHERE id = ?",
                              (clean_text(f"not everything was saved: {reason}")[:500], sid))
        except sqlite3.Error:
            return False
        return True

    # -- queries ---------------------------------------------------------------------------
    def sessions(self, limit: int | None = None, text: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``text`` filters on name, command/target and tags."""
        sql = "SELECT * FROM sessions"
        args: list[Any] = []
        if text:
            sql += " WHERE name LIKE ? OR target LIKE ? OR tags LIKE ? OR kind LIKE ?"
            args = [f"%{text}%"] * 4
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_row(r) for r in self.conn.execute(sql, args)]

    def session(self, sid: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (sid,)).fetchone()
        if row is None:
            raise StoreError(f"no session {sid} in {self.path}")
        return _row(row)

    def series_names(self, sid: int) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT series FROM samples WHERE session_id = ? ORDER BY series", (sid,))]

    def series_units(self, sid: int) -> dict[str, dict[str, str]]:
        return {r["name"]: {"unit": r["unit"], "label": r["label"]} for r in self.conn.execute(
            "SELECT name, unit, label FROM series WHERE session_id = ?", (sid,))}

    def load_series(self, sid: int, series: str = "rss") -> tuple[list[float], list[int]]:
        """All samples of one series, in time order: (seconds since start, values)."""
        times: list[float] = []
        values: list[int] = []
        for r in self.conn.execute(
            "SELECT t, v FROM samples WHERE session_id = ? AND series = ? ORDER BY seq", (sid, series)
        ):
            t, v = codec.decode(r[0], r[1])
            times.extend(t)
            values.extend(v)
        return times, values

    def series_stats(self, sid: int) -> dict[str, dict[str, Any]]:
        """Per series: sample count, peak and last value (and its time), from chunk headers + last chunk."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.conn.execute(
            "SELECT series, sum(n) AS n, max(vmax) AS peak, max(seq) AS last_seq FROM samples "
            "WHERE session_id = ? GROUP BY series ORDER BY series", (sid,)
        ):
            last = self.conn.execute("SELECT t, v FROM samples WHERE session_id = ? AND series = ? AND seq = ?",
                                     (sid, r["series"], r["last_seq"])).fetchone()
            times, values = codec.decode(last[0], last[1])
            out[r["series"]] = {"samples": r["n"], "peak": r["peak"], "last": values[-1], "last_s": times[-1]}
        return out

    def processes(self, sid: int) -> list[dict[str, Any]]:
        return [_row(r) for r in self.conn.execute(
            "SELECT * FROM processes WHERE session_id = ? ORDER BY first_s, pid", (sid,))]

    def phases(self, sid: int) -> list[dict[str, Any]]:
        return [_row(r) for r in self.conn.execute(
            "SELECT * FROM phases WHERE session_id = ? ORDER BY seq", (sid,))]

    def events(self, sid: int) -> list[dict[str, Any]]:
        return [_row(r) for r in self.conn.execute(
            "SELECT * FROM events WHERE session_id = ? ORDER BY t_s, id", (sid,))]

    def captures(self, sid: int) -> list[dict[str, Any]]:
        return [_row(r) for r in self.conn.execute(
            "SELECT * FROM captures WHERE session_id = ? ORDER BY started_s, id", (sid,))]

    # -- edits -----------------------------------------------------------------------------
    def update_session(self, sid: int, **fields: Any) -> None:
        """Rename, tag, note: only the columns a user may edit."""
        allowed = {"name", "tags", "notes"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot edit {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.session(sid)
        self.conn.execute(f"UPDATE sessions SET {sets} WHERE id = ?",
                          [_json_field(v) for v in fields.values()] + [sid])

    # -- a whole session at once (memview.bundle import) --------------------------------------
    def session_id_by_uid(self, uid: str) -> int | None:
        """The id of the session with this uid, or None (a bundle is imported once)."""
        row = self.conn.execute("SELECT id FROM sessions WHERE uid = ?", (uid,)).fetchone()
        return None if row is None else int(row[0])

    def import_session(self, session: dict[str, Any], samples: Iterable[tuple[str, float, int]],
                       rows: Callable[[int], Iterable[tuple[str, dict[str, Any]]]]) -> int:
        """Insert a complete session in one transaction and return its new id.

        ``samples`` yields ``(series, t_s, value)`` in time order per series; they are packed into
        blobs of :data:`IMPORT_ROWS_PER_BLOB` with a bounded buffer. ``rows(sid)`` yields
        ``(table, row)`` for series/processes/phases/events/captures once the id is known. Both are
        read lazily: whatever they raise (a bundle record that fails its check half-way) rolls the
        transaction back, so the database is as it was. Why here: the bundle module runs no SQL.
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            sid = _insert_row(conn, "sessions", session)
            _insert_samples(conn, sid, samples)
            for table, row in rows(sid):
                if table not in _IMPORT_TABLES:
                    raise ValueError(f"not a session table: {table}")
                _insert_row(conn, table, {"session_id": sid, **row})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return sid

    def delete_session(self, sid: int) -> None:
        self.session(sid)
        self.conn.execute("BEGIN")
        for table in ("samples", "series", "processes", "phases", "events", "captures"):
            self.conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
        self.conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        self.conn.execute("COMMIT")


#: the tables :meth:`Store.import_session` fills from ``rows`` (the names go into SQL: never from input)
_IMPORT_TABLES = frozenset({"series", "processes", "phases", "events", "captures"})
#: samples per stored blob on import, as the recorder writes them
IMPORT_ROWS_PER_BLOB = 4096
#: samples buffered across all series before they are packed and written (bounds import memory)
_IMPORT_BUFFERED = 1 << 18


def _insert_row(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    """Insert ``row`` (column names from memview's own checked schema; lists and dicts as JSON)."""
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in row.values()]
    cur = conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", values)
    return int(cur.lastrowid)


def _insert_samples(conn: sqlite3.Connection, sid: int, samples: Iterable[tuple[str, float, int]]) -> None:
    bufs: dict[str, tuple[list[float], list[int]]] = {}
    seqs: dict[str, int] = {}
    held = 0

    def flush(name: str) -> None:
        t, v = bufs.pop(name)
        seq = seqs.get(name, -1) + 1
        seqs[name] = seq
        t_blob, v_blob = codec.encode(t, v)
        conn.execute("INSERT INTO samples (session_id, series, seq, n, t_first, t_last, vmax, t, v) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (sid, name, seq, len(t), t[0], t[-1], max(v), t_blob, v_blob))

    for name, t, value in samples:
        buf = bufs.get(name)
        if buf is None:
            buf = bufs[name] = ([], [])
        buf[0].append(t)
        buf[1].append(value)
        held += 1
        if len(buf[0]) >= IMPORT_ROWS_PER_BLOB:
            held -= len(buf[0])
            flush(name)
        elif held >= _IMPORT_BUFFERED:
            for other in list(bufs):
                flush(other)
            held = 0
    for name in list(bufs):
        flush(name)


def clean_text(text: str) -> str:
    """``text`` as SQLite can bind it: a lone surrogate (``"\\ud800"``) becomes its ``\\ud800`` escape.

    Names come from other programs (marker lines, JSON keys); one that is not valid UTF-8 must
    not stop the writer, and its escaped form still tells the user what was sent.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def clean_value(value: Any) -> Any:
    """One column value made bindable: texts cleaned, integers beyond int64 kept as their text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def _json_field(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        # default=str: a value JSON cannot hold (bytes, a set) becomes its text rather than an error;
        # allow_nan=False keeps the column valid JSON for every reader (NaN/Infinity -> null)
        try:
            text = json.dumps(value, default=str, allow_nan=False)
        except ValueError:
            text = json.dumps(_finite(value), default=str)
        return clean_text(text)
    return clean_value(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


_JSON_COLUMNS = {"command", "meta", "tags", "summary", "cmdline", "flags", "data"}


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in _JSON_COLUMNS & out.keys():
        if isinstance(out[key], str) and out[key]:
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    return out


Task = Callable[[sqlite3.Connection], None]


#: the writer connection's page cache (KiB); see StoreWriter._loop
WRITER_CACHE_KIB = 256

#: SQLite errors that say "try again later" (disk full, locked, I/O): the whole batch waits in memory
#: and is retried. Any other error belongs to one task's values and drops that task alone.
_TRANSIENT = (sqlite3.OperationalError,)

#: Series named so belong to one process of a tree (``model.proc_series``):
#: the writer holds them and writes them every HOLD_EVERY_S seconds (see StoreWriter.write_batch).
HELD_PREFIXES = ("pid:", "hwm:")
HOLD_EVERY_S = 2.0
#: ... or sooner once one of them holds this many samples (at 1 kHz: every ~0.5 s), so what the
#: writer holds stays small whatever the rate
HOLD_MAX_SAMPLES = 512


class StoreWriter(threading.Thread):
    """The one thread that writes a session's data; takes tasks from a queue, commits in batches.

    If a commit fails (disk full, database locked for too long) the tasks stay in memory and are
    retried; ``on_error`` is told once per failure streak so the user learns of it, and nothing
    already committed is touched.

    One odd value never stops it: each task runs inside its own savepoint, and a task that fails
    for its own data (an integer beyond int64, a name SQLite cannot bind) is rolled back alone,
    counted in :attr:`dropped` and named in one ``store`` event row per kind of failure. If the
    thread dies anyway, :attr:`dead` is set, later submissions are discarded (nothing piles up in
    memory) and ``on_error`` gets the exception: the recorder marks the session ``incomplete``.
    """

    def __init__(self, path: Path, session_id: int, on_error: Callable[[Exception | None], None] | None = None,
                 commit_every: float = 0.5, hold_every: float = HOLD_EVERY_S) -> None:
        super().__init__(name=f"memview-writer-{session_id}", daemon=True)
        self.path = path
        self.session_id = session_id
        self._queue: queue.Queue[Task | None] = queue.Queue()
        self._on_error = on_error
        self._commit_every = commit_every
        self._seq: dict[str, int] = {}
        self._pending: list[Task] = []
        self._failing = False
        self.error: Exception | None = None
        self.dead = False
        self.dropped = 0  # tasks refused for their own values
        self.clamped = 0  # sample values outside what the codec holds, left out
        self._reported: set[str] = set()
        self.hold_every = hold_every
        self._held: dict[str, tuple[list[float], list[int]]] = {}
        self._held_since: float | None = None
        self._held_lock = threading.Lock()

    # -- what producers call (any thread) ---------------------------------------------------
    def submit(self, task: Task) -> None:
        if not self.dead:
            self._queue.put(task)

    def write_batch(self, batch: Batch) -> None:
        """Queue a batch: the tree's total at once, each process's own series every ``hold_every`` s.

        The total (and the envelope, and every series that is not one process's) is what the
        "at most half a second lost" promise is about, so it goes to the queue with every batch.
        A tree's per-process series (``pid:N``, ``hwm:N``) are collected here and written together
        every ``hold_every`` seconds (sooner once one holds HOLD_MAX_SAMPLES): one chunk row per
        process every 2 s instead of every 0.25 s cuts the writer's per-series cost (a row, two
        zlib calls) by 8 for a 50-process tree.
        A crash loses at most ``hold_every`` seconds of them, never any of the total; a close
        writes them all.
        """
        now_series: dict[str, tuple[list[float], list[int]]] = {}
        longest = 0
        with self._held_lock:
            held = self._held
            for name, (times, values) in batch.series.items():
                if isinstance(name, str) and name.startswith(HELD_PREFIXES):
                    cols = held.get(name)
                    if cols is None:
                        cols = held[name] = (list(times), list(values))  # a copy: the batch is shared
                    else:
                        cols[0].extend(times)
                        cols[1].extend(values)
                    longest = max(longest, len(cols[0]))
                else:
                    now_series[name] = (times, values)
            if held:
                if self._held_since is None:
                    self._held_since = time.monotonic()
                if (longest >= HOLD_MAX_SAMPLES
                        or time.monotonic() - self._held_since >= self.hold_every):
                    now_series.update(self._take_held())
        if now_series:
            whole = Batch(batch.session_id, now_series)
            self.submit(lambda conn: self._insert_batch(conn, whole))

    def _take_held(self) -> dict[str, tuple[list[float], list[int]]]:
        """The held per-process series, and start holding afresh (caller holds ``_held_lock``)."""
        held, self._held, self._held_since = self._held, {}, None
        return held

    def flush_held(self) -> None:
        """Queue the held per-process series now (close does this; a reader that must see them can)."""
        with self._held_lock:
            held = self._take_held()
        if held:
            whole = Batch(self.session_id, held)
            self.submit(lambda conn: self._insert_batch(conn, whole))

    def write_series_units(self, units: dict[str, tuple[str, str]]) -> None:
        sid = self.session_id

        def task(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO series (session_id, name, unit, label) VALUES (?, ?, ?, ?)",
                [(sid, clean_text(str(name)), clean_value(unit), clean_value(label))
                 for name, (unit, label) in units.items()],
            )

        self.submit(task)

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """Queue one row for phases/events/captures/processes (JSON columns encoded here)."""
        row = {"session_id": self.session_id, **{k: _json_field(v) for k, v in row.items()}}
        cols = ", ".join(row)
        sql = f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({', '.join('?' for _ in row)})"
        values = list(row.values())
        self.submit(lambda conn: conn.execute(sql, values))

    def update_session(self, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [_json_field(v) for v in fields.values()] + [self.session_id]
        self.submit(lambda conn: conn.execute(f"UPDATE sessions SET {sets} WHERE id = ?", values))

    def close(self, timeout: float = 30.0) -> bool:
        """Flush everything and stop; True when all data reached the disk."""
        self.flush_held()
        self._queue.put(None)
        self.join(timeout)
        return not self.is_alive() and not self._pending and not self.dead

    # -- the thread ------------------------------------------------------------------------
    def _insert_batch(self, conn: sqlite3.Connection, batch: Batch) -> None:
        rows = []
        last_times: list[float] | None = None
        last_t_blob = b""
        for name, (times, values) in batch.series.items():
            if not times:
                continue
            name = clean_text(str(name))
            try:
                if len(times) != len(values):
                    raise ValueError("times and values differ in length")
                # the series of a tree are sampled at the same instants: pack their times once
                if last_times is None or times != last_times:
                    last_t_blob, last_times = codec.encode_times(times), times
                t_blob, v_blob = last_t_blob, codec.encode_values(values)
                vmax = max(values)
                if not -VALUE_MAX <= vmax <= VALUE_MAX or not -VALUE_MAX <= min(values) <= VALUE_MAX:
                    raise OverflowError
            except (OverflowError, ValueError, TypeError):
                kept = [(t, int(v)) for t, v in zip(times, values)
                        if isinstance(v, (int, float)) and v == v and -VALUE_MAX <= v <= VALUE_MAX]
                self.clamped += len(times) - len(kept)
                self._report(conn, f"values:{name}", f"series {name}: values outside ±2^62 left out",
                             {"series": name})
                if not kept:
                    continue
                times, values = [t for t, _ in kept], [v for _, v in kept]
                t_blob, v_blob = codec.encode(times, values)
                vmax = max(values)
            seq = self._seq.get(name)
            if seq is None:
                got = conn.execute(
                    "SELECT max(seq) FROM samples WHERE session_id = ? AND series = ?",
                    (self.session_id, name)).fetchone()[0]
                seq = -1 if got is None else got
            seq += 1
            self._seq[name] = seq
            rows.append((self.session_id, name, seq, len(times), times[0], times[-1], vmax, t_blob, v_blob))
        conn.executemany(
            "INSERT INTO samples (session_id, series, seq, n, t_first, t_last, vmax, t, v) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _report(self, conn: sqlite3.Connection, key: str, message: str, data: dict[str, Any]) -> None:
        """One ``store`` warning row per kind of refused data (written in the current transaction)."""
        if key in self._reported:
            return
        self._reported.add(key)
        conn.execute(
            "INSERT INTO events (session_id, t_s, kind, level, message, data) VALUES (?, ?, ?, ?, ?, ?)",
            (self.session_id, 0.0, "store", "warning", clean_text(message), _json_field(data)),
        )

    def _drain(self, first: Task | None) -> bool:
        """Collect everything queued; returns False when the close sentinel was seen."""
        running = True
        if first is None:
            running = False
        else:
            self._pending.append(first)
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                return running
            if task is None:
                running = False
            else:
                self._pending.append(task)

    def _run_task(self, conn: sqlite3.Connection, task: Task) -> None:
        """One task in its own savepoint: its own bad values roll back it alone."""
        conn.execute("SAVEPOINT task")
        try:
            task(conn)
        except _TRANSIENT:
            raise
        except Exception as exc:
            conn.execute("ROLLBACK TO task")
            conn.execute("RELEASE task")
            self.dropped += 1
            log.warning("the writer left out one record it cannot store: %r", exc)
            self._report(conn, f"task:{type(exc).__name__}", f"a record could not be stored and was left out "
                         f"({type(exc).__name__}: {clean_text(str(exc))[:200]})", {"error": type(exc).__name__})
            return
        conn.execute("RELEASE task")

    def _commit(self, conn: sqlite3.Connection) -> None:
        if not self._pending:
            return
        seq_before = dict(self._seq)
        reported_before = set(self._reported)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for task in self._pending:
                self._run_task(conn, task)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._seq = seq_before
            self._reported = reported_before
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.error = exc
            if not self._failing and self._on_error:
                self._on_error(exc)
            self._failing = True
            return
        self._pending.clear()
        if self._failing:
            self._failing = False
            self.error = None
            if self._on_error:
                self._on_error(None)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the writer's end must be known, never silent
            log.exception("the database writer stopped")
            self.error = exc if isinstance(exc, Exception) else RuntimeError(f"writer stopped: {exc!r}")
            self.dead = True
            self._pending.clear()
            while True:  # nothing will drain the queue any more: let go of what it holds
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            if self._on_error:
                try:
                    self._on_error(self.error)
                except Exception:
                    log.exception("on_error failed")

    def _loop(self) -> None:
        conn = connect(self.path)
        # The writer only appends, so the pages it touches are the right edge of each B-tree: a small
        # cache serves it as well as SQLite's default 2 MB one, which it otherwise fills at ~7 bytes
        # per sample (measured at 1 kHz) and which is most of memview's memory growth in a session.
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        running = True
        try:
            while running:
                try:
                    first = self._queue.get(timeout=self._commit_every)
                except queue.Empty:
                    first = _MISSING  # type: ignore[assignment]
                if first is _MISSING:
                    self._commit(conn)
                    continue
                running = self._drain(first)
                self._commit(conn)
                if self._failing:
                    time.sleep(1.0 if running else 0.2)
            # closing: a few last tries for what is still pending
            for _ in range(5):
                if not self._pending:
                    break
                time.sleep(0.2)
                self._commit(conn)
        finally:
            conn.close()
