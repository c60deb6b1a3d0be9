"""Sample chunks: their bounds, and the time-window query that reads only the chunks it needs.

A series is stored as codec-packed chunks, one row per (session, series, seq), each with its
bounds beside the blobs: sample count, first and last time, lowest, highest and summed value. A
day at 1 kHz is 86 million samples (1.4 GB as float64 columns) in ~350k chunks; reading it whole
to draw 1,400 pixels is what made memview reach 2 GiB. :func:`window` answers "this time range at
N pixels" with the exact lowest and highest sample of every pixel column: a chunk lying inside
one column counts through its bounds, read from an index holding them (no blob is read), and
only the chunks cut by a column edge (at most one per edge) are decoded. A one-sample spike is
the highest value of its chunk, so it is drawn at every zoom. When the range holds few samples
(zoomed in), they are returned as they are.

The bounds' times are the decoded ones (microseconds, as the codec stores them), so a chunk
falls into the same column through its bounds as through its samples.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memview import codec

if TYPE_CHECKING:
    import numpy as np

#: codec deltas must fit int64 too, so a stored sample value lies in [0, VALUE_MAX] or its negation
VALUE_MAX = 2**62 - 1

INSERT = (
    "INSERT INTO samples (session_id, series, seq, n, t_first, t_last, vmin, vmax, vsum, t, v) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: the index that answers a window from the bounds alone (created by migration 0002)
BOUNDS_INDEX = "samples_bounds"


def chunk_row(
    sid: int, series: str, seq: int, times: Sequence[float], values: Sequence[int], t_blob: bytes, v_blob: bytes
) -> tuple[Any, ...]:
    """The row :data:`INSERT` takes for one packed chunk (``times``/``values`` non-empty)."""
    return (
        sid,
        series,
        seq,
        len(times),
        codec.stored_time(times[0]),
        codec.stored_time(times[-1]),
        int(min(values)),
        int(max(values)),
        float(sum(map(int, values))),
        t_blob,
        v_blob,
    )


def create_bounds_index(conn: sqlite3.Connection) -> None:
    """Every bound in one index: counts, sums and extremes of a range come from it, never from the
    table's pages (which hold the blobs)."""
    conn.execute(
        f"CREATE INDEX IF NOT EXISTS {BOUNDS_INDEX} ON samples "
        "(session_id, series, t_first, t_last, vmin, vmax, n, vsum)"
    )


def fill_bounds(conn: sqlite3.Connection) -> int:
    """Give the chunks of an older file their lowest value and sum, and decoded-exact times; a
    thousand chunks at a time, so a day-long file's blobs are never all in memory."""
    done, after = 0, -1
    while True:
        rows = conn.execute(
            "SELECT rowid, t, v FROM samples WHERE rowid > ? AND vmin IS NULL ORDER BY rowid LIMIT 1000", (after,)
        ).fetchall()
        if not rows:
            return done
        for rowid, t_blob, v_blob in rows:
            t, v = codec.decode_arrays(t_blob, v_blob)
            if len(t):
                conn.execute(
                    "UPDATE samples SET t_first = ?, t_last = ?, vmin = ?, vmax = ?, vsum = ? WHERE rowid = ?",
                    (float(t[0]), float(t[-1]), int(v.min()), int(v.max()), float(v.sum()), rowid),
                )
        done += len(rows)
        after = rows[-1][0]


@dataclass(slots=True)
class Window:
    """What :func:`window` found: per pixel column (or per sample when ``raw``) a time, lowest and
    highest value; columns without samples are left out (a gap stays a gap)."""

    t: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    raw: bool


def _np() -> Any:
    import numpy  # here, not at the top: the CLI and the recorder import the store and never need it

    return numpy


def _empty(raw: bool = True) -> Window:
    np = _np()
    e = np.empty(0, dtype=np.float64)
    return Window(e, e, e, raw)


def extent(conn: sqlite3.Connection, sid: int, series: str) -> tuple[float, float] | None:
    """(first, last) sample time of a series, from the index; None when it has no samples."""
    first = conn.execute(
        "SELECT min(t_first) FROM samples WHERE session_id = ? AND series = ?", (sid, series)
    ).fetchone()[0]
    if first is None:
        return None
    last = conn.execute(
        "SELECT t_last FROM samples WHERE session_id = ? AND series = ? ORDER BY t_first DESC LIMIT 1", (sid, series)
    ).fetchone()[0]
    return float(first), float(last)


