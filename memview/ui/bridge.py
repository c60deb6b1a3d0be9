"""The one place where recorder threads meet the Qt thread.

The recorder calls its listeners on the sampler thread (batches, phases), the writer thread
(store errors), the marker reader or capture threads (events, captures) and whichever thread
closes the session (end). None of them may touch a widget, and a signal per sample would flood
the event loop. So the bridge only *accumulates*, under a lock, and the view pulls everything
new with :meth:`RecorderBridge.take` from a QTimer running at most 30 times a second. The one
signal it emits, ``ended``, fires once per session; Qt queues it to the UI thread.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from PySide6 import QtCore

from memview.model import Batch, Capture, Event, Phase

#: The UI's pull rate: at most this many view updates per second.
MAX_FPS = 30


@dataclass(slots=True)
class Update:
    """Everything that arrived since the previous :meth:`RecorderBridge.take`, oldest first."""

    series: dict[str, tuple[list[float], list[int]]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
    store_error: str | None = None
    ended: bool = False

    def __bool__(self) -> bool:
        return bool(self.series or self.events or self.phases or self.captures or self.store_error or self.ended)


class RecorderBridge(QtCore.QObject):
    """A recorder listener (any thread) whose data the UI thread pulls in batches."""

    ended = QtCore.Signal()

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending = Update()

    # -- recorder listener protocol (called on recorder threads; must return at once) ----------
    def on_batch(self, batch: Batch) -> None:
        with self._lock:
            series = self._pending.series
            for name, (times, values) in batch.series.items():
                got = series.get(name)
                if got is None:
                    series[name] = (list(times), list(values))
                else:
                    got[0].extend(times)
                    got[1].extend(values)

    def on_event(self, event: Event) -> None:
        with self._lock:
            self._pending.events.append(event)

    def on_phase(self, phase: Phase) -> None:
        with self._lock:
            self._pending.phases.append(copy.deepcopy(phase))

    def on_capture(self, capture: Capture) -> None:
        # The capture engine mutates the same object when the capture ends: hand on a snapshot.
        with self._lock:
            self._pending.captures.append(copy.deepcopy(capture))

    def on_store_error(self, exc: Exception | None) -> None:
        with self._lock:
            self._pending.store_error = "" if exc is None else str(exc)

    def on_end(self, _recorder: Any) -> None:
        with self._lock:
            self._pending.ended = True
        self.ended.emit()

    # -- the UI side ---------------------------------------------------------------------------
    def take(self) -> Update:
        """Everything new since the last call (UI thread, from the view's timer)."""
        with self._lock:
            update, self._pending = self._pending, Update()
        return update
