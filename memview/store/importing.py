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


def insert_arrays(
    conn: sqlite3.Connection, sid: int, series: str, times: Any, values: Any, first_seq: int, per_chunk: int
) -> int:
    """Append numpy columns as chunks of ``per_chunk`` samples from ``first_seq``; returns the next seq."""
    import numpy as np

    us = np.rint(np.asarray(times, dtype=np.float64) * 1_000_000).astype(np.int64)
    ints = np.asarray(values).astype(np.int64)

    def rows() -> Iterable[tuple[Any, ...]]:
        for seq, k in enumerate(range(0, len(us), per_chunk), first_seq):
            t, v = us[k : k + per_chunk], ints[k : k + per_chunk]
            t_blob, v_blob = codec.encode_arrays(t / 1_000_000, v)
            yield (
                sid,
                series,
                seq,
                len(t),
                float(t[0]) / 1_000_000,
                float(t[-1]) / 1_000_000,
                int(v.min()),
                int(v.max()),
                float(v.sum()),
                t_blob,
                v_blob,
            )

    conn.executemany(chunks.INSERT, rows())
    return first_seq + -(-len(us) // per_chunk)