def window(
    conn: sqlite3.Connection,
    sid: int,
    series: str,
    x0: float,
    x1: float,
    pixels: int,
    raw_limit: int | None = None,
    whole_chunks: bool = False,
) -> Window:
    """Samples of ``series`` in [x0, x1] for ``pixels`` columns: the exact lowest and highest value
    of each column (column k holds x0 + k·dx <= t < x0 + (k+1)·dx, the last one also t = x1), or
    the samples themselves (with one neighbour each side, so the line enters the view) when the
    chunks overlapping the range hold at most ``raw_limit`` (default 4 x pixels). Infinite ends
    stand for the series's own first and last sample.

    ``whole_chunks``: each chunk counts whole in the column of its first sample, so no chunk is
    decoded (the extremes are exact per group of chunks, a sample is drawn up to one chunk's span
    early): for an overview, whose columns are far wider than a chunk."""
    np = _np()
    pixels = max(int(pixels), 1)
    raw_limit = 4 * pixels if raw_limit is None else raw_limit
    if math.isinf(x0) or math.isinf(x1):
        ext = extent(conn, sid, series)
        if ext is None:
            return _empty()
        x0 = ext[0] if math.isinf(x0) else x0
        x1 = ext[1] if math.isinf(x1) else x1
    if not x1 >= x0:
        return _empty()
    start = conn.execute(
        "SELECT max(t_first) FROM samples WHERE session_id = ? AND series = ? AND t_first <= ?", (sid, series, x0)
    ).fetchone()[0]
    p: dict[str, Any] = {"sid": sid, "series": series, "x0": x0, "x1": x1, "start": x0 if start is None else start}
    overlap = "session_id = :sid AND series = :series AND t_first >= :start AND t_first <= :x1 AND t_last >= :x0"
    n = conn.execute(f"SELECT sum(n) FROM samples WHERE {overlap}", p).fetchone()[0] or 0
    if not n:
        return _empty()
    if n <= raw_limit or x1 == x0:
        # from the chunk before the one holding x0 to the one after x1: the neighbours may lie there
        key = "session_id = :sid AND series = :series"
        p["before"] = conn.execute(f"SELECT max(t_first) FROM samples WHERE {key} AND t_first < :x0", p).fetchone()[0]
        p["after"] = conn.execute(f"SELECT min(t_first) FROM samples WHERE {key} AND t_first > :x1", p).fetchone()[0]
        t, v = _decoded(
            conn,
            f"SELECT t, v FROM samples WHERE {key} AND t_first >= coalesce(:before, :start) "
            "AND t_first <= coalesce(:after, :x1) ORDER BY t_first",
            p,
        )
        i0 = max(int(np.searchsorted(t, x0, side="left")) - 1, 0)
        i1 = min(int(np.searchsorted(t, x1, side="right")) + 1, len(t))
        v = v[i0:i1].astype(np.float64)
        return Window(t[i0:i1], v, v, True)
    dx = (x1 - x0) / pixels
    p.update(dx=dx, last=pixels - 1)

    def col(column: str) -> str:
        return f"min(CAST(({column} - :x0) / :dx AS INTEGER), :last)"

    inside = f"t_first >= :x0 AND t_last <= :x1 AND {col('t_first')} = {col('t_last')}"
    lo = np.full(pixels, np.inf)
    hi = np.full(pixels, -np.inf)
    if whole_chunks:
        inside, p["x0"] = "1", p["start"]  # every overlapping chunk; columns from the first one's start
        dx = p["dx"] = (x1 - p["start"]) / pixels
        x0 = p["start"]
    whole = conn.execute(
        f"SELECT {col('t_first')} AS k, min(vmin), max(vmax) FROM samples WHERE {overlap} AND {inside} GROUP BY k", p
    ).fetchall()
    if whole:
        k, mins, maxs = (np.asarray(c, dtype=np.float64) for c in zip(*whole))
        k = k.astype(np.int64)
        lo[k] = mins
        hi[k] = maxs
    t, v = (
        _decoded(conn, f"SELECT t, v FROM samples WHERE {overlap} AND NOT ({inside}) ORDER BY t_first", p)
        if not whole_chunks
        else (np.empty(0), np.empty(0))
    )
    if len(t):
        keep = (t >= x0) & (t <= x1)
        t, v = t[keep], v[keep].astype(np.float64)
        k = np.minimum(((t - x0) / dx).astype(np.int64), pixels - 1)
        np.minimum.at(lo, k, v)
        np.maximum.at(hi, k, v)
    has = np.isfinite(lo)
    return Window(x0 + np.flatnonzero(has) * dx, lo[has], hi[has], False)


def _decoded(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The chunks ``sql`` selects (t, v blobs), decoded and joined: (times in s, int64 values)."""
    np = _np()
    ts, vs = [], []
    for t_blob, v_blob in conn.execute(sql, params):
        t, v = codec.decode_arrays(t_blob, v_blob)
        ts.append(t)
        vs.append(v)
    if not ts:
        return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int64)
    return np.concatenate(ts), np.concatenate(vs)


def figures(conn: sqlite3.Connection, sid: int, series: str) -> dict[str, Any] | None:
    """Count, sum, peak and its time, last value and its time: from the bounds index, and the two
    chunks holding the (first) peak and the last sample decoded."""
    key = "session_id = ? AND series = ?"
    n, total, peak = conn.execute(
        f"SELECT sum(n), sum(vsum), max(vmax) FROM samples WHERE {key}", (sid, series)
    ).fetchone()
    if n is None:
        return None
    peak_blobs = conn.execute(
        f"SELECT t, v FROM samples WHERE {key} AND vmax = ? ORDER BY t_first LIMIT 1", (sid, series, peak)
    ).fetchone()
    times, values = codec.decode(peak_blobs[0], peak_blobs[1])
    peak_t = times[values.index(peak)]
    last = conn.execute(f"SELECT t, v FROM samples WHERE {key} ORDER BY t_first DESC LIMIT 1", (sid, series)).fetchone()
    times, values = codec.decode(last[0], last[1])
    return {
        "samples": int(n),
        "sum": float(total or 0.0),
        "peak": peak,
        "peak_s": peak_t,
        "last": values[-1],
        "last_s": times[-1],
    }
