"""The phase tracker: turns markers into phases with their own peaks, exactly where the kernel allows.

Why this exists: a tool that samples RSS and takes "the maximum between start and end" misses
short spikes, and one that reads ``VmHWM`` reports the maximum *since the process started*, so
every phase shows the global peak. Here every phase boundary (any start or end) is an interval
edge: the tracker reads the root's ``VmHWM`` (the peak since the last edge), folds it into every
phase that is open, and resets it (``clear_refs`` 5) — see
:meth:`~memview.collectors.hwm.HighWaterMarks.take_hwm` (the one owner of HWM resets). A phase's own peak is
then the largest ``VmHWM`` of the intervals it spans: exact, whatever the sampling interval.

Where that is not possible the phase falls back to the sampled maximum of the tree's ``rss``
series inside ``[start, end]`` (taken from the recorder's batches) and says so in
``peak_source``:

* a tree: while a phase is open and another process is in the tree, the root's ``VmHWM`` does not
  cover the others' memory; the phase peak is the sampled tree maximum (never below the root's
  own exact figure, which it contains) and is flagged ``tree``;
* ``memview attach``: memview does not reset the high-water mark of a process it did not start;
* another platform, or a kernel that refuses ``clear_refs``.

When the launched root has exited before its last edge was handled (a program that prints
"end" and exits at once), its ``wait4`` ``ru_maxrss`` is the peak since the last reset and closes
that interval (source ``kernel:ru_maxrss``). A phase still open when the session ends is closed
then and flagged ``unclosed``.

This module owns the phase stacks (one per announcing pid), their ordering and closing; the
kernel side of a boundary is :mod:`memview.phase_meter`, placing log lines by their timestamps
:mod:`memview.phase_order`, the caps on what is stored :mod:`memview.phase_limits`.

The tracker is fed from several threads (the MEMVIEW_FD reader, output pumps, log followers) and
the sampler's batches: one lock serialises them; nothing in here blocks on I/O beyond the
``/proc`` reads and writes of a boundary. It never calls the session (which runs every listener)
while it holds that lock: what it has to say is queued and sent once the lock is released, so a
listener may call back into the tracker or the recorder from its hook.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from memview.markers import END, MARK, START, BadLine, Marker
from memview.model import RSS_SERIES, SOURCE_MAXRSS, SOURCE_VMHWM, Batch, Event, Phase, ProcessExit
from memview.phase_limits import (
    MARKS_PER_SECOND,
    MAX_DEPTH,
    MAX_MARKS,
    MAX_PHASES,
    MAX_WARNINGS,
    PHASES_PER_SECOND,
    Budget,
    closing_warnings,
)
from memview.phase_meter import OpenPhase, PeakSource, PhaseMeter, at_least_reported, fallback
from memview.phase_order import (
    LOG_VIAS,
    EarlyEnds,
    RecentSamples,
    insert_late,
    mark_reordered,
    split_late_starts,
    take_repeated,
    timed,
)

T_TOLERANCE_S = 60.0  # a "t" further than this from memview's clock is ignored (clock of another host?)


class PhaseSession(Protocol):
    """What the tracker needs of the recording (:class:`~memview.recorder.Recorder`): its clock
    and the command API it reports through (which runs every listener: never called under a lock)."""

    started_at: float  # Unix time of the session's start: a marker's "t" is on that clock

    def now(self) -> float:
        """Seconds since the session started."""

    def add_event(
        self, kind: str, message: str, level: str = "info", data: dict[str, Any] | None = None, t: float | None = None
    ) -> Event:
        """Record an event (a phase start, a mark, a warning)."""

    def add_phase(self, phase: Phase) -> None:
        """Record a finished phase."""


class PhaseTracker:
    """Phase stacks (one per announcing pid) and their statistics for one process session.

    ``collector`` is the session's process collector; ``exact`` says whether memview may reset
    the root's high-water mark (a launched child on Linux). Add the tracker as a recorder
    listener so it sees the sampled series (:meth:`on_batch`) and the processes' exits.
    """

    def __init__(self, recorder: PhaseSession, collector: PeakSource, exact: bool = True) -> None:
        self.recorder = recorder
        self.meter = PhaseMeter(collector, exact)
        self._lock = threading.Lock()
        self._stacks: dict[int | None, list[OpenPhase]] = {}
        self._pending: list[OpenPhase] = []  # ended, waiting for samples (or exit figures) to be complete
        self._outbox: list[Callable[[], Any]] = []  # recorder calls collected under the lock, made after it
        self._samples_until = -1.0  # the latest sample time seen in a batch
        self.closed = False
        self.marks = Budget(MARKS_PER_SECOND, MAX_MARKS)
        self.phases = Budget(PHASES_PER_SECOND, MAX_PHASES)
        self.warning_count = 0
        self._warnings_dropped = 0
        self._announced = 0  # phase starts so far: the summary's order among phases with one start time
        self._early_ends = EarlyEnds()
        self._recent = RecentSamples()

    # -- input -----------------------------------------------------------------------------
    def handle(self, item: Marker | BadLine | None) -> str | None:
        """Apply one parsed line; returns the marker's sync token once it is handled (for the ack)."""
        if item is None:
            return None
        if isinstance(item, BadLine):
            self.warn(f"ignored a marker line: {item.reason}: {item.line}", {"reason": item.reason})
            return None
        with self._lock:
            if self.closed:
                return None
            now = self.recorder.now()
            t = self._time_of(item, now)
            if item.event == START:
                self._start(item, t)
            elif item.event == END:
                self._end(item, t)
            elif item.event == MARK:
                self._mark(item, t)
        self._flush()
        return item.sync

    def warn(self, message: str, data: dict[str, Any] | None = None) -> None:
        """A marker problem: stored as a warning event, the first MAX_WARNINGS only (then counted)."""
        with self._lock:
            self._warn_locked(message, data)
        self._flush()

    # -- talking to the recorder: never under our lock ----------------------------------------
    def _event(self, kind: str, message: str, **kw: Any) -> None:
        """Queue a recorder event; :meth:`_flush` sends it once the lock is released.

        The recorder runs every listener inside ``add_event``/``add_phase`` (the GUI bridge, the
        trigger engine, a user's callback): holding our lock through them would let a slow or
        re-entrant listener stall the marker readers and the sampler's batches (or deadlock).
        """
        self._outbox.append(lambda: self.recorder.add_event(kind, message, **kw))

    def _flush(self) -> None:
        with self._lock:
            out, self._outbox = self._outbox, []
        for send in out:
            send()

    def _time_of(self, item: Marker, now: float) -> float:
        if item.t is None:
            return now
        t = item.t - self.recorder.started_at
        if abs(t - now) > T_TOLERANCE_S:
            self._warn_locked(
                f"marker time {item.t} is more than {T_TOLERANCE_S:.0f}s from memview's clock; "
                "using the time it was read"
            )
            return now
        return max(t, 0.0)

    def _warn_locked(self, message: str, data: dict[str, Any] | None = None) -> None:
        self.warning_count += 1
        if self.warning_count > MAX_WARNINGS:
            self._warnings_dropped += 1
            return
        self._event("phase_warning", message, level="warning", data=data or {})

    # -- the kernel side: one boundary -----------------------------------------------------
    def _boundary(self, own: int | None = None) -> None:
        """Close the current interval of the process a marker came from (None: the root)."""
        if own is None:
            self.meter.root_boundary(
                op for stack in self._stacks.values() for op in stack if op.own is None and not op.ghost
            )
        else:
            self.meter.own_boundary(own, self._stacks.get(own, []))

    # -- phases --------------------------------------------------------------------------------
    def _start(self, item: Marker, t: float) -> None:
        stack = self._stacks.setdefault(item.pid, [])
        if item.via in LOG_VIAS:
            self._close_repeated(stack, item, t)
        if len(stack) >= MAX_DEPTH:
            self._warn_locked(f"phase {item.name!r} not started: more than {MAX_DEPTH} phases open at once")
            return
        if not self.phases.admit():
            if self.phases.dropped == 1:
                self._warn_locked(
                    f"more than {PHASES_PER_SECOND} phases per second (or {MAX_PHASES} in all): "
                    "further phases are counted, not measured"
                )
            ghost = Phase(name=item.name or "phase", depth=len(stack), start_s=t)
            stack.append(OpenPhase(ghost, item.pid, exact=False, ghost=True))
            return
        meter = self.meter
        own = meter.measured_on(item.pid)
        self._boundary(own)
        name = item.name or "phase"
        data = dict(item.data)
        data["pid"] = item.pid if item.pid is not None else meter.root_pid
        if item.via != "fd":
            data["via"] = item.via
        data.pop("line", None)  # a log line: the mark keeps it, a phase keeps its figures
        if "reported_bytes" in data:
            data["start_reported_bytes"] = data.pop("reported_bytes")
        start_rss, exact, tree = meter.start_figures(own)
        if own is not None:
            data["tree_start_rss_bytes"] = meter.tree_rss()
        if item.via in LOG_VIAS and isinstance(data.get("start_reported_bytes"), int):
            # the program's own figure, exact at the moment it printed it; memview's reading is later
            data["read_start_rss_bytes"] = start_rss
            start_rss = data["start_reported_bytes"]
        self._announced += 1
        data["announced"] = self._announced
        phase = Phase(name=name, depth=len(stack), start_s=t, start_rss_bytes=start_rss, data=data)
        if item.via in LOG_VIAS:
            phase.flags.append("log_boundaries")  # the peak's interval edges are memview's reading moments
        op = OpenPhase(
            phase, item.pid, exact=exact, tree=tree, procs_at_start=meter.count(), own=own, timed=timed(item)
        )
        if not insert_late(stack, op, item, self._recent):
            stack.append(op)
        self._event("phase_start", name, data={"name": name, "depth": phase.depth, "pid": data["pid"]}, t=t)
        if timed(item) and (early := self._early_ends.take(op, item)) is not None:
            # its end line was read before this start line: close it now, at that line's time and figures
            mark_reordered(op)
            op.exact = False  # no kernel interval lies between its two boundaries
            op.hwm_spills = True  # what the interval read now holds is after its end
            end, end_t = early
            self._recent.seed(op, end_t)
            self._end(end, end_t)  # phases read since that began after its end line stay open

    def _end(self, item: Marker, t: float) -> None:
        stack = self._stacks.get(item.pid)
        if not stack:
            # a pid that never started anything may be closing a phase opened by lines without a pid
            stack = self._stacks.get(None) if item.pid is not None else None
        index = None
        if stack:
            if item.name is None:
                index = len(stack) - 1
            else:
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i].phase.name == item.name:
                        index = i
                        break
        if stack is None or index is None:
            # a timestamped end's start may come on another channel, read later: the lines' times order them
            if not self._early_ends.hold(item, t):
                what = repr(item.name) if item.name else "(no name)"
                self._warn_locked(f"phase end {what} without a matching start; ignored")
            return
        if stack[index].ghost:
            del stack[index:]  # a counted phase (and anything inside it): nothing was measured
            return
        own = stack[index].own
        self._boundary(own)
        end_rss = self.meter.rss(own)
        tree_end = self.meter.tree_rss() if own is not None else None
        closing = [op for op in stack[index:] if not op.ghost]
        del stack[index:]
        closing = split_late_starts(stack, closing, index, item, t)
        extra = dict(item.data)
        extra.pop("line", None)
        if "reported_bytes" in extra:
            extra["end_reported_bytes"] = extra.pop("reported_bytes")
        if item.via in LOG_VIAS and isinstance(extra.get("end_reported_bytes"), int):
            extra["read_end_rss_bytes"] = end_rss
            end_rss = extra["end_reported_bytes"]
        for op in reversed(closing):  # innermost first
            if op is not closing[0]:
                op.phase.flags.append("unclosed")  # closed by its parent's end
            else:
                op.phase.data.update(extra)
            if own is not None:
                op.phase.data["tree_end_rss_bytes"] = tree_end
            self._close(op, t, end_rss)

    def _close_repeated(self, stack: list[OpenPhase], item: Marker, t: float) -> None:
        """A ``before X`` while a log phase ``X`` is open closes it first (:func:`take_repeated`)."""
        closing = take_repeated(stack, item)
        if closing:
            self._boundary(closing[0].own)
            end_rss = self.meter.rss(closing[0].own)
            for op in reversed(closing):
                self._close(op, t, end_rss)

    def _close(self, op: OpenPhase, t: float, end_rss: int | None) -> None:
        phase = op.phase
        phase.end_s = max(t, phase.start_s)
        phase.end_rss_bytes = end_rss
        if op.own is not None and end_rss is None:
            op.awaiting_exit = True  # it exited at or right after its end: its exit figures close it
        if op.own is not None:
            op.subtree |= self.meter.started_by(op.own, phase.start_s, phase.end_s)
            if op.subtree:
                op.tree = True  # its own exact figure plus its children's samples: a sampled sum
        if op.exact and not op.tree and not op.awaiting_exit and op.hwm:
            self._finish(op, op.hwm, SOURCE_VMHWM)
        else:
            self._pending.append(op)
            if op.awaiting_exit and op.own is not None:
                self._exited(op.own, self.meter.exit_figures(op.own))
            self._settle()

    def _exited(self, pid: int, exit: ProcessExit | None) -> None:
        """Close the phases of ``pid`` that wait for its exit figures, if the collector has them."""
        if exit is None:
            return
        for op in self._pending:
            if op.own != pid or not op.awaiting_exit or op.done:
                continue
            op.awaiting_exit = False
            if op.phase.end_rss_bytes is None and exit.rss_bytes is not None:
                op.phase.end_rss_bytes = exit.rss_bytes
                op.phase.data["end_at_exit"] = True
            if op.exact and exit.hwm_bytes is not None:
                self._finish(op, max(op.hwm, exit.hwm_bytes), exit.source)
            else:
                op.exact = False
        self._pending = [op for op in self._pending if not op.done]

    def on_process_exit(self, exit: ProcessExit) -> None:
        """Recorder hook: a process's figures read exactly at its exit."""
        with self._lock:
            if not self.closed and exit.pid in self.meter.announcers:
                self._exited(exit.pid, exit)
                self.meter.close(exit.pid)
        self._flush()

    def _finish(self, op: OpenPhase, peak: int | None, source: str) -> None:
        op.done = True
        phase = op.phase
        phase.peak_rss_bytes, phase.peak_source = at_least_reported(phase, peak, source)
        if op.tree and "tree" not in phase.flags:
            phase.flags.append("tree")
        self._outbox.append(lambda: self.recorder.add_phase(phase))

    def _settle(self, final: bool = False) -> None:
        """Finish pending phases whose samples have all arrived (or all of them when ``final``)."""
        keep = []
        for op in self._pending:
            end = op.phase.end_s or 0.0
            if op.awaiting_exit and not final:
                keep.append(op)
            elif final or self._samples_until >= end:
                self._finish(op, *fallback(op))
            else:
                keep.append(op)
        self._pending = keep

    def skip_mark(self) -> bool:
        """Count one more mark without parsing it if marks are being dropped now (a flood).

        The channel reader asks this for lines that look like marks, so a program sending 100k
        marks a second costs memview a substring test per line instead of a JSON parse, and the
        program is never slowed down waiting for memview to drain its channel.
        """
        with self._lock:
            if not self.marks.dropping():
                return False
            self.marks.skip()
            return True

    def _mark(self, item: Marker, t: float) -> None:
        if not self.marks.admit():
            if self.marks.dropped == 1:
                self._warn_locked(
                    f"more than {MARKS_PER_SECOND} marks per second (or {MAX_MARKS} in all): "
                    "further marks are counted, not stored"
                )
            return
        data = dict(item.data)
        if item.pid is not None:
            data["pid"] = item.pid
        if item.via != "fd":
            data["via"] = item.via
        self._event("mark", item.name or "mark", data=data, t=t)

    # -- samples ------------------------------------------------------------------------------------
    def on_batch(self, batch: Batch) -> None:
        times, values = batch.series.get(RSS_SERIES, ([], []))
        if not times:
            return
        with self._lock:
            watched = [op for stack in self._stacks.values() for op in stack if not op.ghost] + self._pending
            for op in watched:
                self.meter.fold_samples(op, batch, times, values)
            self._samples_until = max(self._samples_until, times[-1])
            self._recent.extend(times, values)
            if self._pending:
                self._settle()
        self._flush()

    # -- the end of the session --------------------------------------------------------------------
    def finish(self, maxrss_bytes: int | None = None) -> None:
        """Close what is still open (flagged ``unclosed``), settle the rest, report what was dropped.

        ``maxrss_bytes`` is the launched root's trusted ``wait4`` ``ru_maxrss`` (None if it is not
        trusted or the session is an attach): the high-water mark since the last reset, because
        the kernel folds the process's own mark into it at exit. It closes the interval the root
        died in, for the phases whose last edge memview handled after the exit.
        """
        with self._lock:
            if self.closed:
                return
            end_t = self.recorder.now()
            for end in self._early_ends.unmatched():
                self._warn_locked(f"phase end {end.name!r} without a matching start; ignored")
            open_phases = [op for stack in self._stacks.values() for op in stack if not op.ghost]
            if open_phases:
                self._boundary()
                for pid in {op.own for op in open_phases if op.own is not None}:
                    self._boundary(pid)
                end_rss = self.meter.tree_rss()
                for op in sorted(open_phases, key=lambda o: -o.phase.depth):
                    op.phase.flags.append("unclosed")
                    op.phase.end_s = max(end_t, op.phase.start_s)
                    op.phase.end_rss_bytes = end_rss if op.own is None else self.meter.rss(op.own)
                    if op.own is not None and op.phase.end_rss_bytes is None:
                        op.awaiting_exit = True
                    self._pending.append(op)
                self._stacks.clear()
            for pid in {op.own for op in self._pending if op.own is not None and op.awaiting_exit}:
                self._exited(pid, self.meter.exit_figures(pid))
            for op in self._pending:
                if op.own is not None and op.awaiting_exit:
                    op.exact = False  # no exit figures: the sampled figure stands, flagged
                    if "exited" not in op.phase.flags:
                        op.phase.flags.append("exited")
                elif op.awaiting_exit and maxrss_bytes and op.exact and not op.tree:
                    self._finish(op, max(op.hwm, maxrss_bytes), SOURCE_MAXRSS)
                elif op.exact and not op.tree and not op.awaiting_exit and op.hwm:
                    self._finish(op, op.hwm, SOURCE_VMHWM)
                else:
                    op.exact = False
                op.awaiting_exit = False
            self._pending = [op for op in self._pending if not op.done]
            self._settle(final=True)
            self.closed = True
            self.meter.close()
            for message, data in closing_warnings(self.phases, self.marks, self._warnings_dropped):
                self._event("phase_warning", message, level="warning", data=data)
        self._flush()
