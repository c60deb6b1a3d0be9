"""What a process is, read once (name, parent, command line, start time), and whether it can be watched.

Why a module of its own: the tree collector describes each process that joins the tree, and
``memview attach`` checks its target first with a message the user can act on; neither needs the
other's machinery. On Linux the figures come from :mod:`memview.collectors.procfs`; elsewhere
from psutil.
"""

from __future__ import annotations

import os

import psutil

from memview.collectors import procfs
from memview.collectors.base import CollectorError
from memview.model import ProcessInfo

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def boot_time() -> float:
    """The machine's boot time (epoch seconds): start ticks + this = a process's start time."""
    return psutil.boot_time()


def describe(pid: int, boot: float) -> ProcessInfo | None:
    """Name, parent, command line and start time of ``pid``; None if it is already gone."""
    if procfs.AVAILABLE:
        st = procfs.stat(pid)
        if st is None:
            return None
        return ProcessInfo(pid, st.ppid, st.comm, procfs.cmdline(pid) or [], boot + st.start_ticks / CLK_TCK, 0.0, 0.0)
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
