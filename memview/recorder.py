"""One recording session: a sampler thread drives a collector; batches go to the store and listeners.

The sampler loop does the least it can: read, append to the open batch, keep four running
numbers, sleep to an absolute deadline (``next += interval``) and count how late it woke, as
py-spy's timer does, rather than hide it. Every ``flush_every`` seconds it hands the batch on:
to the store writer (a queue) and to each listener (which must return at once). Nothing here
imports Qt; the GUI is one more listener.

Other parts talk to a running session only through the small command API: :meth:`stop`,
:meth:`add_event`, :meth:`add_phase`, :meth:`add_capture`, :meth:`request_capture`,
:meth:`set_threshold`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Literal, Protocol

from memview.collectors.base import Collector
from memview.model import RSS_SERIES, Batch, Capture, Event, Phase, ProcessExit, ProcessInfo
from memview.store import Store, StoreWriter
from memview.units import format_bytes

log = logging.getLogger(__name__)

#: Waits up to this long between samples use ``time.sleep``: its wake-up costs ~50 µs of CPU here
#: against ~95 µs for ``Event.wait`` (which builds a lock and a condition per call), and at 100 Hz
#: that is a third of the sampler's cost. Longer waits block on a lock that :meth:`Recorder.stop`
#: releases, so a stop is still noticed at once; a short sleep delays it by at most this much.
_SLEEP_MAX = 0.05


class Listener(Protocol):
    """Anything that wants a session's data as it arrives: every hook the recorder calls.

    Every hook is optional (the recorder looks each one up on the listener, so a listener
    defines only those it wants) and must return at once: the sampler thread waits for it.
    The recorder never holds a lock of its own while it calls a hook, so a hook may call back
    into the session's command API (:meth:`Recorder.add_event`, :meth:`Recorder.stop`, …).
    An exception in a hook is logged and the session goes on.
    """

    def on_batch(self, batch: Batch) -> None:
        """A batch of samples (every ``flush_every`` seconds; the sampler thread)."""

    def on_event(self, event: Event) -> None:
        """An event was recorded (the thread that called :meth:`Recorder.add_event`)."""

    def on_phase(self, phase: Phase) -> None:
        """A finished phase was recorded (the thread that called :meth:`Recorder.add_phase`)."""

    def on_capture(self, capture: Capture) -> None:
        """A capture started or changed (the thread that called :meth:`Recorder.add_capture`)."""

    def on_process_exit(self, exit: ProcessExit) -> None:
        """A tracked process exited; ``exit`` holds its figures read at the exit (called per batch)."""

    def on_store_error(self, exc: Exception) -> None:
        """The database writer failed; recording goes on in memory (the writer's thread)."""

    def on_closing(self, recorder: Recorder) -> None:
        """The sampler has stopped and the writer still takes rows: finish work in flight."""

    def on_end(self, recorder: Recorder) -> None:
        """The session is closed and its rows are written (or the writer gave up)."""


#: The hooks :meth:`Recorder._notify` calls: exactly the methods of :class:`Listener` (tested).
Hook = Literal[
    "on_batch", "on_event", "on_phase", "on_capture", "on_process_exit", "on_store_error", "on_closing", "on_end"
]


class Stats:
    """Running figures of the total series, updated per sample by the sampler thread only."""

    __slots__ = ("count", "first_t", "last", "last_t", "late", "max", "max_late", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.max = 0
        self.last: int | None = None
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.late = 0
        self.max_late = 0.0

    @property
    def avg(self) -> int | None:
        return round(self.total / self.count) if self.count else None


class Recorder:
    """Records one session from ``collector`` into ``store`` (optional) and to listeners."""

    def __init__(
        self,
        collector: Collector,
        store: Store | None,
        interval: float = 0.05,
        session_fields: dict[str, Any] | None = None,
        flush_every: float = 0.25,
        duration: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.collector = collector
        self.store = store
        self.interval = interval
        self.flush_every = max(flush_every, interval) if interval < 1 else interval
        self.duration = duration
        self.stats = Stats()
        self.listeners: list[Listener | object] = []  # each defines the Listener hooks it wants
        self.events: list[Event] = []
        self.phases: list[Phase] = []
        self.captures: list[Capture] = []
        self.capture_handler: Callable[[str], None] | None = None
        self.threshold: int | None = None  # the live RSS threshold in bytes (the GUI's draggable line)
        self.threshold_handler: Callable[[int | None], None] | None = None  # set by a trigger engine
        self.stop_reason: str | None = None
        self.store_error: Exception | None = None
        self._stop = threading.Event()
        self._wake = threading.Lock()  # held until stop(): the sampler's long waits block on it
        self._wake.acquire()
        self.finished = threading.Event()  # set when the sampler has handed its last batch
        self._lock = threading.Lock()
        self._rows: list[tuple[float, dict[str, int]]] = []  # the open batch, one row per reading
        self.started_at = time.time()
        self._t0 = time.perf_counter()
        fields = {"kind": collector.kind, "interval_s": interval, "started_at": self.started_at}
        fields.update(session_fields or {})
        self.fields = fields
        self.session_id = store.create_session(**fields) if store is not None else 0
        self.writer: StoreWriter | None = None
        if store is not None:
            self.writer = StoreWriter(store.path, self.session_id, on_error=self._on_store_error)
        self._thread = threading.Thread(target=self._run, name=f"memview-sampler-{self.session_id}", daemon=True)

    # -- time ------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the session started, on the sampler's clock."""
        return time.perf_counter() - self._t0

    # -- lifecycle ---------------------------------------------------------------------------
    def add_listener(self, listener: Listener | object) -> None:
        """Call ``listener``'s :class:`Listener` hooks (those it defines) from now on."""
        self.listeners.append(listener)

    def start(self) -> Recorder:
        if self.writer is not None:
            self.writer.start()
        self._thread.start()
        return self

    def stop(self, reason: str = "stopped") -> None:
        """Ask the sampler to stop after its current reading (any thread)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        try:
            self._wake.release()
        except RuntimeError:  # released already
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the sampler to end (the source is gone, the duration is over, or stop())."""
        return self.finished.wait(timeout)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    # -- the command API for phases, triggers, captures --------------------------------------
    def add_event(
        self, kind: str, message: str, level: str = "info", data: dict[str, Any] | None = None, t: float | None = None
    ) -> Event:
        event = Event(self.now() if t is None else t, kind, message, level, data or {})
        with self._lock:
            self.events.append(event)
        if self.writer is not None:
            self.writer.insert(
                "events", {"t_s": event.t, "kind": kind, "level": level, "message": message, "data": event.data}
            )
        self._notify("on_event", event)
        return event

    def add_phase(self, phase: Phase) -> None:
        """Record a finished phase (the phase tracker calls this when a phase ends)."""
        with self._lock:
            self.phases.append(phase)
            seq = len(self.phases) - 1
        if self.writer is not None:
            self.writer.insert("phases", phase_row(phase, seq))
        self._notify("on_phase", phase)

    def add_capture(self, capture: Capture) -> None:
        """Record a capture that started or finished (called again with the same object to update)."""
        with self._lock:
            if capture not in self.captures:
                self.captures.append(capture)
            seq = self.captures.index(capture)
        if self.writer is not None:
            self.writer.insert("captures", capture_row(capture, seq))
        self._notify("on_capture", capture)

    def request_capture(self, reason: str = "manual") -> bool:
        """ "Capture now": handed to whatever capture engine is attached; False if there is none."""
        if self.capture_handler is None:
            return False
        self.capture_handler(reason)
        return True

    def set_threshold(self, value: int | None) -> None:
        """Move the live RSS threshold (bytes; None clears it); an attached trigger engine follows.

        The GUI's draggable line calls this. The move is kept as an event so a later reader knows
        why a capture fired where it did.
        """
        self.threshold = value
        if self.threshold_handler is not None:
            self.threshold_handler(value)
        text = "cleared" if value is None else f"set to {format_bytes(value)}"
        self.add_event("threshold", f"threshold {text}", data={"threshold_bytes": value})

    # -- the sampler thread ----------------------------------------------------------------------
    def _run(self) -> None:
        interval = self.interval
        stats = self.stats
        rows = self._rows
        read = self.collector.read
        stop = self._stop
        wake = self._wake
        sleep = time.sleep
        perf = time.perf_counter
        t0 = self._t0
        append = self._append
        next_due = perf()
        last_flush = next_due
        end_at = None if self.duration is None else t0 + self.duration
        try:
            while not stop.is_set():
                now = perf()
                late = now - next_due
                if late > interval * 0.5:
                    stats.late += 1
                    if late > stats.max_late:
                        stats.max_late = late
                t = now - t0
                reading = read(t)
                if reading is None:
                    self.stop_reason = self.stop_reason or "exited"
                    break
                if reading.before:  # the tree changed between samples (a process exited)
                    for t_b, values_b in reading.before:
                        append(rows, stats, t_b, values_b)
                t = reading.t  # the collector's time for its values (an endpoint's: when the answer came)
                # one row per reading, not two appends per series: a 50-process tree's 51 series
                # cost ~16 µs a sample as columns; they become columns once per flush (columns())
                append(rows, stats, t, reading.values)
                if now - last_flush >= self.flush_every:
                    self._flush()
                    rows = self._rows
                    last_flush = now
                if end_at is not None and now >= end_at:
                    self.stop_reason = self.stop_reason or "duration"
                    break
                next_due += interval
                delay = next_due - perf()
                if delay > 0:
                    if end_at is not None:
                        delay = min(delay, max(end_at - perf(), 0.0))
                    if delay <= _SLEEP_MAX:
                        sleep(delay)
                    else:
                        wake.acquire(timeout=delay)
                elif -delay > interval:
                    next_due = perf()  # far behind (machine stalled): skip, don't burst
        except Exception as exc:  # a collector bug must not lose the session
            log.exception("sampler failed")
            self.stop_reason = "error"
            self.add_event("error", f"sampling failed: {exc!r}", level="error")
        finally:
            self._flush()
            self.finished.set()

    @staticmethod
    def _append(rows: list[tuple[float, dict[str, int]]], stats: Stats, t: float, values: dict[str, int]) -> None:
        """One reading into the open batch and the running figures of the total series."""
        rows.append((t, values))
        total = values.get(RSS_SERIES)
        if total is not None:
            stats.count += 1
            stats.total += total
            stats.last = total
            if total > stats.max:
                stats.max = total
            if stats.first_t is None:
                stats.first_t = t
            stats.last_t = t

    def drain_collector(self) -> None:
        """Take the collector's last events and process exits after the sampler has ended.

        The runner calls this once the sampler thread is done (the collector is read from one
        thread at a time): what the tracer reported after the last sample is not lost.
        """
        final = getattr(self.collector, "final_drain", None)
        reading = final() if final is not None else None
        if reading is not None:
            for t, values in [*(reading.before or []), (reading.t, reading.values)]:
                self._append(self._rows, self.stats, t, values)
        self._flush()

    def _flush(self) -> None:
        for event in self.collector.drain_events():
            self.add_event(event.kind, event.message, event.level, event.data, t=event.t)
        drain_exits = getattr(self.collector, "drain_exits", None)
        if drain_exits is not None:
            for exit_ in drain_exits():
                self._notify("on_process_exit", exit_)
        if not self._rows:
            return
        series = columns(self._rows)
        self._rows = []
        if not series:
            return
        batch = Batch(self.session_id, series)
        if self.writer is not None:
            self.writer.write_batch(batch)
        self._notify("on_batch", batch)

    def _notify(self, method: Hook, arg: Any) -> None:
        for listener in self.listeners:
            fn = getattr(listener, method, None)
            if fn is None:
                continue
            try:
                fn(arg)
            except Exception:  # a listener must never take the session down
                log.exception("listener %r failed in %s", listener, method)

    def _on_store_error(self, exc: Exception | None) -> None:
        self.store_error = exc
        if exc is not None:
            self._notify("on_store_error", exc)
            log.warning("cannot write to the database (%s); recording continues in memory", exc)

    # -- closing ----------------------------------------------------------------------------
    def close(self, status: str = "completed", **session_fields: Any) -> None:
        """Write the session's closing figures and wait for the writer to flush everything.

        ``session_fields`` are the runner's figures (exit code, signal, exact peak and source).
        """
        self.stop()
        self._thread.join() if self._thread.is_alive() else None
        # listeners with work in flight (a capture, heaptrack's interpreter) finish it while the
        # writer still takes their rows
        self._notify("on_closing", self)
        listed: Callable[[], list[ProcessInfo]] | None = getattr(self.collector, "processes", None)
        processes = listed() if listed is not None else []
        self.collector.close()
        wall = self.now()
        stats = self.stats
        fields: dict[str, Any] = {
            "status": status,
            "ended_at": self.started_at + wall,
            "wall_s": wall,
            "samples": stats.count,
            "avg_rss_bytes": stats.avg,
            "final_rss_bytes": stats.last,
            "peak_rss_bytes": stats.max or None,
            "peak_source": "sampled",
        }
        fields.update(session_fields)
        self.closing_fields = fields
        self.processes = processes
        if self.writer is not None:
            self.writer.write_series_units(self.collector.series_units())
            for info in processes:
                self.writer.insert("processes", info.to_row())
            self.writer.update_session(**fields)
            if not self.writer.close():
                self.store_error = self.store_error or self.writer.error or RuntimeError("the writer did not finish")
                if self.writer.dead and self.store is not None:  # the session says so, not "running"
                    fields["status"] = "incomplete"
                    self.store.mark_incomplete(self.session_id, f"the database writer stopped ({self.store_error})")
        self._notify("on_end", self)


def columns(rows: list[tuple[float, dict[str, int]]]) -> dict[str, tuple[list[float], list[int]]]:
    """Readings (time, {series: value}) as one (times, values) pair of columns per series.

    The usual case (every reading of the batch has the same series: a tree that did not change)
    is C-level work: one ``itemgetter`` call per reading and a ``zip`` transposition; otherwise
    each series gets the times it has values for."""
    dicts = [values for _, values in rows]
    names = list(dicts[0])
    n = len(names)
    if n > 1 and all(len(values) == n for values in dicts):
        try:  # same size and every name present: the same series in every reading
            cols = list(zip(*map(itemgetter(*names), dicts)))
        except KeyError:
            pass
        else:
            times = [t for t, _ in rows]
            return {name: (times.copy(), list(col)) for name, col in zip(names, cols)}
    out: dict[str, tuple[list[float], list[int]]] = {}
    for t, values in rows:
        for name, value in values.items():
            buf = out.get(name)
            if buf is None:
                buf = out[name] = ([], [])
            buf[0].append(t)
            buf[1].append(value)
    return out


def phase_row(phase: Phase, seq: int) -> dict[str, Any]:
    return {"seq": seq, **phase.to_row()}


def capture_row(capture: Capture, seq: int) -> dict[str, Any]:
    return {"seq": seq, **capture.to_row()}
