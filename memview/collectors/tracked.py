"""What the tree collector keeps per process: its memory reader, its command line, its figures.

Why a module of its own: the tree collector, the high-water-mark owner and the tracer's reports
(:mod:`~memview.collectors.process`, :mod:`~memview.collectors.hwm`,
:mod:`~memview.collectors.tracer_reports`) all work on these records. On Linux the readers are
:mod:`memview.collectors.procfs`'s kept descriptors; elsewhere psutil stands in (sampled peaks).
"""

from __future__ import annotations

import psutil

from memview.collectors import procfs
from memview.model import ProcessExit, ProcessInfo, proc_series


class PsutilMemory:
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


class NoMemory:
    """The memory reader of a process known only from its exit stop: nothing left to read."""

    pid = 0

    def rss(self) -> int | None:
        return None

    def hwm(self) -> int | None:
        return None

    def close(self) -> None:
        pass


class Command:
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


class Tracked:
    __slots__ = (
        "alive",
        "children",
        "cmd",
        "cmd_at",
        "exact",
        "exit",
        "fold_perf",
        "forked",
        "hwm_at",
        "info",
        "mem",
        "series",
        "since_take",
        "statm_fd",
        "tids_at",
    )

    def __init__(
        self,
        info: ProcessInfo,
        mem: procfs.ProcMemory | PsutilMemory | NoMemory,
        children: procfs.ChildrenReader | None,
        cmd: Command | None,
    ) -> None:
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
