"""Linux /proc: every read of the kernel's per-process files lives here.

The rest of memview asks this module (``stat``, ``cmdline``, ``alive``, ``status`` …) instead of
opening ``/proc`` itself, so a field is parsed once, one way (``comm`` may hold spaces and
parentheses: ``stat`` is split after its *last* ``)``), and "gone" always means ``None``.

Why: ``psutil.Process.memory_info()`` opens, reads and closes a file per call and
``children(recursive=True)`` scans every process on the machine (~1.3 ms); reading a kept-open
``statm`` with ``pread`` costs a few µs and ``/proc/PID/task/TID/children`` ~10 µs. Kept file
descriptors are bound to the process they were opened for, so a reused PID can never be
mistaken for the process we were watching. Nothing here raises for a vanished process: the
readers return ``None``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

AVAILABLE = sys.platform.startswith("linux") and os.path.exists("/proc/self/statm")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_GONE = (ProcessLookupError, FileNotFoundError, OSError)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read()
    except _GONE:
        return None


class Stat(NamedTuple):
    """The fields of ``/proc/PID/stat`` memview uses."""

    comm: str
    state: str  # R, S, D, Z (zombie), T, t, X …
    ppid: int
    start_ticks: int  # clock ticks since boot (field 22): with the PID, a process's identity


def stat(pid: int) -> Stat | None:
    """``pid``'s stat fields, or None if it is gone or hidden (hidepid)."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    close = raw.rfind(b")")
    rest = raw[close + 2 :].split()
    try:
        return Stat(
            raw[raw.find(b"(") + 1 : close].decode(errors="replace"), rest[0].decode(), int(rest[1]), int(rest[19])
        )
    except (IndexError, ValueError):
        return None


def split_cmdline(raw: bytes) -> list[str]:
    """A raw ``cmdline`` (NUL-separated) as arguments; empty for a zombie or a kernel thread."""
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def cmdline(pid: int) -> list[str] | None:
    """``pid``'s arguments; None if it is gone or unreadable, [] for a zombie or a kernel thread."""
    raw = _read(f"/proc/{pid}/cmdline")
    return None if raw is None else split_cmdline(raw)


def status(pid: int) -> dict[str, str] | None:
    """``/proc/PID/status`` as ``{"VmHWM": "1234 kB", "Uid": "1000 1000 1000 1000", …}``; None if gone.

    Why one parser: the capture code (TracerPid, Uid, Gid, Groups), the tracer (VmHWM, VmRSS, Name,
    PPid at an exit stop; Tgid) read it at rare moments, where a dict costs nothing. The sampler's
    hot path reads VmHWM through :class:`ProcMemory` instead.
    """
    raw = _read(f"/proc/{pid}/status")
    if raw is None:
        return None
    out: dict[str, str] = {}
    for line in raw.decode(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def kib_field(fields: dict[str, str], key: str) -> int | None:
    """A ``status`` size field (``"1234 kB"``) in bytes; None when absent (a zombie has no Vm lines)."""
    value = fields.get(key)
    return int(value.split()[0]) * 1024 if value else None


def thread_count(pid: int) -> int | None:
    """OS threads of ``pid`` (native ones included); None when ``/proc`` cannot tell."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def owner_uid(pid: int) -> int | None:
    """The real uid of ``pid`` (the owner of ``/proc/PID``); None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie), and is the same process when ``start_ticks`` is given.

    The one "is it alive" check. Where ``/proc`` hides it (hidepid, another user), ``kill(pid, 0)``
    still tells: EPERM means it exists.
    """
    st = stat(pid)
    if st is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        except OSError:
            return False
        return True
    return st.state not in ("Z", "X") and (start_ticks is None or st.start_ticks == start_ticks)


def environ_value(pid: int, name: str) -> str | None:
    """One variable of ``pid``'s environment as it was at exec; None if unset or unreadable."""
    raw = _read(f"/proc/{pid}/environ")
    prefix = name.encode() + b"="
    for item in (raw or b"").split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def cwd(pid: int) -> Path | None:
    """``pid``'s working directory; None if gone or not ours to see."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def names(pid: int) -> list[str]:
    """What ``pid`` is called: its executable's file name, ``comm``, and ``argv[0]``'s file name."""
    out = []
    try:
        out.append(os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)"))
    except OSError:
        pass
    comm = _read(f"/proc/{pid}/comm")
    if comm:
        out.append(comm.decode(errors="replace").strip())
    args = cmdline(pid)
    if args:
        out.append(os.path.basename(args[0]))
    return out


def maps_mention(pid: int, needles: tuple[str, ...]) -> str | None:
    """The first of ``needles`` found in ``pid``'s memory map (a library it loaded), else None."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                for needle in needles:
                    if needle in line:
                        return needle
    except OSError:
        return None
    return None


