"""Database work off the UI thread: one worker thread, its own Store connection, results by signal.

Why one thread and not a pool: jobs run in the order they were asked for, so "rename, then
refresh the library" can never show the old name, and there is exactly one reader connection
to reason about. Recording does not go through here (each session has its own writer thread),
so a slow query never delays a sample. Callbacks are called on the UI thread, through a queued
signal, with the job's result or a one-line error message.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from memview.store import Store, StoreError

log = logging.getLogger(__name__)

Job = Callable[[Store], Any]


class DbWorker(QtCore.QObject):
    """Runs ``job(store)`` calls in order on its own thread and reports back on the UI thread."""

    opened = QtCore.Signal(object)  # the Store, once the file is open (or None on failure)
    open_failed = QtCore.Signal(str)
    _done = QtCore.Signal(int, object, str)  # job id, result, error ("" if none)

    def __init__(self, path: Path, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.store: Store | None = None
        self.error: str | None = None
        self._queue: queue.Queue[tuple[int, Job] | None] = queue.Queue()
        self._callbacks: dict[int, tuple[Callable[[Any], None] | None, Callable[[str], None] | None]] = {}
        self._ids = itertools.count(1)
        self._done.connect(self._deliver, QtCore.Qt.ConnectionType.QueuedConnection)
        self._thread = threading.Thread(target=self._run, name="memview-db", daemon=True)

    def start(self) -> DbWorker:
        """Open the file and take jobs; call after connecting ``opened``/``open_failed`` (an open
        that finishes before they are connected would otherwise go unheard)."""
        self._thread.start()
        return self

    def submit(
        self, job: Job, on_done: Callable[[Any], None] | None = None, on_error: Callable[[str], None] | None = None
    ) -> int:
        """Queue ``job(store)``; ``on_done(result)`` or ``on_error(message)`` run on the UI thread."""
        job_id = next(self._ids)
        self._callbacks[job_id] = (on_done, on_error)
        self._queue.put((job_id, job))
        return job_id

    def pending(self) -> int:
        return len(self._callbacks)

    def close(self) -> None:
        self._queue.put(None)
        if self._thread.ident is not None:  # started
            self._thread.join(5)

    # -- the worker thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.store = Store(self.path)
        except StoreError as exc:
            self.error = str(exc)
        except Exception as exc:  # an unexpected failure still becomes one clear line
            log.exception("cannot open %s", self.path)
            self.error = f"cannot open the database {self.path}: {exc}"
        if self.error is not None:
            self.open_failed.emit(self.error)
        else:
            self.opened.emit(self.store)
        while True:
            item = self._queue.get()
            if item is None:
                break
            job_id, job = item
            if self.store is None:
                self._done.emit(job_id, None, self.error or "the database is not open")
                continue
            try:
                result = job(self.store)
            except (StoreError, ValueError, OSError) as exc:
                self._done.emit(job_id, None, str(exc))
            except Exception as exc:
                log.exception("database job failed")
                self._done.emit(job_id, None, f"{type(exc).__name__}: {exc}")
            else:
                self._done.emit(job_id, result, "")
        if self.store is not None:
            self.store.close()

    # -- back on the UI thread ---------------------------------------------------------------
    @QtCore.Slot(int, object, str)
    def _deliver(self, job_id: int, result: object, error: str) -> None:
        on_done, on_error = self._callbacks.pop(job_id, (None, None))
        if error:
            if on_error is not None:
                on_error(error)
            else:
                log.warning("database job failed: %s", error)
        elif on_done is not None:
            on_done(result)
