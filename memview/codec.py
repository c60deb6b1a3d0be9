"""Packing of sample columns into compact blobs: delta-encoded int64, then zlib.

A session at 1 kHz for a day is 86 million samples; one SQLite row per sample would cost
~40 bytes each and make loading a session for display slow. A chunk of a few hundred samples
packs to a few bytes per sample and unpacks with C-speed ``array`` and ``accumulate``.
Times are stored as integer microseconds since the session start.
"""

from __future__ import annotations

import zlib
from array import array
from itertools import accumulate
from operator import sub
from typing import Any

_LEVEL = 1  # fast; deltas of regular samples compress well even at the lowest level


def _pack(ints: list[int]) -> bytes:
    deltas = array("q", ints[:1])
    deltas.extend(map(sub, ints[1:], ints))  # C-level loop: the writer packs every sample of a tree
    return zlib.compress(deltas.tobytes(), _LEVEL)


def _unpack(blob: bytes) -> list[int]:
    deltas = array("q")
    deltas.frombytes(zlib.decompress(blob))
    return list(accumulate(deltas))


def encode_times(times: list[float]) -> bytes:
    """Pack one column of times (seconds since the session start) as integer microseconds.

    Separate from the values so that the series of a tree, sampled at the same instants, share
    one packed time column per batch (the writer packs it once, not once per process)."""
    return _pack([round(t * 1_000_000) for t in times])


def encode_values(values: list[int]) -> bytes:
    """Pack one column of integer values."""
    return _pack(list(map(int, values)))


def encode(times: list[float], values: list[int]) -> tuple[bytes, bytes]:
    """Pack equal-length columns; times are seconds since the session start."""
    if len(times) != len(values):
        raise ValueError("times and values differ in length")
    return encode_times(times), encode_values(values)


def decode(t_blob: bytes, v_blob: bytes) -> tuple[list[float], list[int]]:
    """Inverse of :func:`encode`."""
    return [us / 1_000_000 for us in _unpack(t_blob)], _unpack(v_blob)


def stored_time(t: float) -> float:
    """``t`` as :func:`decode` gives it back (whole microseconds): what a chunk's bounds record."""
    return round(t * 1_000_000) / 1_000_000


def decode_arrays(t_blob: bytes, v_blob: bytes) -> tuple[Any, Any]:
    """:func:`decode` into numpy columns (float64 seconds, int64 values), for the window query:
    a C-level cumulative sum instead of a list of Python ints per sample."""
    import numpy as np

    t = np.frombuffer(zlib.decompress(t_blob), dtype=np.int64).cumsum() / 1_000_000
    return t, np.frombuffer(zlib.decompress(v_blob), dtype=np.int64).cumsum()


def encode_arrays(times: Any, values: Any) -> tuple[bytes, bytes]:
    """:func:`encode` of numpy columns (seconds, integers), byte for byte: for writing millions of
    samples at once (a synthetic day for the benchmarks) without a Python object per sample."""
    import numpy as np

    us = np.rint(np.asarray(times, dtype=np.float64) * 1_000_000).astype(np.int64)
    ints = np.asarray(values).astype(np.int64)
    return (
        zlib.compress(np.diff(us, prepend=0).tobytes(), _LEVEL),
        zlib.compress(np.diff(ints, prepend=0).tobytes(), _LEVEL),
    )
