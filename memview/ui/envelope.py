"""A long stored series drawn per pixel from the store, so a frame costs the same at 1M or 100M samples.

A day at 1 kHz is 86 million samples: held as float64 columns it is 1.4 GB, and pyqtgraph's
peak downsampling would scan every visible one on each paint. Instead the view holds only an
overview (the exact lowest and highest sample of up to OVERVIEW_COLUMNS groups of whole chunks,
read once on the database thread from the chunks' bounds alone) and asks the store for the visible range at the
plot's width whenever the range changes (:meth:`StoredEnvelope.view`): per pixel column the exact
min and max (a one-sample spike stays drawn), or the samples themselves once zoomed in. The
query runs on a reader thread of its own (never the UI thread); while it runs the plot shows
the best it holds (the last answer if it covers the range, else the overview), and the answer
is drawn when it arrives. Only the newest request of each series is kept, so a drag through the
day queues no backlog. A gap stays a gap: a NaN is inserted at each gap's start.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6 import QtCore

from memview.store import Store, StoreError, Window

log = logging.getLogger(__name__)

#: from this many samples a stored series is read per view, not whole
MIN_SAMPLES = 200_000
#: columns of the overview read when a session opens (finer than any screen is wide)
OVERVIEW_COLUMNS = 4096
#: the reader thread ends after this long without a request (it starts again on the next)
IDLE_S = 10.0

Key = tuple[float, float, int]


def with_gaps(t: np.ndarray, v: np.ndarray, gaps: list[tuple[float, float | None, str]]) -> tuple[Any, Any]:
    """``t, v`` with a NaN sample at each gap's start, so a ``connect="finite"`` curve breaks there."""
    if not gaps or not len(t):
        return t, v
    starts = np.array(sorted(g[0] for g in gaps), dtype=np.float64)
    starts = starts[(starts >= t[0]) & (starts <= t[-1] + 1e9)]
    if not len(starts):
        return t, v
    idx = np.searchsorted(t, starts, side="left")
    return np.insert(t, idx, starts), np.insert(v, idx, np.nan)


def points(window: Window) -> tuple[np.ndarray, np.ndarray]:
    """What a curve draws for a window: the samples, or a (min, max) pair at each column's start."""
    if window.raw:
        return window.t, window.lo
    ys = np.empty(2 * len(window.lo))
    ys[0::2] = window.lo
    ys[1::2] = window.hi
    return np.repeat(window.t, 2), ys


class _Notifier(QtCore.QObject):
    """Carries "an answer arrived" from the reader thread to the UI thread (a queued signal)."""

    ready = QtCore.Signal()


class WindowReader:
    """One session's window queries, on one thread with the store's own connection for it."""

    def __init__(self, store: Store, session_id: int) -> None:
        self.store = store
        self.session_id = session_id
        self._cond = threading.Condition()
        self._wanted: dict[str, tuple[StoredEnvelope, Key]] = {}
        self._thread: threading.Thread | None = None

    def request(self, env: StoredEnvelope, key: Key) -> None:
        """Ask for ``key`` of ``env``'s series; replaces any request of that series not yet started."""
        with self._cond:
            self._wanted[env.name] = (env, key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"memview-window-{self.session_id}", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    if not self._wanted:
                        self._cond.wait(IDLE_S)
                    if not self._wanted:
                        self._thread = None
                        return
                    wanted, self._wanted = self._wanted, {}
                for env, key in wanted.values():
                    try:
                        window = self.store.window(self.session_id, env.name, *key)
                    except (StoreError, sqlite3.Error, OSError) as exc:
                        log.warning("cannot read %s of session %s: %s", env.name, self.session_id, exc)
                        continue
                    env.deliver(key, window)
        finally:
            self.store.close()  # this thread's connection


class StoredEnvelope:
    """A stored series too long to hold: its overview, and the store's answer for the visible range."""

    def __init__(
        self, reader: WindowReader, name: str, overview: Window, gaps: list[tuple[float, float | None, str]]
    ) -> None:
        self.reader = reader
        self.name = name
        self.gaps = gaps
        self.overview = overview
        self.overview_points = with_gaps(*points(overview), gaps)
        self.first = float(overview.t[0]) if len(overview.t) else 0.0
        self.last = float(overview.t[-1]) if len(overview.t) else 0.0
        self._lock = threading.Lock()
        self._answer: tuple[Key, tuple[np.ndarray, np.ndarray], Window] | None = None
        self._asked: Key | None = None
        self._notifier: _Notifier | None = None

    def on_ready(self, callback: Callable[..., Any]) -> None:
        """Call ``callback`` (on the UI thread) whenever an answer arrives; call from the UI thread."""
        if self._notifier is None:
            self._notifier = _Notifier()
        self._notifier.ready.connect(callback)

    def view(self, x0: float, x1: float, pixels: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) to draw [x0, x1] on ``pixels`` columns, now: the store's answer for exactly
        this view when it has arrived, else the best held (and the answer is asked for)."""
        pixels = max(int(pixels), 100)
        if self._whole(x0, x1, pixels):
            return self.overview_points  # the whole session: the overview is finer than the view
        key = (float(x0), float(x1), pixels)
        with self._lock:
            answer = self._answer
            ask = answer is None or answer[0] != key
            if ask and self._asked != key:
                self._asked = key
                self.reader.request(self, key)
        if answer is not None and (answer[0] == key or (answer[0][0] <= x0 and answer[0][1] >= x1)):
            return answer[1]
        return self.overview_points

    def value_at(self, t: float) -> tuple[float, float] | None:
        """What the curve shows at ``t``: (value, value) of the sample at or before it when samples
        are drawn, else (lowest, highest) of the column holding it — a column of a zoomed-out day
        holds thousands of samples, and one of them would mislead. None before the series."""
        with self._lock:
            answer = self._answer
        window = answer[2] if answer is not None and answer[0][0] <= t <= answer[0][1] else self.overview
        i = int(np.searchsorted(window.t, t, side="right")) - 1
        if i < 0:
            return None
        return float(window.lo[i]), float(window.hi[i])

    def _whole(self, x0: float, x1: float, pixels: int) -> bool:
        """The view shows the whole session, and the overview has a column for every pixel."""
        return x0 <= self.first and x1 >= self.last and len(self.overview.t) >= pixels

    def exact(self, x0: float, x1: float, pixels: int) -> bool:
        """Whether :meth:`view` now draws the store's answer for this view (or the whole session)."""
        pixels = max(int(pixels), 100)
        if self._whole(x0, x1, pixels):
            return True
        with self._lock:
            return self._answer is not None and self._answer[0] == (float(x0), float(x1), pixels)

    def deliver(self, key: Key, window: Window) -> None:
        """The reader thread's answer: kept, and the plot told."""
        drawn = with_gaps(*points(window), self.gaps)
        with self._lock:
            self._answer = (key, drawn, window)
            if self._asked == key:
                self._asked = None
        notifier = self._notifier
        if notifier is not None:
            try:
                notifier.ready.emit()
            except RuntimeError:  # the view was closed while the query ran
                pass
