"""The reading side of the store: sessions, their series and records, edits, import and delete.

Each thread that calls a query gets its own connection (sqlite3 connections are bound to their
thread); writes during recording go through :class:`~memview.store.writer.StoreWriter` instead.
WAL mode lets two memview processes share a file. A session whose writer died without closing
it is marked ``interrupted`` the next time the store is opened, with what it had written kept.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from memview import codec
from memview.collectors import procfs
from memview.store import chunks
from memview.store.importing import IMPORT_TABLES, insert_arrays, insert_row, insert_samples
from memview.store.rows import clean_text, json_field, read_row
from memview.store.schema import StoreError, connect, default_db_path, prepare
from memview.store.stale import remove_stale_imports


class Store:
    """Opens (creating or migrating) a memview database and answers queries about it.

    Each thread that calls a query gets its own connection; writes during recording go through
    :class:`StoreWriter` instead.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        prepare(self.path)
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
        row.update({k: json_field(v) for k, v in fields.items()})
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            cur = self.conn.execute(f"INSERT INTO sessions ({cols}) VALUES ({marks})", list(row.values()))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to {self.path}: {exc}") from exc
        return int(cur.lastrowid or 0)  # an INSERT always sets it

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
        rows = self.conn.execute("SELECT id, writer_pid, writer_host FROM sessions WHERE status = 'running'").fetchall()
        dead = [r["id"] for r in rows if r["writer_host"] == host and not procfs.alive(r["writer_pid"] or 0)]
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
            self.conn.execute(
                "UPDATE sessions SET status = 'incomplete', notes = ? WHERE id = ?",
                (clean_text(f"not everything was saved: {reason}")[:500], sid),
            )
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
        return [read_row(r) for r in self.conn.execute(sql, args)]

    def session(self, sid: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (sid,)).fetchone()
        if row is None:
            raise StoreError(f"no session {sid} in {self.path}")
        return read_row(row)

    def series_names(self, sid: int) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT series FROM samples WHERE session_id = ? ORDER BY series", (sid,)
            )
        ]

    def series_units(self, sid: int) -> dict[str, dict[str, str]]:
        return {
            r["name"]: {"unit": r["unit"], "label": r["label"]}
            for r in self.conn.execute("SELECT name, unit, label FROM series WHERE session_id = ?", (sid,))
        }

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

    def window(
        self, sid: int, series: str, x0: float, x1: float, pixels: int, whole_chunks: bool = False
    ) -> chunks.Window:
        """Per pixel column the lowest and highest sample of [x0, x1], or the samples when few
        (see :func:`memview.store.chunks.window`): reads only the chunks of that range."""
        return chunks.window(self.conn, sid, series, x0, x1, pixels, whole_chunks=whole_chunks)

    def series_figures(self, sid: int, series: str) -> dict[str, Any] | None:
        """Count, sum, peak (and its time), last value (and its time) of one series, without reading it."""
        return chunks.figures(self.conn, sid, series)

    def series_stats(self, sid: int) -> dict[str, dict[str, Any]]:
        """Per series: sample count, peak and last value (and its time), from chunk headers + last chunk."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.conn.execute(
            "SELECT series, sum(n) AS n, max(vmax) AS peak, max(seq) AS last_seq FROM samples "
            "WHERE session_id = ? GROUP BY series ORDER BY series",
            (sid,),
        ):
            last = self.conn.execute(
                "SELECT t, v FROM samples WHERE session_id = ? AND series = ? AND seq = ?",
                (sid, r["series"], r["last_seq"]),
            ).fetchone()
            times, values = codec.decode(last[0], last[1])
            out[r["series"]] = {"samples": r["n"], "peak": r["peak"], "last": values[-1], "last_s": times[-1]}
        return out

    def processes(self, sid: int) -> list[dict[str, Any]]:
        return self._records("processes", sid, "first_s, pid")

    def phases(self, sid: int) -> list[dict[str, Any]]:
        return self._records("phases", sid, "seq")

    def events(self, sid: int) -> list[dict[str, Any]]:
        return self._records("events", sid, "t_s, id")

    def captures(self, sid: int) -> list[dict[str, Any]]:
        return self._records("captures", sid, "started_s, id")

    def _records(self, table: str, sid: int, order: str) -> list[dict[str, Any]]:
        """One session's rows of ``table`` (a name from the methods above, never from input)."""
        return [
            read_row(r)
            for r in self.conn.execute(f"SELECT * FROM {table} WHERE session_id = ? ORDER BY {order}", (sid,))
        ]

    # -- edits -----------------------------------------------------------------------------
    def update_session(self, sid: int, **fields: Any) -> None:
        """Rename, tag, note: only the columns a user may edit."""
        allowed = {"name", "tags", "notes"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot edit {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.session(sid)
        self.conn.execute(f"UPDATE sessions SET {sets} WHERE id = ?", [json_field(v) for v in fields.values()] + [sid])

    # -- a whole session at once (memview.bundle import) --------------------------------------
    def session_id_by_uid(self, uid: str) -> int | None:
        """The id of the session with this uid, or None (a bundle is imported once)."""
        row = self.conn.execute("SELECT id FROM sessions WHERE uid = ?", (uid,)).fetchone()
        return None if row is None else int(row[0])

    def import_session(
        self,
        session: dict[str, Any],
        samples: Iterable[tuple[str, float, int]],
        rows: Callable[[int], Iterable[tuple[str, dict[str, Any]]]],
    ) -> int:
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
            sid = insert_row(conn, "sessions", session)
            insert_samples(conn, sid, samples)
            for table, row in rows(sid):
                if table not in IMPORT_TABLES:
                    raise ValueError(f"not a session table: {table}")
                insert_row(conn, table, {"session_id": sid, **row})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return sid

    def append_arrays(self, sid: int, series: str, times: Any, values: Any, per_chunk: int = 250) -> None:
        """Append numpy columns (seconds, integers) to a series in one transaction, in chunks of
        ``per_chunk`` (250: what the recorder writes at 1 kHz): millions of samples without a Python
        object each (the benchmarks' synthetic day)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute(
                "SELECT max(seq) FROM samples WHERE session_id = ? AND series = ?", (sid, series)
            ).fetchone()[0]
            insert_arrays(conn, sid, series, times, values, 0 if last is None else last + 1, per_chunk)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def delete_session(self, sid: int) -> None:
        self.session(sid)
        self.conn.execute("BEGIN")
        for table in ("samples", "series", "processes", "phases", "events", "captures"):
            self.conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
        self.conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        self.conn.execute("COMMIT")