def holds_open(pid: int, path: str | Path) -> bool:
    """Whether ``pid`` has ``path`` open (a tool still writing its file, a FIFO still read)."""
    target = str(path)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def cgroups(pid: int) -> list[tuple[str, str]]:
    """``pid``'s cgroups as (controllers, path) pairs; controllers "" is the v2 hierarchy."""
    raw = _read(f"/proc/{pid}/cgroup")
    out = []
    for line in (raw or b"").decode(errors="replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[1], parts[2]))
    return out


#: the system-wide counters (``oom_kill``), readable by everyone
VMSTAT = "/proc/vmstat"


def ptrace_scope() -> str | None:
    """Yama's ``ptrace_scope`` ("0" lets a process trace any of its user's), None without Yama."""
    raw = _read("/proc/sys/kernel/yama/ptrace_scope")
    return raw.decode().strip() if raw is not None else None


def is_thread_of(tid: int, pid: int) -> bool:
    """Whether ``tid`` is a thread of process ``pid`` (not a process of its own)."""
    return os.path.exists(f"/proc/{pid}/task/{tid}")


def children(pid: int) -> list[int]:
    """Direct children of every thread of ``pid`` (a child belongs to the thread that forked it)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except _GONE:
        return []
    out: list[int] = []
    for tid in tids:
        raw = _read(f"/proc/{pid}/task/{tid}/children")
        if raw:
            out.extend(int(x) for x in raw.split())
    return out


def reset_hwm(pid: int) -> bool:
    """Reset the kernel's RSS high-water mark of ``pid`` to its current RSS (clear_refs 5).

    Returns False where that is not allowed (another user's process, an old kernel); callers
    then fall back to sampled peaks and say so.
    """
    try:
        fd = os.open(f"/proc/{pid}/clear_refs", os.O_WRONLY)
    except _GONE:
        return False
    try:
        os.write(fd, b"5")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class ProcFile:
    """A /proc file of one process kept open and re-read with ``pread``."""

    __slots__ = ("fd",)

    def __init__(self, pid: int, name: str) -> None:
        self.fd: int | None = os.open(f"/proc/{pid}/{name}", os.O_RDONLY)

    def read(self, size: int = 4096) -> bytes | None:
        if self.fd is None:
            return None
        try:
            return os.pread(self.fd, size, 0)
        except _GONE:
            self.close()
            return None

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class ChildrenReader:
    """Direct children of every thread of one process, through kept ``task/TID/children`` files.

    Why: opening the file per sample (path lookup in /proc, open, read, close) costs ~140 µs once
    the caches are cold, as they are between samples at 100 Hz; a ``pread`` on a kept descriptor
    costs ~10 µs and the kernel regenerates the list on every read at offset 0. The thread list
    is re-read by :meth:`refresh` (the caller decides how often): threads that appeared get a
    descriptor, threads that ended lose theirs. Like :class:`ProcFile`, a descriptor stays bound
    to the thread it was opened for, so a reused PID is never read by mistake.
    """

    __slots__ = ("_fds", "pid")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fds: dict[str, int] = {}

    def refresh(self) -> None:
        try:
            tids = set(os.listdir(f"/proc/{self.pid}/task"))
        except _GONE:
            tids = set()
        fds = self._fds
        for tid in [t for t in fds if t not in tids]:
            _close(fds.pop(tid))
        for tid in tids:
            if tid not in fds:
                try:
                    fds[tid] = os.open(f"/proc/{self.pid}/task/{tid}/children", os.O_RDONLY)
                except _GONE:
                    pass

    def read(self) -> list[int]:
        out: list[int] = []
        for fd in self._fds.values():
            size = 4096
            try:
                raw = os.pread(fd, size, 0)
                while len(raw) == size:  # hundreds of children: read the whole list
                    size *= 4
                    raw = os.pread(fd, size, 0)
            except _GONE:
                continue
            if raw:
                out.extend(map(int, raw.split()))
        return out

    def close(self) -> None:
        for fd in self._fds.values():
            _close(fd)
        self._fds.clear()


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class ProcMemory:
    """RSS and VmHWM of one process through kept file descriptors."""

    __slots__ = ("_clear", "_statm", "_status", "pid")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._statm = ProcFile(pid, "statm")  # raises if the process is already gone
        self._status: ProcFile | None = None
        self._clear: int | None = None  # kept clear_refs descriptor; -1 once refused

    @property
    def statm_fd(self) -> int | None:
        """The kept statm descriptor, for a caller that reads it inline (the sampler's hot path)."""
        return self._statm.fd

    def rss_hwm(self) -> tuple[int, int] | None:
        """(VmRSS, VmHWM) in bytes from one read of status: the envelope's per-sample read.

        None once the process has exited or is a zombie (no Vm lines). One ``pread`` of a kept
        descriptor gives both figures, so the envelope costs one read per process, not two.
        """
        st = self._status
        if st is None:
            try:
                st = self._status = ProcFile(self.pid, "status")
            except _GONE:
                return None
        raw = st.read(4096)
        if not raw:
            return None
        i = raw.find(b"VmHWM:")
        if i < 0:
            return None
        j = raw.find(b"VmRSS:", i)
        return (int(raw[j + 6 : raw.index(b"kB", j)]) * 1024, int(raw[i + 6 : raw.index(b"kB", i)]) * 1024)

    def reset_hwm(self) -> bool:
        """clear_refs 5 through a kept descriptor (bound to this process): HWM := current RSS."""
        fd = self._clear
        if fd is None:
            try:
                fd = self._clear = os.open(f"/proc/{self.pid}/clear_refs", os.O_WRONLY)
            except _GONE:
                self._clear = -1
                return False
        if fd < 0:
            return False
        try:
            os.write(fd, b"5")
            return True
        except OSError:
            return False

    def rss(self) -> int | None:
        """Resident set size in bytes; None once the process has exited (or is a zombie)."""
        raw = self._statm.read(128)
        if not raw:
            return None
        fields = raw.split()
        pages = int(fields[1])
        if pages == 0 and int(fields[0]) == 0:
            return None  # a zombie: its memory is gone, its status is no longer readable
        return pages * PAGE_SIZE

    def hwm(self) -> int | None:
        """The kernel's RSS high-water mark (VmHWM) in bytes; None when not readable."""
        if self._status is None:
            try:
                self._status = ProcFile(self.pid, "status")
            except _GONE:
                return None
        raw = self._status.read(4096)
        if not raw:
            return None
        i = raw.find(b"VmHWM:")
        if i < 0:
            return None
        return int(raw[i + 6 : raw.index(b"kB", i)]) * 1024

    def close(self) -> None:
        self._statm.close()
        if self._status is not None:
            self._status.close()
        if self._clear is not None and self._clear >= 0:
            _close(self._clear)
        self._clear = None
