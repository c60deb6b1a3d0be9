"""Watching a process tree: the root, every descendant that appears, and each one's own peak.

Per reading: find new descendants, read every live process's RSS, sum them. The root's exact
peak comes from the kernel (VmHWM while it runs, ``ru_maxrss`` when a launched child is reaped,
handed in by the runner); other processes get their VmHWM read every ``hwm_every`` seconds and
on the way out is whatever was read last, so their figure says which source it came from.
On Linux everything goes through :mod:`memview.collectors.procfs`; elsewhere psutil does it.
"""

from __future__ import annotations

import os
import threading
import time

import psutil

from memview.collectors import procfs
from memview.collectors.base import CollectorError
from memview.collectors.tracer import ExitRecord, Tracer
from memview.model import (
    ENVELOPE_SERIES,
    RSS_SERIES,
    SOURCE_EXIT,
    SOURCE_SAMPLED,
    SOURCE_VMHWM,
    Event,
    ProcessExit,
    ProcessInfo,
    Reading,
    proc_series,
)

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
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


def _boot_time() -> float:
    return psutil.boot_time()


class _PsutilMemory:
    """Portable stand-in for :class:`procfs.ProcMemory` (macOS, Windows): sampled peaks only."""

    __slots__ = ("_proc", "pid")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._proc = psutil.Process(pid)

    def rss(self) -> int | None:
        try:
            return self._proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return None

    def hwm(self) -> int | None:
        try:
            info = self._proc.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return getattr(info, "peak_wset", None)  # Windows only

    def close(self) -> None:
        pass


def describe(pid: int, boot: float) -> ProcessInfo | None:
    """Name, parent, command line and start time of ``pid``; None if it is already gone."""
    if procfs.AVAILABLE:
        st = procfs.stat(pid)
        if st is None:
            return None
        return ProcessInfo(pid, st.ppid, st.comm, procfs.cmdline(pid) or [], boot + st.start_ticks / _CLK_TCK,
                           0.0, 0.0)
    try:
        p = psutil.Process(pid)
        with p.oneshot():
            try:
                cmdline = p.cmdline()
            except psutil.AccessDenied:
                cmdline = []
            return ProcessInfo(pid, p.ppid(), p.name(), cmdline, p.create_time(), 0.0, 0.0)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def check_attachable(pid: int) -> None:
    """Raise CollectorError with a clear message if ``pid`` cannot be watched."""
    if pid == os.getpid():
        raise CollectorError("memview cannot watch itself")
    try:
        p = psutil.Process(pid)
        status = p.status()
        p.memory_info()
    except psutil.ZombieProcess:
        raise CollectorError(_zombie(pid)) from None
    except psutil.NoSuchProcess:
        if procfs.alive(pid):  # psutil cannot see it, kill(pid, 0) can: /proc hides it
            raise CollectorError(_denied(pid) + " (/proc hides other users' processes here: hidepid)") from None
        raise CollectorError(f"no process with PID {pid}") from None
    except psutil.AccessDenied:
        raise CollectorError(_denied(pid)) from None
    if status == psutil.STATUS_ZOMBIE:
        raise CollectorError(_zombie(pid))


def _denied(pid: int) -> str:
    return f"access denied to process {pid}: run memview as the same user as the process (or as root)"


def _zombie(pid: int) -> str:
    return f"process {pid} is a zombie (it exited; its parent has not reaped it): nothing to record"


