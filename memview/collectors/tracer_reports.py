"""The tracer's reports folded into the tree: forks, execs, exits between samples (the collector's half).

Why apart from the sampling: with a :class:`~memview.collectors.tracer.Tracer` a launched tree's
processes arrive as fork events and leave with an exact exit figure, often between two samples;
folding those in (exit points in the totals, processes known only from their exit stop, the last
interval's bound) is its own logic. :class:`~memview.collectors.process.ProcessTreeCollector`
inherits this; the attributes declared below are its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from memview.collectors.process_info import CLK_TCK
from memview.collectors.tracer import ExitRecord, Tracer
from memview.collectors.tracked import NoMemory, Tracked
from memview.model import ENVELOPE_SERIES, RSS_SERIES, SOURCE_SAMPLED, Event, ProcessExit, ProcessInfo, Reading


class TracerReports:
    """Drains the tracer each sample and turns its records into the tree's processes, events and points."""

    root_pid: int
    tracer: Tracer | None
    children: bool
    envelope: bool
    envelope_max: int
    last_values: dict[str, int]
    _boot: float
    _procs: dict[int, Tracked]
    _gone: list[ProcessInfo]
    _gone_tr: dict[int, Tracked]
    _events: list[Event]
    _exits: list[ProcessExit]
    _lock: threading.Lock
    _t_off: float | None
    _prev_t: float
    _live_dirty: bool
    _track: Callable[[int, float], bool]
    _retire: Callable[[Tracked], None]
    _fold_exit: Callable[[Tracked, ProcessExit], None]

    def _session_t(self, perf: float) -> float:
        off = self._t_off if self._t_off is not None else perf
        return max(perf - off, 0.0)

    def _drain_tracer(self, t: float) -> tuple[list[tuple[float, dict[str, int]]], int]:
        """Fold the tracer's forks, execs and exits in; returns the exit points and the exited HWM sum."""
        assert self.tracer is not None
        forks, execs, exits = self.tracer.drain()
        exiting = {rec.exit.pid for rec in exits}
        for perf, pid, _parent in forks:
            if pid in self._procs or pid in exiting or not self.children:
                continue
            if self._track(pid, self._session_t(perf)):
                self._procs[pid].forked = True
        for perf, pid in execs:
            tr = self._procs.get(pid)
            if tr is None:
                continue
            tr.cmd_at = -1.0  # re-read its command line at this sample
            if tr.forked:  # its first exec: the memory read before it was its parent's copy
                tr.forked = False
                if tr.fold_perf < perf:
                    with self._lock:
                        tr.exact = None
                    tr.info.peak_rss_bytes = 0
                    tr.info.peak_source = SOURCE_SAMPLED
        points: list[tuple[float, dict[str, int]]] = []
        exited_hwm = 0
        if not exits:
            return points, exited_hwm
        last = dict(self.last_values)
        total = last.get(RSS_SERIES)
        for rec in sorted(exits, key=lambda r: r.exit.t):
            pid = rec.exit.pid
            tr = self._procs.get(pid) or self._gone_tr.get(pid)
            if tr is None:
                if pid == self.root_pid or not self.children:
                    continue
                tr = self._track_from_exit(rec)
            ex_t = max(self._session_t(rec.exit.t), tr.info.first_t)
            if rec.name:  # the name it had at its end (a fork that exec'd before a sample saw it)
                tr.info.name = rec.name
                tr.info.cmdline = rec.cmdline or tr.info.cmdline
            ex = ProcessExit(pid, ex_t, rec.exit.hwm_bytes, rec.exit.rss_bytes, rec.exit.source)
            self._fold_exit(tr, ex)
            if ex.hwm_bytes is not None and self.envelope:
                exited_hwm += ex.hwm_bytes
            series_value = last.pop(tr.series, None)
            if tr.alive:
                tr.info.last_t = ex_t
                self._events.append(
                    Event(
                        ex_t,
                        "process_exit",
                        f"{tr.info.name} ({pid}) exited",
                        data={"pid": pid, "hwm_bytes": ex.hwm_bytes},
                    )
                )
                if pid == self.root_pid:
                    tr.alive = False
                    self._live_dirty = True
                    tr.close()
                else:
                    self._retire(tr)
            if series_value is not None and total is not None:
                total -= series_value
                if any(k.startswith("pid:") for k in last):
                    points.append((min(max(ex_t, self._prev_t + 1e-6), t), {RSS_SERIES: total}))
        return points, exited_hwm

    def _track_from_exit(self, rec: ExitRecord) -> Tracked:
        """A process that started and ended between two samples: known only from its exit stop."""
        ex = rec.exit
        t = self._session_t(ex.t)
        create = self._boot + rec.start_ticks / CLK_TCK if rec.start_ticks is not None else None
        info = ProcessInfo(ex.pid, rec.ppid, rec.name, rec.cmdline, create, t, t)
        tr = Tracked(info, NoMemory(), None, None)
        tr.alive = False
        self._gone.append(info)
        self._gone_tr[ex.pid] = tr
        self._events.append(
            Event(
                t,
                "process_start",
                f"{info.name} ({ex.pid}) started and exited between two samples",
                data={"pid": ex.pid},
            )
        )
        return tr

    def _closing_reading(self, points: list[tuple[float, dict[str, int]]], exited_hwm: int, t: float) -> Reading | None:
        """The points left when nothing is alive: exits (totals without them) and the last bound."""
        if exited_hwm:  # the last interval's bound: what the processes that just ended reached
            t_env = max(points[-1][0] if points else t, self._prev_t + 1e-6)
            points.append((t_env, {ENVELOPE_SERIES: exited_hwm}))
            self.envelope_max = max(self.envelope_max, exited_hwm)
        if points:
            t_last, last_values = points[-1]
            return Reading(t_last, last_values, points[:-1] or None)
        return None

    def final_drain(self) -> Reading | None:
        """Fold what the tracer reported after the last sample (the sampler has ended).

        Returns the points that belong after the last sample (exits, the last interval's bound).
        """
        if self.tracer is None:
            return None
        t = self._session_t(time.perf_counter())
        points, exited_hwm = self._drain_tracer(t)
        return self._closing_reading(points, exited_hwm, t)

    def drain_exits(self) -> list[ProcessExit]:
        """Exits noticed since the last call; the recorder hands them to ``on_process_exit``."""
        exits, self._exits = self._exits, []
        return exits

    def release(self, pid: int) -> None:
        """Step aside before another tool ptraces ``pid`` (py-spy, heaptrack, gdb, memray attach).

        The tracer detaches every thread of that process; from then on it is sampled (its exit
        figure will say ``sampled``). A no-op for a process that is not traced.
        """
        tracer = self.tracer
        if tracer is None or not tracer.active:
            return
        if tracer.release(pid):
            self._events.append(
                Event(
                    self._session_t(time.perf_counter()),
                    "tracing_released",
                    f"stopped tracing process {pid} so another tool can attach: its peak is sampled from now on",
                    data={"pid": pid},
                )
            )
