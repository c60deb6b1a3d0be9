"""The writer thread: the one connection that writes a recording, committing in batches.

Why a thread of its own: sampling must never wait on the disk. Producers (the recorder, the
phase tracker, capture tools) queue small tasks; the thread commits whatever has queued up at
least twice a second, in one transaction, so a crash of memview loses well under a second of
samples, and a disk that is full or locked for a while costs memory, not samples.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memview import codec
from memview.model import Batch
from memview.store import chunks
from memview.store.rows import clean_text, clean_value, json_field
from memview.store.schema import connect

log = logging.getLogger(__name__)

#: one unit of work on the writer connection (its result, e.g. a cursor, is ignored)
Task = Callable[[sqlite3.Connection], object]


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

    def __init__(
        self,
        path: Path,
        session_id: int,
        on_error: Callable[[Exception | None], None] | None = None,
        commit_every: float = 0.5,
        hold_every: float = HOLD_EVERY_S,
    ) -> None:
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
                if longest >= HOLD_MAX_SAMPLES or time.monotonic() - self._held_since >= self.hold_every:
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
                [
                    (sid, clean_text(str(name)), clean_value(unit), clean_value(label))
                    for name, (unit, label) in units.items()
                ],
            )

        self.submit(task)

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """Queue one row for phases/events/captures/processes (JSON columns encoded here)."""
        row = {"session_id": self.session_id, **{k: json_field(v) for k, v in row.items()}}
        cols = ", ".join(row)
        sql = f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({', '.join('?' for _ in row)})"
        values = list(row.values())
        self.submit(lambda conn: conn.execute(sql, values))

    def update_session(self, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [json_field(v) for v in fields.values()] + [self.session_id]
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
                if not (-chunks.VALUE_MAX <= min(values) and max(values) <= chunks.VALUE_MAX):
                    raise OverflowError
            except (OverflowError, ValueError, TypeError):
                kept = [
                    (t, int(v))
                    for t, v in zip(times, values)
                    if isinstance(v, (int, float)) and v == v and -chunks.VALUE_MAX <= v <= chunks.VALUE_MAX
                ]
                self.clamped += len(times) - len(kept)
                self._report(conn, f"values:{name}", f"series {name}: values outside ±2^62 left out", {"series": name})
                if not kept:
                    continue
                times, values = [t for t, _ in kept], [v for _, v in kept]
                t_blob, v_blob = codec.encode(times, values)
            seq = self._seq.get(name)
            if seq is None:
                got = conn.execute(
                    "SELECT max(seq) FROM samples WHERE session_id = ? AND series = ?", (self.session_id, name)
                ).fetchone()[0]
                seq = -1 if got is None else got
            seq += 1
            self._seq[name] = seq
            rows.append(chunks.chunk_row(self.session_id, name, seq, times, values, t_blob, v_blob))
        conn.executemany(chunks.INSERT, rows)

    def _report(self, conn: sqlite3.Connection, key: str, message: str, data: dict[str, Any]) -> None:
        """One ``store`` warning row per kind of refused data (written in the current transaction)."""
        if key in self._reported:
            return
        self._reported.add(key)
        conn.execute(
            "INSERT INTO events (session_id, t_s, kind, level, message, data) VALUES (?, ?, ?, ?, ?, ?)",
            (self.session_id, 0.0, "store", "warning", clean_text(message), json_field(data)),
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
            self._report(
                conn,
                f"task:{type(exc).__name__}",
                f"a record could not be stored and was left out ({type(exc).__name__}: {clean_text(str(exc))[:200]})",
                {"error": type(exc).__name__},
            )
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
