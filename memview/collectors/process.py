"""Watching a process tree: the root, every descendant that appears, and each one's own peak.

Per reading: find new descendants, read every live process's RSS, sum them. The root's exact
peak comes from the kernel (VmHWM while it runs, ``ru_maxrss`` when a launched child is reaped,
handed in by the runner); other processes get their VmHWM read every ``hwm_every`` seconds and
on the way out is whatever was read last, so their figure says which source it came from.
On Linux everything goes through :mod:`memview.collectors.procfs`; elsewhere psutil does it.

This module owns the tree and the sampler's hot path. The collector's other halves live beside
it: :mod:`~memview.collectors.hwm` (the one owner of high-water-mark reads and resets),
:mod:`~memview.collectors.tracer_reports` (forks, execs and exits the tracer reports),
:mod:`~memview.collectors.tracked` (the per-process record) and
:mod:`~memview.collectors.process_info` (describing a process, checking it can be watched).
"""

from __future__ import annotations

import os
import shlex
import threading
import time

import psutil

from memview.collectors import procfs
from memview.collectors.base import CollectorError
from memview.collectors.hwm import HighWaterMarks
from memview.collectors.process_info import boot_time, describe
from memview.collectors.tracer import Tracer
from memview.collectors.tracer_reports import TracerReports
from memview.collectors.tracked import Command, NoMemory, PsutilMemory, Tracked
from memview.model import (
    ENVELOPE_SERIES,
    RSS_SERIES,
    SOURCE_SAMPLED,
    SOURCE_VMHWM,
    Event,
    ProcessExit,
    ProcessInfo,
    Reading,
    proc_series,
)

_TID_REFRESH_S = 0.5
#: How often each process's command line is compared with the last one read (exec detection).
_CMD_CHECK_S = 0.2
#: Exec events kept per process; a program that rewrites its title in a loop is not a log.
_MAX_EXEC_EVENTS = 20
#: The envelope (VmHWM + reset: one read of status, ~15 µs a process against ~2 µs for statm) is
#: read at most every ``_ENVELOPE_PERIOD_SMALL`` seconds, every ``_ENVELOPE_PERIOD_LARGE`` for
#: trees larger than ``_ENVELOPE_SMALL_TREE``: the maximum stays exact over the window, only its
#: time is coarser, and 100 Hz or a 50-process tree stays within the CPU budget.
_ENVELOPE_SMALL_TREE = 10
_ENVELOPE_PERIOD_SMALL = 0.05
_ENVELOPE_PERIOD_LARGE = 0.2


