"""The phase tracker: turns markers into phases with their own peaks, exactly where the kernel allows.

Why this exists: a tool that samples RSS and takes "the maximum between start and end" misses
short spikes, and one that reads ``VmHWM`` reports the maximum *since the process started*, so
every phase shows the global peak. Here every phase boundary (any start or end) is an interval
edge: the tracker reads the root's ``VmHWM`` (the peak since the last edge), folds it into every
phase that is open, and resets it (``clear_refs`` 5) — see
:meth:`~memview.collectors.process.ProcessTreeCollector.root_hwm_boundary`. A phase's own peak is
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

The tracker is fed from several threads (the MEMVIEW_FD reader, output pumps, log followers) and
the sampler's batches: one lock serialises them; nothing in here blocks on I/O beyond the
``/proc`` reads and writes of a boundary.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memview.collectors import procfs
from memview.markers import END, MARK, START, BadLine, Marker
from memview.model import (
    RSS_SERIES,
    SOURCE_MAXRSS,
    SOURCE_SAMPLED,
    SOURCE_VMHWM,
    Batch,
    Phase,
    ProcessExit,
    proc_series,
)

if TYPE_CHECKING:  # the runner builds both; importing them here at run time would be a cycle
    from memview.collectors.process import ProcessTreeCollector
    from memview.recorder import Recorder

MAX_DEPTH = 64  # deeper nesting is a program bug (starts without ends): further starts are refused
MARKS_PER_SECOND = 1000  # marks beyond this rate are counted, not stored
MAX_MARKS = 20_000  # per session
PHASES_PER_SECOND = 500  # phase starts measured per second (each boundary reads and resets /proc)
MAX_PHASES = 10_000  # per session; further phases are counted (their ends matched), not measured
MAX_WARNINGS = 20  # warnings stored one by one; the rest are counted in one closing warning
_PRINT_SLACK = 256 * 1024  # a printed "12.34 MB" is rounded; VmHWM lags RSS by up to 64 pages per thread
LOG_VIAS = frozenset({"log", "stdout", "stderr"})  # markers read from a program's own log lines
T_TOLERANCE_S = 60.0  # a "t" further than this from memview's clock is ignored (clock of another host?)
RECENT_SAMPLES = 20_000  # the tree's latest RSS samples, for a phase whose line is read after its samples


@dataclass(slots=True)
class _Open:
    """A phase being measured."""

    phase: Phase
    key: int | None  # the pid whose stack it is on (None: lines without "pid")
    exact: bool  # every interval so far has an exact root VmHWM
    hwm: int = 0  # the largest root VmHWM of its intervals so far
    awaiting_exit: bool = False  # its last interval ended after the root exited: wait for ru_maxrss
    tree: bool = False  # another process was in the tree while it was open
    procs_at_start: int = 1  # processes the collector had seen when it started
    sampled: int = 0
    done: bool = False
    start_data: dict[str, Any] = field(default_factory=dict)
    own: int | None = None  # the announcing process it is measured on; None: the root (and its tree)
    ghost: bool = False  # over the phase cap: kept on the stack so its end matches, never measured
    subtree: frozenset[int] = frozenset()  # processes the announcer started that ran during the phase
    timed: bool = False  # a log line with a timestamp started it: ordered by that time, not by arrival
    hwm_spills: bool = False  # its kernel intervals reach beyond its timestamped end: hwm is not its own


@dataclass(slots=True)
class _Announcer:
    """A process other than the root that announces phases: its own RSS reader and mark state."""

    pid: int
    mem: procfs.ProcMemory | None  # bound to that process (a reused pid is never read)
    reset_ok: bool = False  # its VmHWM counts from its last boundary

    def rss(self) -> int | None:
        return self.mem.rss() if self.mem is not None else None

    def close(self) -> None:
        if self.mem is not None:
            self.mem.close()
            self.mem = None


class PhaseTracker:
    """Phase stacks (one per announcing pid) and their statistics for one process session.

    ``collector`` is the session's :class:`ProcessTreeCollector`; ``exact`` says whether memview
    may reset the root's high-water mark (a launched child on Linux). Add the tracker as a
    recorder listener so it sees the sampled series (:meth:`on_batch`).
    """

    def __init__(self, recorder: Recorder, collector: ProcessTreeCollector, exact: bool = True) -> None:
        self.recorder = recorder
        self.collector = collector
        self._lock = threading.Lock()
        self._stacks: dict[int | None, list[_Open]] = {}
        self._pending: list[_Open] = []  # ended, waiting for samples (or exit figures) to be complete
        self._announcers: dict[int, _Announcer] = {}
        self._outbox: list[Callable[[], Any]] = []  # recorder calls collected under the lock, made after it
        self._samples_until = -1.0  # the latest sample time seen in a batch
        self.exact_possible = exact and collector.fast
        self._reset_ok = False  # VmHWM currently counts from the last boundary
        self.closed = False
        self.phase_count = 0
        self.mark_count = 0
        self.marks_dropped = 0
        self._mark_window = (0, 0)  # (wall second, marks stored in it)
        self.warning_count = 0
        self._warnings_dropped = 0
        self.phases_seen = 0
        self.phases_dropped = 0
        self._phase_window = (0, 0)  # (monotonic second, phases started in it)
        self._announced = 0  # phase starts so far: the summary's order among phases with one start time
        self._early_ends: list[tuple[Marker, float]] = []  # timestamped log ends read before their start
        self._recent: deque[tuple[float, int]] = deque(maxlen=RECENT_SAMPLES)  # (t, tree RSS) already seen

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
            self.warning_count += 1
            if self.warning_count > MAX_WARNINGS:
                self._warnings_dropped += 1
                return
        self.recorder.add_event("phase_warning", message, level="warning", data=data or {})

    # -- talking to the recorder: never under our lock ----------------------------------------
    def _event(self, kind: str, message: str, **kw: Any) -> None:
        """Queue a recorder event; :meth:`_flush` sends it once the lock is released.

        The recorder runs every listener inside ``add_event``/``add_phase`` (the GUI bridge, the
        trigger engine, a user's callback): holding our lock through them would let a slow or
        re-entrant listener stall the marker readers and the sampler's batches.
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
            self._warn_locked(f"marker time {item.t} is more than {T_TOLERANCE_S:.0f}s from memview's clock; "
                              "using the time it was read")
            return now
        return max(t, 0.0)

    def _warn_locked(self, message: str) -> None:
        self.warning_count += 1
        if self.warning_count > MAX_WARNINGS:
            self._warnings_dropped += 1
            return
        self._event("phase_warning", message, level="warning")

    # -- the kernel side: one boundary -----------------------------------------------------
    def _boundary(self, own: int | None = None) -> None:
        """Close the current interval of the process a marker came from.

        ``own`` None: the root's interval: fold its VmHWM into every phase measured on the root,
        then reset it. Otherwise the announcing process's own interval (:meth:`_own_boundary`).
        """
        if own is not None:
            self._own_boundary(own)
            return
        open_phases = [op for stack in self._stacks.values() for op in stack if op.own is None and not op.ghost]
        tree = self._tree_now()
        hwm, reset, alive = None, False, True
        if self.exact_possible:
            hwm, source = self.collector.take_hwm(self.collector.root_pid)
            reset = hwm is not None and source == SOURCE_VMHWM
            alive = hwm is not None or self.collector.root_rss() is not None
        for op in open_phases:
            if tree or self._count() > op.procs_at_start:
                op.tree = True
            if op.awaiting_exit:
                continue  # the root is gone; its ru_maxrss closes the interval it was in
            if hwm is not None and self._reset_ok:
                op.hwm = max(op.hwm, hwm)
            elif not alive and self._reset_ok:
                op.awaiting_exit = True
                seen = self.collector.root_hwm_seen()  # the sampler's last reading: a floor until ru_maxrss
                if seen:
                    op.hwm = max(op.hwm, seen)
            else:
                op.exact = False
        self._reset_ok = reset

    def _own_boundary(self, pid: int) -> None:
        """One boundary of process ``pid``: its VmHWM since its last boundary goes into its open
        phases, then the collector (the one owner of resets) resets it.

        A process that has already exited leaves its open phases waiting for its exit figures
        (read by the collector at its exit, :meth:`on_process_exit`).
        """
        ann = self._announcers[pid]
        hwm, source = self.collector.take_hwm(pid)
        exact = hwm is not None and source == SOURCE_VMHWM
        for op in self._stacks.get(pid, []):
            if op.awaiting_exit or op.ghost:
                continue
            if hwm is not None and ann.reset_ok:
                op.hwm = max(op.hwm, hwm)
            elif hwm is None and ann.reset_ok:
                op.awaiting_exit = True
            else:
                op.exact = False
        ann.reset_ok = exact

    def _measured_on(self, item: Marker) -> int | None:
        """The process a marker's phase is measured on: None for the root (or a line without a pid)."""
        pid = item.pid
        if pid is None or pid == self.collector.root_pid or not self.exact_possible:
            return None
        if pid not in self._announcers:
            try:
                mem: procfs.ProcMemory | None = procfs.ProcMemory(pid)
            except OSError:
                mem = None  # gone already: its figures come from its exit
            self._announcers[pid] = _Announcer(pid, mem)
        return pid

    def _count(self) -> int:
        return self.collector.process_count()

    def _tree_now(self) -> bool:
        return self.collector.live_count() > 1

    def _rss_now(self) -> int | None:
        """The tree's RSS now; None once the root has exited (a stale sample would mislead)."""
        return self.collector.tree_rss()

    # -- phases --------------------------------------------------------------------------------
    def _start(self, item: Marker, t: float) -> None:
        stack = self._stacks.setdefault(item.pid, [])
        if item.via in LOG_VIAS:
            self._close_repeated(stack, item, t)
        if len(stack) >= MAX_DEPTH:
            self._warn_locked(f"phase {item.name!r} not started: more than {MAX_DEPTH} phases open at once")
            return
        self.phases_seen += 1
        if self._over_phase_cap():
            self.phases_dropped += 1
            if self.phases_dropped == 1:
                self._warn_locked(f"more than {PHASES_PER_SECOND} phases per second (or {MAX_PHASES} in all): "
                                  "further phases are counted, not measured")
            ghost = Phase(name=item.name or "phase", depth=len(stack), start_s=t)
            stack.append(_Open(ghost, item.pid, exact=False, ghost=True))
            return
        own = self._measured_on(item)
        self._boundary(own)
        depth = len(stack)
        name = item.name or "phase"
        data = dict(item.data)
        data["pid"] = item.pid if item.pid is not None else self.collector.root_pid
        if item.via != "fd":
            data["via"] = item.via
        data.pop("line", None)  # a log line: the mark keeps it, a phase keeps its figures
        if "reported_bytes" in data:
            data["start_reported_bytes"] = data.pop("reported_bytes")
        if own is None:
            start_rss, exact, tree = self._rss_now(), self.exact_possible and self._reset_ok, self._tree_now()
        else:
            ann = self._announcers[own]
            start_rss, exact, tree = ann.rss(), ann.reset_ok, False
            data["tree_start_rss_bytes"] = self._rss_now()
        if item.via in LOG_VIAS and isinstance(data.get("start_reported_bytes"), int):
            # the program's own figure, exact at the moment it printed it; memview's reading is later
            data["read_start_rss_bytes"] = start_rss
            start_rss = data["start_reported_bytes"]
        self._announced += 1
        data["announced"] = self._announced
        phase = Phase(name=name, depth=depth, start_s=t, start_rss_bytes=start_rss, data=data)
        if item.via in LOG_VIAS:
            phase.flags.append("log_boundaries")  # the peak's interval edges are memview's reading moments
        op = _Open(phase, item.pid, exact=exact, tree=tree, procs_at_start=self._count(), own=own,
                   timed=_timed(item))
        later = next((i for i, o in enumerate(stack) if _timed_op(o) and o.phase.start_s > t), None)
        if later is not None and _timed(item):
            # read late: phases its line precedes began inside it; it goes below them, they one level deeper
            self._reordered(op)
            op.exact = False  # the time between its line and now was measured on them, not on it
            self._seed(op, float("inf"))
            for inner in stack[later:]:
                inner.phase.depth += 1
                op.hwm, op.sampled = max(op.hwm, inner.hwm), max(op.sampled, inner.sampled)
            phase.depth = depth = later
            stack.insert(later, op)
        else:
            stack.append(op)
        self._event("phase_start", name, data={"name": name, "depth": depth, "pid": data["pid"]}, t=t)
        if _timed(item):
            self._early_end(stack, op, item)

    def _reordered(self, op: _Open) -> None:
        if "reordered" not in op.phase.flags:
            op.phase.flags.append("reordered")

    def _seed(self, op: _Open, end: float) -> None:
        """The samples in a late phase's span that were handed on before it opened."""
        if op.own is None:
            start = op.phase.start_s
            op.sampled = max([op.sampled, *(v for t, v in self._recent if start <= t <= end)])

    def _early_end(self, stack: list[_Open], op: _Open, item: Marker) -> None:
        """An end line of this phase read before its start line (another channel, or a buffered
        stream): close the phase now, at the end line's own time and figures."""
        for k, (end, end_t) in enumerate(self._early_ends):
            if end.name == item.name and end.pid == item.pid and end_t >= op.phase.start_s:
                del self._early_ends[k]
                self._reordered(op)
                op.exact = False  # no kernel interval lies between its two boundaries
                op.hwm_spills = True  # what the interval read now holds is after its end
                self._seed(op, end_t)
                self._end(end, end_t)  # phases read since that began after its end line stay open
                return

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
        if (stack is None or index is None) and _timed(item) and item.name is not None:
            # its start may come on another channel, read later: the line's timestamp orders them
            if len(self._early_ends) < MAX_DEPTH:
                self._early_ends.append((item, t))
                return
        if stack is None or index is None:
            what = repr(item.name) if item.name else "(no name)"
            self._warn_locked(f"phase end {what} without a matching start; ignored")
            return
        if stack[index].ghost:
            del stack[index:]  # a counted phase (and anything inside it): nothing was measured
            return
        own = stack[index].own
        self._boundary(own)
        if own is None:
            end_rss = self._rss_now()
        else:
            end_rss = self._announcers[own].rss()
        tree_end = self._rss_now() if own is not None else None
        closing = [op for op in stack[index:] if not op.ghost]
        stay = [op for op in closing[1:] if _timed(item) and _timed_op(op) and op.phase.start_s > t]
        del stack[index:]
        if stay:
            # their start lines are later than this end line (read first, from another channel): they
            # are not inside it; they stay open one level up, and its own intervals spill into theirs
            closing = [op for op in closing if op not in stay]
            self._reordered(closing[0])
            closing[0].exact, closing[0].hwm_spills = False, True
            for op in stay:
                op.phase.depth = index + stay.index(op)
                stack.append(op)
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

    def _over_phase_cap(self) -> bool:
        second = int(time.monotonic())
        window, n = self._phase_window
        if window != second:
            window, n = second, 0
        if n >= PHASES_PER_SECOND or self.phases_seen - self.phases_dropped > MAX_PHASES:
            self._phase_window = (window, n)
            return True
        self._phase_window = (window, n + 1)
        return False

    def _close_repeated(self, stack: list[_Open], item: Marker, t: float) -> None:
        """The documented rule for log lines: a ``before X`` while a log phase ``X`` is still open
        closes that phase (and what was opened inside it), flagged ``unclosed``, before X starts
        again at its depth. A ``before`` whose ``after`` never came (an exception between the two)
        would otherwise nest every later phase one level deeper, for ever."""
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].phase.name == item.name and stack[i].phase.data.get("via") in LOG_VIAS and not stack[i].ghost:
                closing = stack[i:]
                del stack[i:]
                self._boundary(closing[0].own)
                end_rss = self._rss_now() if closing[0].own is None else self._announcers[closing[0].own].rss()
                for op in reversed(closing):
                    op.phase.flags.append("unclosed")
                    op.phase.data["closed_by"] = "the next start of the same name"
                    self._close(op, t, end_rss)
                return

    def _close(self, op: _Open, t: float, end_rss: int | None) -> None:
        phase = op.phase
        phase.end_s = max(t, phase.start_s)
        phase.end_rss_bytes = end_rss
        if op.own is not None and end_rss is None:
            op.awaiting_exit = True  # it exited at or right after its end: its exit figures close it
        if op.own is not None:
            op.subtree |= self._started_by(op.own, phase.start_s, phase.end_s)
            if op.subtree:
                op.tree = True  # its own exact figure plus its children's samples: a sampled sum
        if op.exact and not op.tree and not op.awaiting_exit and op.hwm:
            self._finish(op, op.hwm, SOURCE_VMHWM)
        else:
            self._pending.append(op)
            if op.awaiting_exit and op.own is not None:
                self._exited(op.own, self.collector.exit_figures(op.own))
            self._settle()

    def _started_by(self, pid: int, start: float, end: float) -> frozenset[int]:
        """Descendants of ``pid`` the collector saw alive at some point in ``[start, end]``."""
        for _attempt in range(3):
            try:
                procs = list(self.collector.processes())
                break
            except RuntimeError:  # the sampler changed the table while it was copied: read it again
                continue
        else:
            return frozenset()
        children: dict[int | None, list[int]] = {}
        alive: dict[int, bool] = {}
        for info in procs:
            children.setdefault(info.ppid, []).append(info.pid)
            alive[info.pid] = info.first_t <= end and info.last_t >= start
        out: set[int] = set()
        todo = [pid]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in out:
                    out.add(child)
                    todo.append(child)
        return frozenset(p for p in out if alive.get(p))

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
            if not self.closed and exit.pid in self._announcers:
                self._exited(exit.pid, exit)
                ann = self._announcers[exit.pid]
                ann.close()
        self._flush()

    def _finish(self, op: _Open, peak: int | None, source: str) -> None:
        op.done = True
        phase = op.phase
        if peak is not None and "log_boundaries" in phase.flags:
            # the program printed these figures while inside the phase: its peak was at least that
            # (beyond the printed figure's rounding and the kernel's per-CPU counter slack)
            printed = [v for v in (phase.start_rss_bytes, phase.end_rss_bytes) if v is not None]
            if printed and max(printed) > peak + _PRINT_SLACK:
                peak, source = max(printed), "reported"
        phase.peak_rss_bytes = peak
        phase.peak_source = source
        if op.tree and "tree" not in phase.flags:
            phase.flags.append("tree")
        self.phase_count += 1
        self._outbox.append(lambda: self.recorder.add_phase(phase))

    def _fallback(self, op: _Open) -> tuple[int | None, str]:
        """The best figure for a phase without a clean exact peak."""
        candidates = [v for v in (op.sampled, op.phase.start_rss_bytes, op.phase.end_rss_bytes) if v]
        if op.hwm and not op.hwm_spills:
            candidates.append(op.hwm)  # the root's own exact peak in the phase: the tree held at least this
        return (max(candidates) if candidates else None), SOURCE_SAMPLED

    def _settle(self, final: bool = False) -> None:
        """Finish pending phases whose samples have all arrived (or all of them when ``final``)."""
        keep = []
        for op in self._pending:
            end = op.phase.end_s or 0.0
            if op.awaiting_exit and not final:
                keep.append(op)
            elif final or self._samples_until >= end:
                self._finish(op, *self._fallback(op))
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
            if not self._dropping():
                return False
            self.mark_count += 1
            self.marks_dropped += 1
            return True

    def _dropping(self) -> bool:
        window, n = self._mark_window
        if window == int(time.monotonic()) and n >= MARKS_PER_SECOND:
            return True
        return self.mark_count - self.marks_dropped >= MAX_MARKS

    def _mark(self, item: Marker, t: float) -> None:
        self.mark_count += 1
        second = int(time.monotonic())
        window, n = self._mark_window
        if window != second:
            window, n = second, 0
        if n >= MARKS_PER_SECOND or self.mark_count - self.marks_dropped > MAX_MARKS:
            if self.marks_dropped == 0:
                self._warn_locked(f"more than {MARKS_PER_SECOND} marks per second (or {MAX_MARKS} in all): "
                                  "further marks are counted, not stored")
            self.marks_dropped += 1
            self._mark_window = (window, n)
            return
        self._mark_window = (window, n + 1)
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
                start = op.phase.start_s
                end = op.phase.end_s if op.phase.end_s is not None else float("inf")
                best = op.sampled
                # a phase measured on one process falls back to that process's own series, summed
                # with the processes it started
                if op.own is None:
                    ts, vs = times, values
                else:
                    op.subtree |= self._started_by(op.own, start, end)
                    op.tree = op.tree or bool(op.subtree)
                    ts, vs = _summed(batch, (op.own, *op.subtree))
                for t, v in zip(ts, vs):
                    if start <= t <= end and v > best:
                        best = v
                op.sampled = best
            self._samples_until = max(self._samples_until, times[-1])
            self._recent.extend(zip(times, values))
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
            for end, _t in self._early_ends:
                self._warn_locked(f"phase end {end.name!r} without a matching start; ignored")
            self._early_ends.clear()
            open_phases = [op for stack in self._stacks.values() for op in stack if not op.ghost]
            if open_phases:
                self._boundary()
                for pid in {op.own for op in open_phases if op.own is not None}:
                    self._boundary(pid)
                end_rss = self._rss_now()
                for op in sorted(open_phases, key=lambda o: -o.phase.depth):
                    op.phase.flags.append("unclosed")
                    op.phase.end_s = max(end_t, op.phase.start_s)
                    op.phase.end_rss_bytes = end_rss if op.own is None else self._announcers[op.own].rss()
                    if op.own is not None and op.phase.end_rss_bytes is None:
                        op.awaiting_exit = True
                    self._pending.append(op)
                self._stacks.clear()
            for pid in {op.own for op in self._pending if op.own is not None and op.awaiting_exit}:
                self._exited(pid, self.collector.exit_figures(pid))
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
            for ann in self._announcers.values():
                ann.close()
            dropped_marks, dropped_warnings = self.marks_dropped, self._warnings_dropped
            dropped_phases = self.phases_dropped
        self._flush()
        if dropped_phases:
            self.recorder.add_event(
                "phase_warning", f"{dropped_phases} of {self.phases_seen} phases were counted, not measured "
                f"(more than {PHASES_PER_SECOND} per second or {MAX_PHASES} in all)", level="warning",
                data={"phases": self.phases_seen, "dropped": dropped_phases})
        if dropped_marks:
            self.recorder.add_event(
                "phase_warning", f"{dropped_marks} of {self.mark_count} marks were not stored "
                f"(more than {MARKS_PER_SECOND} per second or {MAX_MARKS} in all)", level="warning",
                data={"marks": self.mark_count, "dropped": dropped_marks})
        if dropped_warnings:
            self.recorder.add_event(
                "phase_warning", f"{dropped_warnings} more marker warnings were not stored", level="warning",
                data={"dropped": dropped_warnings})


def _timed(item: Marker) -> bool:
    """A log line with its own timestamp: its place among the other lines is its time, not its arrival."""
    return item.via in LOG_VIAS and item.t is not None


def _timed_op(op: _Open) -> bool:
    return op.timed and not op.ghost


def _summed(batch: Batch, pids: tuple[int, ...]) -> tuple[list[float], list[int]]:
    """The sum of these processes' RSS series at each sample time of the batch."""
    total: dict[float, int] = {}
    for pid in pids:
        ts, vs = batch.series.get(proc_series(pid), ([], []))
        for t, v in zip(ts, vs):
            total[t] = total.get(t, 0) + v
    times = sorted(total)
    return times, [total[t] for t in times]
