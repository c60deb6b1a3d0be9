"""The kernel calls the tracer makes, through libc (ctypes): ptrace requests and subreaper status.

Why a module: :mod:`memview.collectors.tracer` is the tracer's logic (which stop means what, who
is traced); the request numbers, the libc binding and the process-wide subreaper switch are
plumbing it shares with nothing else, and a reader of the logic need not wade through them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import sys
import threading

AVAILABLE = sys.platform.startswith("linux")

PTRACE_CONT = 7
PTRACE_DETACH = 17
PTRACE_GETEVENTMSG = 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
O_TRACEFORK, O_TRACEVFORK, O_TRACECLONE, O_TRACEEXEC, O_TRACEEXIT = 0x2, 0x4, 0x8, 0x10, 0x40
OPTIONS = O_TRACEFORK | O_TRACEVFORK | O_TRACECLONE | O_TRACEEXEC | O_TRACEEXIT
EV_FORK, EV_VFORK, EV_CLONE, EV_EXEC, EV_EXIT, EV_STOP = 1, 2, 3, 4, 6, 128
WALL = 0x40000000
WNOTHREAD = 0x20000000
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

_libc = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        _libc.ptrace.restype = ctypes.c_long
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.prctl.restype = ctypes.c_int
    return _libc


def ptrace(request: int, pid: int, data: int = 0) -> int:
    """0 on success, else the errno (ESRCH for a tracee that died meanwhile is routine)."""
    ctypes.set_errno(0)
    if _lib().ptrace(request, pid, None, ctypes.c_void_p(data)) == -1:
        return ctypes.get_errno() or errno.EIO
    return 0


def event_msg(pid: int) -> int | None:
    out = ctypes.c_ulong(0)
    ctypes.set_errno(0)
    if _lib().ptrace(PTRACE_GETEVENTMSG, pid, None, ctypes.byref(out)) == -1:
        return None
    return int(out.value)


_subreaper_lock = threading.Lock()
_subreaper_users = 0  # tracers that hold subreaper status (a GUI may record several commands at once)
_subreaper_before = False  # the process was a subreaper before memview made it one: leave it so


def is_subreaper() -> bool:
    """Whether this process is a child subreaper now (PR_GET_CHILD_SUBREAPER)."""
    if not AVAILABLE:
        return False
    flag = ctypes.c_int(0)
    try:
        return _lib().prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag), 0, 0, 0) == 0 and bool(flag.value)
    except (OSError, AttributeError):
        return False


def _set_subreaper(on: bool) -> bool:
    try:
        return _lib().prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def hold_subreaper() -> bool:
    """Make this process the reaper of its descendants' orphans (daemons stay in the tree).

    Counted: status is dropped by the matching :func:`release_subreaper` of the last holder.
    """
    global _subreaper_users, _subreaper_before
    if not AVAILABLE:
        return False
    with _subreaper_lock:
        if _subreaper_users == 0:
            _subreaper_before = is_subreaper()
            if not _subreaper_before and not _set_subreaper(True):
                return False
        _subreaper_users += 1
        return True


def release_subreaper() -> None:
    """One holder is done; the last one gives subreaper status back (unless it predates memview)."""
    global _subreaper_users
    with _subreaper_lock:
        if _subreaper_users <= 0:
            return
        _subreaper_users -= 1
        if _subreaper_users == 0 and not _subreaper_before:
            _set_subreaper(False)
