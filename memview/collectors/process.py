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
from memview.model import (
    RSS_SERIES,
    SOURCE_SAMPLED,
    SOURCE_VMHWM,
    Event,
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
        brief = procfs.stat_brief(pid)
        if brief is None:
            return None
        comm, ppid, ticks = brief
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            cmdline = []
        return ProcessInfo(pid, ppid, comm, cmdline, boot + ticks / _CLK_TCK, 0.0, 0.0)
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
        if _exists_elsewhere(pid):
            raise CollectorError(_denied(pid) + " (/proc hides other users' processes here: hidepid)") from None
        raise CollectorError(f"no process with PID {pid}") from None
    except psutil.AccessDenied:
        raise CollectorError(_denied(pid)) from None
    if status == psutil.STATUS_ZOMBIE:
        raise CollectorError(_zombie(pid))


def _denied(pid: int) -> str:
    return f"access denied to process {pid}: run memview as the same user as the process (or as root)"


def _exists_elsewhere(pid: int) -> bool:
    """True when ``pid`` exists but belongs to another user: kill(pid, 0) sees through /proc's hidepid."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return False


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
    __slots__ = ("alive", "children", "cmd", "cmd_at", "hwm_at", "info", "mem", "series", "tids_at")

    def __init__(self, info: ProcessInfo, mem: procfs.ProcMemory | _PsutilMemory,
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

    def close(self) -> None:
        self.mem.close()
        if self.children is not None:
            self.children.close()
        if self.cmd is not None:
            self.cmd.close()


class ProcessTreeCollector:
    """Reads the summed RSS of ``root_pid`` and its descendants; one instance per session."""

    def __init__(self, root_pid: int, kind: str = "attach", children: bool = True, hwm_every: float = 0.1) -> None:
        self.kind = kind
        self.root_pid = root_pid
        self.children = children
        self.hwm_every = hwm_every
        self._boot = _boot_time()
        self._procs: dict[int, _Tracked] = {}
        self._gone: list[ProcessInfo] = []
        # pid -> create time of the processes already retired: an exited child stays in its parent's
        # children list as a zombie until reaped, and must not come back as a new, empty process
        self._retired: dict[int, float] = {}
        self._events: list[Event] = []
        self._lock = threading.Lock()  # guards HWM fold/reset against the sampler
        self.root_exact_peak: int | None = None
        self._root_hwm_seen: int | None = None  # the largest root VmHWM read since the last reset
        self.last_values: dict[str, int] = {}  # the latest reading's series (a new dict per reading)
        self.root_exact_source: str = SOURCE_VMHWM
        self.sampled_max: int = 0
        self.fast = procfs.AVAILABLE
        if not self._track(root_pid, 0.0, ppid_check=None):
            raise CollectorError(f"no process with PID {root_pid}")
        self._root = self._procs[root_pid]

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
        for tr in list(self._procs.values()):
            if not tr.alive:
                continue
            for child in self._children_of(tr, t):
                known = self._procs.get(child)
                if known is not None and known.alive:
                    continue
                if known is not None:  # a reused PID: the old one is finished
                    self._retire(known)
                self._track(child, t, ppid_check=tr.info.pid)

    def _retire(self, tr: _Tracked) -> None:
        tr.alive = False
        tr.close()
        self._gone.append(tr.info)
        self._retired[tr.info.pid] = tr.info.create_time
        del self._procs[tr.info.pid]

    # -- the hot path ----------------------------------------------------------------------
    def read(self, t: float) -> Reading | None:
        if self.children:
            self._discover(t)
        values: dict[str, int] = {}
        total = 0
        for pid, tr in list(self._procs.items()):
            if not tr.alive:
                continue
            rss = tr.mem.rss()
            if rss is None:
                tr.alive = False
                if pid != self.root_pid:
                    self._events.append(Event(t, "process_exit", f"{tr.info.name} ({pid}) exited", data={"pid": pid}))
                    self._retire(tr)
                continue
            info = tr.info
            info.last_t = t
            if rss > info.peak_rss_bytes:
                info.peak_rss_bytes = rss
            if pid == self.root_pid or t - tr.hwm_at >= self.hwm_every:
                self._read_hwm(tr, t)
            if t - tr.cmd_at >= _CMD_CHECK_S:
                self._check_exec(tr, t)
            values[tr.series] = rss
            total += rss
        if not values:
            return None
        values[RSS_SERIES] = total
        self.last_values = values
        if total > self.sampled_max:
            self.sampled_max = total
        return Reading(t, values)

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
        info.cmdline = [a.decode(errors="replace") for a in raw.split(b"\0") if a] if self.fast else fresh.cmdline
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
        tr.hwm_at = t
        if tr is self._root:  # phase boundaries read and reset the root's mark from another thread
            with self._lock:
                hwm = tr.mem.hwm()
                if hwm is not None:
                    self._fold_root(hwm, SOURCE_VMHWM)
                    if self._root_hwm_seen is None or hwm > self._root_hwm_seen:
                        self._root_hwm_seen = hwm
        else:
            hwm = tr.mem.hwm()
        if hwm is None:
            return
        info = tr.info
        if hwm >= info.peak_rss_bytes:
            info.peak_rss_bytes = hwm
            info.peak_source = SOURCE_VMHWM

    def _fold_root(self, value: int, source: str) -> None:
        if self.root_exact_peak is None or value > self.root_exact_peak:
            self.root_exact_peak = value
            self.root_exact_source = source

    # -- exact peaks across HWM resets (phases) ------------------------------------------------
    def reset_root_hwm(self) -> int | None:
        """Read the root's VmHWM, fold it into the peak, then reset it; returns the value read.

        Phase boundaries call this so each phase gets its own kernel peak without losing the
        session's. Returns None when the reset is not allowed (then phases use sampled peaks).
        """
        hwm, reset, _alive = self.root_hwm_boundary()
        return hwm if reset else None

    def root_hwm_boundary(self) -> tuple[int | None, bool, bool]:
        """One phase boundary: ``(VmHWM since the last reset, reset done, root alive)``.

        The value read is folded into the session's exact peak before the reset, so resets
        never lose the session's peak. ``hwm`` is None when it cannot be read (the root has
        exited, another platform); ``reset`` is False when the kernel refused ``clear_refs``, and
        then the next reading counts from an earlier point and is not a phase's own.
        """
        if not self.fast or not self._root.alive:
            return None, False, self._root.alive and self.fast
        with self._lock:
            hwm = self._root.mem.hwm()
            if hwm is None:
                return None, False, self._root.mem.rss() is not None
            self._fold_root(hwm, SOURCE_VMHWM)
            if self._root.info.peak_rss_bytes <= hwm:
                self._root.info.peak_rss_bytes = hwm
                self._root.info.peak_source = SOURCE_VMHWM
            reset = procfs.reset_hwm(self.root_pid)
            if reset:
                self._root_hwm_seen = None
            return hwm, reset, True

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
        return root + sum(v for k, v in last.items() if k != root_series and k.startswith("pid:"))

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
        if maxrss_bytes:
            with self._lock:
                self._fold_root(maxrss_bytes, source)
            if maxrss_bytes >= info.peak_rss_bytes:
                info.peak_rss_bytes = maxrss_bytes
                info.peak_source = source

    # -- what the recorder takes at the end ----------------------------------------------------
    def processes(self) -> list[ProcessInfo]:
        return self._gone + [tr.info for tr in self._procs.values()]

    def process_count(self) -> int:
        return len(self._gone) + len(self._procs)

    def series_units(self) -> dict[str, tuple[str, str]]:
        units = {RSS_SERIES: ("bytes", "RSS (tree)")}
        for info in self.processes():
            units[proc_series(info.pid)] = ("bytes", f"{info.name} ({info.pid})")
        return units

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        for tr in self._procs.values():
            tr.close()


def now_monotonic() -> float:
    return time.perf_counter()


__all__ = ["SOURCE_SAMPLED", "ProcessTreeCollector", "check_attachable", "describe"]