class _Command:
    """The command line of one process, re-read to notice an exec (same PID, new program).

    On Linux through a kept ``/proc/PID/cmdline`` descriptor (bound to that process, like the
    memory readers, so a reused PID is never read); elsewhere through psutil.
    """

    __slots__ = ("_file", "_proc", "execs", "last")

    def __init__(self, pid: int, fast: bool) -> None:
        self._file = procfs.ProcFile(pid, "cmdline") if fast else None
        self._proc = None if fast else psutil.Process(pid)
        self.execs = 0
        self.last = self.read()

    def read(self) -> bytes | None:
        """The raw command line (first 64 KiB); None or empty when the process is gone or a zombie."""
        if self._file is not None:
            return self._file.read(65536)
        try:
            return "\0".join(self._proc.cmdline()).encode(errors="replace")  # type: ignore[union-attr]
        except psutil.Error:
            return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _Tracked:
    __slots__ = ("alive", "children", "cmd", "cmd_at", "exact", "exit", "fold_perf", "forked", "hwm_at", "info",
                 "mem", "series", "since_take", "statm_fd", "tids_at")

    def __init__(self, info: ProcessInfo, mem: procfs.ProcMemory | _PsutilMemory | _NoMemory,
                 children: procfs.ChildrenReader | None, cmd: _Command | None) -> None:
        self.info = info
        self.mem = mem
        self.children = children
        self.cmd = cmd
        self.series = proc_series(info.pid)
        self.alive = True
        self.tids_at = -1.0
        self.hwm_at = -1.0
        self.cmd_at = info.first_t
        self.exact: int | None = None  # the largest VmHWM read since its first exec (its own peak)
        self.since_take: int | None = None  # the largest VmHWM read since the last take_hwm
        self.forked = False  # known from a fork event: until it execs, its memory is its parent's copy
        self.fold_perf = 0.0  # perf_counter() of the latest VmHWM folded into ``exact``
        #: the kept statm descriptor, read inline by the hot path (None: psutil, or nothing to read)
        self.statm_fd: int | None = getattr(mem, "statm_fd", None)
        self.exit: ProcessExit | None = None

    def close(self) -> None:
        self.mem.close()
        if self.children is not None:
            self.children.close()
        if self.cmd is not None:
            self.cmd.close()


