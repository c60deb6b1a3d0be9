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

_LEVEL = 1  # fast; deltas of regular samples compress well even at the lowest level


def _pack(ints: list[int]) -> bytes:
    deltas = array("q", [ints[0]] if ints else [])
    if ints:
        deltas.extend(b - a for a, b in zip(ints, ints[1:]))
    return zlib.compress(deltas.tobytes(), _LEVEL)


def _unpack(blob: bytes) -> list[int]:
    deltas = array("q")
    deltas.frombytes(zlib.decompress(blob))
    return list(accumulate(deltas))


def encode(times: list[float], values: list[int]) -> tuple[bytes, bytes]:
    """Pack equal-length columns; times are seconds since the session start."""
    if len(times) != len(values):
        raise ValueError("times and values differ in length")
    return _pack([round(t * 1_000_000) for t in times]), _pack([int(v) for v in values])


def decode(t_blob: bytes, v_blob: bytes) -> tuple[list[float], list[int]]:
    """Inverse of :func:`encode`."""
    return [us / 1_000_000 for us in _unpack(t_blob)], _unpack(v_blob)
