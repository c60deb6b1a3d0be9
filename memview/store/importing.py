"""Writing a whole session at once (a bundle's import): rows checked by name, samples packed in chunks.

Why apart from the writer thread: an import is one transaction on the caller's connection, read
lazily from the bundle with a bounded buffer, and rolled back whole if any record fails its check.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from memview import codec
from memview.store import chunks

#: the tables :meth:`Store.import_session` fills from ``rows`` (the names go into SQL: never from input)
IMPORT_TABLES = frozenset({"series", "processes", "phases", "events", "captures"})
#: samples per stored blob on import, as the recorder writes them
IMPORT_ROWS_PER_BLOB = 4096
#: samples buffered across all series before they are packed and written (bounds import memory)
_IMPORT_BUFFERED = 1 << 18


def insert_row(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    """Insert ``row`` (column names from memview's own checked schema; lists and dicts as JSON)."""
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    values = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in row.values()]
    cur = conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", values)
    return int(cur.lastrowid or 0)  # an INSERT always sets it


def insert_samples(conn: sqlite3.Connection, sid: int, samples: Iterable[tuple[str, float, int]]) -> None:
    """Pack ``(series, t_s, value)`` records into chunks as they stream, holding at most _IMPORT_BUFFERED."""
    bufs: dict[str, tuple[list[float], list[int]]] = {}
    seqs: dict[str, int] = {}
    held = 0

    def flush(name: str) -> None:
        t, v = bufs.pop(name)
        seq = seqs.get(name, -1) + 1
        seqs[name] = seq
        t_blob, v_blob = codec.encode(t, v)
        conn.execute(chunks.INSERT, chunks.chunk_row(sid, name, seq, t, v, t_blob, v_blob))

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