class ProcessTreeCollector:
    """Reads the summed RSS of ``root_pid`` and its descendants; one instance per session.

    With a :class:`~memview.collectors.tracer.Tracer` (a launched tree on Linux), new processes
    come from fork events, execs from exec events and each process's own peak from its exit stop;
    without one, ``/proc`` children files are scanned each sample and peaks are read while alive.
    ``envelope`` allows high-water-mark resets (``clear_refs 5``): each sample then also carries
    each process's exact maximum since the previous one (:data:`~memview.model.ENVELOPE_SERIES`).
    """

    def __init__(self, root_pid: int, kind: str = "attach", children: bool = True, hwm_every: float = 0.1,
                 tracer: Tracer | None = None, envelope: bool | None = None) -> None:
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
        self._boot = _boot_time()
        self._procs: dict[int, _Tracked] = {}
        self._gone: list[ProcessInfo] = []
        self._gone_tr: dict[int, _Tracked] = {}  # retired processes whose exit record may still come
        # pid -> create time of the processes already retired: an exited child stays in its parent's
        # children list as a zombie until reaped, and must not come back as a new, empty process
        self._retired: dict[int, float] = {}
        self._live: list[_Tracked] = []  # the processes the hot path reads, rebuilt when it changes
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
        self.sampled_max: int = 0
        self.fast = procfs.AVAILABLE
        if not self._track(root_pid, 0.0, ppid_check=None):
            if tracer is None or not (tracer.active or tracer.root_dead.is_set()):
                raise CollectorError(f"no process with PID {root_pid}")
            # a command that ended before memview's first look (/bin/true): the tracer read it at
            # its exit stop; the first drain fills this record in
            info = ProcessInfo(root_pid, os.getpid(), "?", [], None, 0.0, 0.0)
            self._procs[root_pid] = _Tracked(info, _NoMemory(), None, None)
            self._procs[root_pid].alive = False
        self._root = self._procs[root_pid]

    @property
    def traced(self) -> bool:
        """True while exact exit figures come from the tracer."""
        return self.tracer is not None and self.tracer.active

    # -- tree tracking ---------------------------------------------------------------------
    def _track(self, pid: int, t: float, ppid_check: int | None) -> bool:
        info = describe(pid, self._boot)
        if info is None or self._retired.get(pid) == info.create_time:
            return False
        try:
            mem: procfs.ProcMemory | _PsutilMemory = procfs.ProcMemory(pid) if self.fast else _PsutilMemory(pid)
        except (OSError, psutil.Error):
            return False
        try:
            cmd: _Command | None = _Command(pid, self.fast)
        except (OSError, psutil.Error):
            cmd = None
        info.first_t = info.last_t = t
        self._live_dirty = True
        self._procs[pid] = _Tracked(info, mem, procfs.ChildrenReader(pid) if self.fast and self.children else None,
                                    cmd)
        if pid != self.root_pid:
            self._events.append(Event(t, "process_start", f"{info.name} ({pid}) started", data={"pid": pid}))
        return True

    def _children_of(self, tr: _Tracked, t: float) -> list[int]:
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
                self._track(child, t, ppid_check=tr.info.pid)

    def _retire(self, tr: _Tracked) -> None:
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

    def _note_exit(self, tr: _Tracked, ex: ProcessExit) -> None:
        tr.exit = ex
        self._exit_figs[ex.pid] = ex
        self._exits.append(ex)

    # -- the tracer's reports ------------------------------------------------------------------
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
            if self._track(pid, self._session_t(perf), ppid_check=None):
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
                self._events.append(Event(ex_t, "process_exit", f"{tr.info.name} ({pid}) exited",
                                          data={"pid": pid, "hwm_bytes": ex.hwm_bytes}))
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

    def _track_from_exit(self, rec: ExitRecord) -> _Tracked:
        """A process that started and ended between two samples: known only from its exit stop."""
        ex = rec.exit
        t = self._session_t(ex.t)
        create = self._boot + rec.start_ticks / _CLK_TCK if rec.start_ticks is not None else None
        info = ProcessInfo(ex.pid, rec.ppid, rec.name, rec.cmdline, create, t, t)
        tr = _Tracked(info, _NoMemory(), None, None)
        tr.alive = False
        self._gone.append(info)
        self._gone_tr[ex.pid] = tr
        self._events.append(Event(t, "process_start", f"{info.name} ({ex.pid}) started and exited between two "
                                  "samples", data={"pid": ex.pid}))
        return tr

    def _fold_exit(self, tr: _Tracked, ex: ProcessExit) -> None:
        """The exit figure is the process's own peak since its last reset: fold the earlier ones in."""
        info = tr.info
        if ex.hwm_bytes is not None and ex.source == SOURCE_EXIT:
            with self._lock:
                own = max(ex.hwm_bytes, tr.exact or 0)
                tr.exact = own
                tr.since_take = max(tr.since_take or 0, ex.hwm_bytes)
                if tr is self._root:
                    self._root_hwm_seen = tr.since_take
                    self.root_exact_peak = own
                    self.root_exact_source = SOURCE_EXIT
            info.peak_rss_bytes = own
            info.peak_source = SOURCE_EXIT
        self._note_exit(tr, ex)

    # -- the hot path ----------------------------------------------------------------------
    def read(self, t: float) -> Reading | None:
        """One sample of the tree (the sampler thread's hot path, see docs/exactness.md).

        Most samples of a traced tree have nothing to fold in (no fork, exec or exit, no
        envelope due): they take :meth:`_read_steady`, one statm ``pread`` per process and
        nothing else; anything unusual goes the full way.
        """
        tracer = self.tracer
        if (self._steady and not tracer.pending and t - self._env_at < self._env_due  # type: ignore[union-attr]
                and not self._live_dirty):
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
        if total > self.sampled_max:
            self.sampled_max = total
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
        self._steady = bool(traced and not tracer.released_any  # type: ignore[union-attr]
                            and all(tr.statm_fd is not None for tr in self._live))
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
        if total > self.sampled_max:
            self.sampled_max = total
        return Reading(t, values, points or None)

    def _gone_now(self, tr: _Tracked, t: float) -> None:
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

    def _closing_reading(self, points: list[tuple[float, dict[str, int]]], exited_hwm: int,
                         t: float) -> Reading | None:
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

    def _envelope_period(self) -> float:
        return _ENVELOPE_PERIOD_SMALL if len(self._procs) <= _ENVELOPE_SMALL_TREE else _ENVELOPE_PERIOD_LARGE

    def _envelope_read(self, tr: _Tracked) -> tuple[int, int] | None:
        """(RSS, exact max since the previous envelope read), resetting the mark; None if gone."""
        mem = tr.mem
        with self._lock:
            pair = mem.rss_hwm()  # type: ignore[union-attr]
            if pair is None:
                return None
            rss, hwm = pair
            if hwm > rss:
                mem.reset_hwm()  # type: ignore[union-attr]
            if tr.since_take is None or hwm > tr.since_take:
                tr.since_take = hwm
                if tr is self._root:
                    self._root_hwm_seen = hwm
            tr.fold_perf = time.perf_counter()
            if tr.exact is None or hwm > tr.exact:
                tr.exact = hwm
                if tr is self._root:
                    self._fold_root(hwm, SOURCE_VMHWM)
        info = tr.info
        if hwm >= info.peak_rss_bytes:
            info.peak_rss_bytes = hwm
            info.peak_source = SOURCE_VMHWM
        return pair

    def _check_exec(self, tr: _Tracked, t: float) -> None:
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
        import shlex

        command = shlex.join(info.cmdline)
        if len(command) > 300:
            command = command[:300] + "…"
        more = " (further command changes of this process are not recorded)" if cmd.execs == _MAX_EXEC_EVENTS else ""
        self._events.append(Event(
            t, "exec", f"{old_name} ({info.pid}) exec'd {info.name}: {command}{more}",
            data={"pid": info.pid, "old_name": old_name, "old_cmdline": old_cmdline, "name": info.name,
                  "cmdline": info.cmdline},
        ))

    def _read_hwm(self, tr: _Tracked, t: float) -> None:
        """Read (without resetting) the process's VmHWM: its peak so far, while it lives."""
        tr.hwm_at = t
        with self._lock:
            hwm = tr.mem.hwm()
            if hwm is None:
                return
            if tr.since_take is None or hwm > tr.since_take:
                tr.since_take = hwm
                if tr is self._root:
                    self._root_hwm_seen = hwm
            tr.fold_perf = time.perf_counter()
            if tr.exact is None or hwm > tr.exact:
                tr.exact = hwm
            if tr is self._root:
                self._fold_root(hwm, SOURCE_VMHWM)
        info = tr.info
        if hwm >= info.peak_rss_bytes:
            info.peak_rss_bytes = hwm
            info.peak_source = SOURCE_VMHWM

    def _fold_root(self, value: int, source: str) -> None:
        if self.root_exact_peak is None or value > self.root_exact_peak:
            self.root_exact_peak = value
            self.root_exact_source = source

    # -- the one owner of high-water-mark resets ------------------------------------------------
    def take_hwm(self, pid: int) -> tuple[int | None, str]:
        """The exact maximum of ``pid`` since the previous ``take_hwm`` for it, then reset the mark.

        The ONE place a caller other than the sampler resets a high-water mark (phase
        boundaries call this). The sampler's own envelope resets are folded into the value, so
        the two never fight: the result covers every moment since the previous call. The value
        is also folded into the process's own exact peak. Resets happen only where allowed
        (memview's own launched tree; ``attach --envelope``); otherwise the value is the
        process's VmHWM since it started. A process that has exited answers with its exit
        figure; one that cannot be read answers ``(None, "sampled")``.
        """
        tr = self._procs.get(pid)
        if tr is None or not tr.alive:
            ex = self.exit_figures(pid)
            done = tr or self._gone_tr.get(pid)
            if ex is None or ex.hwm_bytes is None:
                return None, SOURCE_SAMPLED
            with self._lock:
                value = max(ex.hwm_bytes, (done.since_take or 0) if done is not None else 0)
                if done is not None:
                    done.since_take = None
            return value, ex.source
        if not self.fast:
            return None, SOURCE_SAMPLED
        with self._lock:
            hwm = tr.mem.hwm()
            if hwm is None:
                return None, SOURCE_SAMPLED
            value = max(hwm, tr.since_take or 0)
            tr.since_take = None
            if tr is self._root:
                self._root_hwm_seen = None
            tr.fold_perf = time.perf_counter()
            if tr.exact is None or value > tr.exact:
                tr.exact = value
            if tr is self._root:
                self._fold_root(value, SOURCE_VMHWM)
            if self.resets_allowed:
                tr.mem.reset_hwm()  # type: ignore[union-attr]
        if value >= tr.info.peak_rss_bytes:
            tr.info.peak_rss_bytes = value
            tr.info.peak_source = SOURCE_VMHWM
        return value, SOURCE_VMHWM

    def exit_figures(self, pid: int) -> ProcessExit | None:
        """Figures read at ``pid``'s exit (session time); None while it runs or when unknown."""
        ex = self._exit_figs.get(pid)
        if ex is not None:
            return ex
        if self.tracer is not None:
            raw = self.tracer.exit_of(pid)
            if raw is not None:
                return ProcessExit(pid, self._session_t(raw.t), raw.hwm_bytes, raw.rss_bytes, raw.source)
        return None

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
            self._events.append(Event(self._session_t(time.perf_counter()), "tracing_released",
                                      f"stopped tracing process {pid} so another tool can attach: its peak is "
                                      "sampled from now on", data={"pid": pid}))

    def reset_root_hwm(self) -> int | None:
        """Read the root's VmHWM, fold it into the peak, then reset it; returns the value read.

        Phase boundaries call this so each phase gets its own kernel peak without losing the
        session's. Returns None when the reset is not allowed (then phases use sampled peaks).
        """
        hwm, reset, _alive = self.root_hwm_boundary()
        return hwm if reset else None

    def root_hwm_boundary(self) -> tuple[int | None, bool, bool]:
        """One phase boundary: ``(VmHWM since the last boundary, reset done, root alive)``.

        Kept for the phase tracker; built on :meth:`take_hwm` so it and the envelope share the
        one owner of resets.
        """
        if not self.fast or not self._root.alive:
            return None, False, self._root.alive and self.fast
        if self._root.mem.rss() is None:
            return None, False, False
        value, source = self.take_hwm(self.root_pid)
        if value is None:
            return None, False, self._root.mem.rss() is not None
        return value, self.resets_allowed and source == SOURCE_VMHWM, True

    def root_hwm_seen(self) -> int | None:
        """The largest root VmHWM the sampler read since the last reset (None if none)."""
        return self._root_hwm_seen

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
        return root + sum(v for k, v in last.items() if k != root_series and k.startswith("pid:")
                          and not (tracer is not None and tracer.exited(int(k[4:]))))

    def live_count(self) -> int:
        """How many processes of the tree are alive as of the latest sample."""
        return sum(1 for tr in list(self._procs.values()) if tr.alive)

    def root_hwm(self) -> int | None:
        """The root's current VmHWM (since the last reset), without resetting."""
        return self._root.mem.hwm() if self._root.alive else None

    def root_rss(self) -> int | None:
        return self._root.mem.rss() if self._root.alive else None

    def set_root_exit(self, maxrss_bytes: int | None, exit_code: int | None, source: str) -> None:
        """The launched root was reaped: fold ``ru_maxrss`` into its exact peak."""
        info = self._root.info
        info.exit_code = exit_code
        if self._root.exit is None and maxrss_bytes:
            self._note_exit(self._root, ProcessExit(self.root_pid, info.last_t, maxrss_bytes, None, source))
        if maxrss_bytes:
            with self._lock:
                self._fold_root(maxrss_bytes, source)
            if maxrss_bytes >= info.peak_rss_bytes:
                info.peak_rss_bytes = maxrss_bytes
                info.peak_source = source

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


class _NoMemory:
    """The memory reader of a process known only from its exit stop: nothing left to read."""

    pid = 0

    def rss(self) -> int | None:
        return None

    def hwm(self) -> int | None:
        return None

    def close(self) -> None:
        pass


def now_monotonic() -> float:
    return time.perf_counter()


__all__ = ["SOURCE_SAMPLED", "ProcessTreeCollector", "check_attachable", "describe"]