class ProcessTreeCollector(TracerReports, HighWaterMarks):
    """Reads the summed RSS of ``root_pid`` and its descendants; one instance per session.

    With a :class:`~memview.collectors.tracer.Tracer` (a launched tree on Linux), new processes
    come from fork events, execs from exec events and each process's own peak from its exit stop;
    without one, ``/proc`` children files are scanned each sample and peaks are read while alive.
    ``envelope`` allows high-water-mark resets (``clear_refs 5``): each sample then also carries
    each process's exact maximum since the previous one (:data:`~memview.model.ENVELOPE_SERIES`).
    """

    def __init__(
        self,
        root_pid: int,
        kind: str = "attach",
        children: bool = True,
        hwm_every: float = 0.1,
        tracer: Tracer | None = None,
        envelope: bool | None = None,
    ) -> None:
        self.kind = kind
        self.root_pid = root_pid
        self.children = children
        self.hwm_every = hwm_every
        self.tracer = tracer
        #: memview may reset high-water marks (its own launched tree; attach only with --envelope)
        self.resets_allowed = (kind == "run") if envelope is None else envelope
        self.envelope = self.resets_allowed and procfs.AVAILABLE
        self.envelope_max: int = 0  # the largest envelope sum: an upper bound of the tree's peak
        self._env_at = -1.0
        self._boot = boot_time()
        self._procs: dict[int, Tracked] = {}
        self._gone: list[ProcessInfo] = []
        self._gone_tr: dict[int, Tracked] = {}  # retired processes whose exit record may still come
        # pid -> create time of the processes already retired: an exited child stays in its parent's
        # children list as a zombie until reaped, and must not come back as a new, empty process
        self._retired: dict[int, float | None] = {}
        self._live: list[Tracked] = []  # the processes the hot path reads, rebuilt when it changes
        self._live_dirty = True
        self._steady = False  # the next sample may take the steady path (see read)
        self._env_due = 0.0  # seconds between envelope reads (0.8 x the period: jitter)
        self._events: list[Event] = []
        self._exits: list[ProcessExit] = []  # for the recorder's on_process_exit, drained per batch
        self._exit_figs: dict[int, ProcessExit] = {}
        self._lock = threading.Lock()  # guards HWM reads/resets: the sampler, phases, captures
        self._t_off: float | None = None  # perf_counter() at session t = 0 (tracer times -> t)
        self._prev_t = 0.0
        self.root_exact_peak: int | None = None
        self._root_hwm_seen: int | None = None  # the largest root VmHWM read since the last reset
        self.last_values: dict[str, int] = {}  # the latest reading's series (a new dict per reading)
        self.root_exact_source: str = SOURCE_VMHWM
        self.fast = procfs.AVAILABLE
        if not self._track(root_pid, 0.0):
            if tracer is None or not (tracer.active or tracer.root_dead.is_set()):
                raise CollectorError(f"no process with PID {root_pid}")
            # a command that ended before memview's first look (/bin/true): the tracer read it at
            # its exit stop; the first drain fills this record in
            info = ProcessInfo(root_pid, os.getpid(), "?", [], None, 0.0, 0.0)
            self._procs[root_pid] = Tracked(info, NoMemory(), None, None)
            self._procs[root_pid].alive = False
        self._root = self._procs[root_pid]

    @property
    def traced(self) -> bool:
        """True while exact exit figures come from the tracer."""
        return self.tracer is not None and self.tracer.active

    # -- tree tracking ---------------------------------------------------------------------
    def _track(self, pid: int, t: float) -> bool:
        """Start watching ``pid`` (a new member of the tree); False if it is gone or already retired."""
        info = describe(pid, self._boot)
        if info is None or self._retired.get(pid) == info.create_time:
            return False
        try:
            mem: procfs.ProcMemory | PsutilMemory = procfs.ProcMemory(pid) if self.fast else PsutilMemory(pid)
        except (OSError, psutil.Error):
            return False
        try:
            cmd: Command | None = Command(pid, self.fast)
        except (OSError, psutil.Error):
            cmd = None
        info.first_t = info.last_t = t
        self._live_dirty = True
        self._procs[pid] = Tracked(info, mem, procfs.ChildrenReader(pid) if self.fast and self.children else None, cmd)
        if pid != self.root_pid:
            self._events.append(Event(t, "process_start", f"{info.name} ({pid}) started", data={"pid": pid}))
        return True

    def _children_of(self, tr: Tracked, t: float) -> list[int]:
        if not self.fast:
            try:
                return [c.pid for c in psutil.Process(tr.info.pid).children()]
            except psutil.Error:
                return []
        reader = tr.children
        assert reader is not None
        if t - tr.tids_at >= _TID_REFRESH_S:
            reader.refresh()
            tr.tids_at = t
        return reader.read()

    def _discover(self, t: float) -> None:
        tracer = self.tracer if self.traced else None
        for tr in list(self._procs.values()):
            if not tr.alive:
                continue
            if tracer is not None and tracer.traces(tr.info.pid):
                continue  # its children arrive as fork events
            for child in self._children_of(tr, t):
                known = self._procs.get(child)
                if known is not None and known.alive:
                    continue
                if known is not None:  # a reused PID: the old one is finished
                    self._retire(known)
                if tracer is not None and tracer.exited(child):
                    continue
                self._track(child, t)

    def _retire(self, tr: Tracked) -> None:
        tr.alive = False
        self._live_dirty = True
        tr.close()
        self._gone.append(tr.info)
        self._retired[tr.info.pid] = tr.info.create_time
        self._gone_tr[tr.info.pid] = tr
        del self._procs[tr.info.pid]
        if tr.exit is None and self.tracer is None:
            ex = ProcessExit(tr.info.pid, tr.info.last_t, tr.info.peak_rss_bytes or None, None, SOURCE_SAMPLED)
            self._note_exit(tr, ex)

    # -- the hot path ----------------------------------------------------------------------
    def read(self, t: float) -> Reading | None:
        """One sample of the tree (the sampler thread's hot path, see docs/exactness.md).

        Most samples of a traced tree have nothing to fold in (no fork, exec or exit, no
        envelope due): they take :meth:`_read_steady`, one statm ``pread`` per process and
        nothing else; anything unusual goes the full way.
        """
        tracer = self.tracer
        if (
            self._steady
            and not tracer.pending  # type: ignore[union-attr]  # _steady is only set with a tracer
            and t - self._env_at < self._env_due
            and not self._live_dirty
        ):
            reading = self._read_steady(t)
            if reading is not None:
                return reading
        return self._read_full(t)

    def _read_steady(self, t: float) -> Reading | None:
        pread = os.pread
        page = procfs.PAGE_SIZE
        values: dict[str, int] = {}
        total = 0
        for tr in self._live:
            try:
                raw = pread(tr.statm_fd, 64, 0)  # type: ignore[arg-type]
            except OSError:
                return None
            pages = raw.split(b" ", 2)[1] if raw else b"0"
            if pages == b"0":
                return None  # gone or a zombie: the full path says so
            rss = int(pages) * page
            info = tr.info
            info.last_t = t
            if rss > info.peak_rss_bytes:
                info.peak_rss_bytes = rss
            values[tr.series] = rss
            total += rss
        values[RSS_SERIES] = total
        self.last_values = values
        self._prev_t = t
        return Reading(t, values)

    def _read_full(self, t: float) -> Reading | None:
        if self._t_off is None:
            self._t_off = time.perf_counter() - t
        points: list[tuple[float, dict[str, int]]] = []
        exited_hwm = 0
        tracer = self.tracer
        traced = tracer is not None and tracer.active
        if tracer is not None and tracer.pending:
            points, exited_hwm = self._drain_tracer(t)
        if self.children and (not traced or tracer.released_any):  # type: ignore[union-attr]
            self._discover(t)  # traced processes' children arrive as fork events instead
        envelope = self.envelope and (t - self._env_at >= self._envelope_period() * 0.8)  # 0.8: jitter
        if envelope:
            self._env_at = t
        if self._live_dirty:
            self._live_dirty = False
            self._live = [tr for tr in self._procs.values() if tr.alive]
            self._env_due = self._envelope_period() * 0.8 if self.envelope else float("inf")
        # the steady path needs: tracing on (no scans, no HWM polls), nothing released, statm fds
        self._steady = bool(
            traced
            and not tracer.released_any  # type: ignore[union-attr]
            and all(tr.statm_fd is not None for tr in self._live)
        )
        values: dict[str, int] = {}
        total = 0
        env_total = exited_hwm
        pread = os.pread
        page = procfs.PAGE_SIZE
        poll_hwm = not traced  # traced: exact figures come at exit; the envelope reads while alive
        for tr in self._live:
            pair = None
            fd = tr.statm_fd
            if envelope:
                pair = self._envelope_read(tr)
                rss = pair[0] if pair is not None else None
            elif fd is not None:
                try:
                    raw = pread(fd, 64, 0)
                except OSError:
                    raw = b""
                rss = None
                if raw:
                    size, pages = raw.split(b" ", 2)[:2]
                    if pages != b"0" or size != b"0":  # 0 0: a zombie, its memory is gone
                        rss = int(pages) * page
            else:
                rss = tr.mem.rss()
            if rss is None:  # (a traced process's exit record is already waiting: next drain)
                self._gone_now(tr, t)
                continue
            info = tr.info
            info.last_t = t
            if rss > info.peak_rss_bytes:
                info.peak_rss_bytes = rss
            if pair is not None:
                env_total += pair[1]
            elif poll_hwm and (tr is self._root or t - tr.hwm_at >= self.hwm_every):
                self._read_hwm(tr, t)
            if tr.cmd_at < 0 or not traced and t - tr.cmd_at >= _CMD_CHECK_S:
                self._check_exec(tr, t)
            values[tr.series] = rss
            total += rss
        if not values and tracer is not None and not points and not exited_hwm:
            # gone between the drain and the reads: their exit records are waiting (the exit
            # stop comes before the memory is freed), take them now
            points, exited_hwm = self._drain_tracer(t)
        if not values:
            return self._closing_reading(points, exited_hwm, t)
        values[RSS_SERIES] = total
        if envelope:
            if total > env_total:
                env_total = total
            values[ENVELOPE_SERIES] = env_total
            if env_total > self.envelope_max:
                self.envelope_max = env_total
        self.last_values = values
        self._prev_t = t
        return Reading(t, values, points or None)

    def _gone_now(self, tr: Tracked, t: float) -> None:
        """It exited since the last sample. The VmHWM read then covered its life only up to that
        reading, so without an exit figure (attach, a released process, no tracing) its peak is
        ``sampled``; a traced process's exit record, drained next, makes it exact again."""
        tr.alive = False
        self._live_dirty = True
        pid = tr.info.pid
        if tr.info.peak_source == SOURCE_VMHWM:
            tr.info.peak_source = SOURCE_SAMPLED
        if tr is self._root and self.root_exact_source == SOURCE_VMHWM:
            self.root_exact_source = SOURCE_SAMPLED
        if pid != self.root_pid:
            self._events.append(Event(t, "process_exit", f"{tr.info.name} ({pid}) exited", data={"pid": pid}))
            self._retire(tr)

    def _envelope_period(self) -> float:
        return _ENVELOPE_PERIOD_SMALL if len(self._procs) <= _ENVELOPE_SMALL_TREE else _ENVELOPE_PERIOD_LARGE

    def _check_exec(self, tr: Tracked, t: float) -> None:
        """A new command line on the same process: it exec'd. Record it and keep sampling the PID.

        The per-process record takes the new name and command line; an ``exec`` event keeps the
        old ones. A child that still showed its parent's command line was forked and has now
        started its own program (fork, then exec): its record is updated without an event.
        """
        tr.cmd_at = t
        cmd = tr.cmd
        if cmd is None:
            return
        raw = cmd.read()
        if not raw or raw == cmd.last:
            return  # gone, a zombie, or unchanged
        cmd.last = raw
        info = tr.info
        old_name, old_cmdline = info.name, info.cmdline
        fresh = describe(info.pid, self._boot)
        if fresh is None:
            return
        info.name = fresh.name
        info.cmdline = procfs.split_cmdline(raw) if self.fast else fresh.cmdline
        parent = self._procs.get(info.ppid or -1)
        if info.pid != self.root_pid and parent is not None and parent.info.cmdline == old_cmdline:
            return  # fork, then exec: the child's own start, not a change of program
        cmd.execs += 1
        if cmd.execs > _MAX_EXEC_EVENTS:
            return
        command = shlex.join(info.cmdline)
        if len(command) > 300:
            command = command[:300] + "…"
        more = " (further command changes of this process are not recorded)" if cmd.execs == _MAX_EXEC_EVENTS else ""
        self._events.append(
            Event(
                t,
                "exec",
                f"{old_name} ({info.pid}) exec'd {info.name}: {command}{more}",
                data={
                    "pid": info.pid,
                    "old_name": old_name,
                    "old_cmdline": old_cmdline,
                    "name": info.name,
                    "cmdline": info.cmdline,
                },
            )
        )

    def tree_rss(self) -> int | None:
        """The tree's RSS now: the root read fresh, the others as of the latest sample (thread-safe).

        None once the root has exited.
        """
        root = self.root_rss()
        if root is None:
            return None
        last = self.last_values
        root_series = proc_series(self.root_pid)
        tracer = self.tracer
        return root + sum(
            v
            for k, v in last.items()
            if k != root_series and k.startswith("pid:") and not (tracer is not None and tracer.exited(int(k[4:])))
        )

    def live_count(self) -> int:
        """How many processes of the tree are alive as of the latest sample."""
        return sum(1 for tr in list(self._procs.values()) if tr.alive)

    def root_rss(self) -> int | None:
        """The root's RSS now (read fresh); None once it has exited."""
        return self._root.mem.rss() if self._root.alive else None

    # -- what the recorder takes at the end ----------------------------------------------------
    def processes(self) -> list[ProcessInfo]:
        out = self._gone + [tr.info for tr in self._procs.values()]
        if self.tracer is not None:  # the tracer reaped them: their exit statuses
            for info in out:
                if info.exit_code is None and info.pid != self.root_pid:
                    info.exit_code = self.tracer.exit_code_of(info.pid)
        return out

    def process_count(self) -> int:
        return len(self._gone) + len(self._procs)

    def series_units(self) -> dict[str, tuple[str, str]]:
        units = {RSS_SERIES: ("bytes", "RSS (tree)")}
        if self.envelope:
            units[ENVELOPE_SERIES] = ("bytes", "RSS envelope (tree, sum of exact per-interval maxima)")
        for info in self.processes():
            units[proc_series(info.pid)] = ("bytes", f"{info.name} ({info.pid})")
        return units

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        for tr in self._procs.values():
            tr.close()


__all__ = ["ProcessTreeCollector"]
