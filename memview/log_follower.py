"""``--phase-log FILE`` followed like ``tail -F``: new lines only, through rotation and truncation.

Why a module of its own: following a file is not reading a descriptor to EOF (the file grows,
is rotated away, truncated in place, replaced by a FIFO); it has its own thread, woken by
inotify events of the file's folder, and none of the select loop of :mod:`memview.marker_reader`.
"""

from __future__ import annotations

import os
import select
import stat
import threading
from collections.abc import Callable
from typing import Any

from memview.marker_reader import CHUNK
from memview.markers import MAX_LINE, MarkerError


def _not_a_log(path: str, st: os.stat_result) -> str:
    if stat.S_ISFIFO(st.st_mode):
        return f"--phase-log {path} is a FIFO: use --phase-pipe {path} for a pipe (--phase-log follows a regular file)"
    return f"--phase-log {path} is not a regular file"


def _open_log(path: str) -> Any:
    """Open a log file without ever blocking: ``O_NONBLOCK`` (a FIFO swapped in would block an
    ordinary ``open`` until a writer appears, before launch and deaf to SIGTERM). None when what
    was opened is not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


class _Inotify:
    """Change notifications for one folder through Linux inotify (ctypes; no dependency).

    Watching the folder, not the file, sees every event a follower needs: writes to the file, its
    rotation (moved away, a new one created), truncation, deletion. None where unavailable.
    """

    _MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200  # MODIFY ATTRIB CLOSE_WRITE MOVED_FROM/TO CREATE DELETE

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def watch(cls, folder: str) -> _Inotify | None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(0o4000 | 0o2000000)  # IN_NONBLOCK | IN_CLOEXEC
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, os.fsencode(folder or "."), cls._MASK) < 0:
            os.close(fd)
            return None
        return cls(fd)

    def drain(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class LogFollower(threading.Thread):
    """``--phase-log FILE`` followed like ``tail -F``: new lines only, through rotation and truncation.

    A file that exists when following starts is read from its end (its old lines are history); a
    file that appears later, or replaces the followed one, is read from its start. Lines are read
    as soon as they are written: the follower waits on inotify events of the file's folder (a
    100 ms poll put a log phase's boundary up to 100 ms — 100+ MiB of allocation — late). Where
    inotify is not available it polls every ``poll_s``; with inotify, ``poll_s`` only bounds how
    long a missed event could delay a line.
    """

    _warned: str

    def _warn_once(self, message: str) -> None:
        if message != self._warned and self.warn is not None:
            self._warned = message
            self.warn(message)

    def __init__(
        self,
        path: str,
        on_line: Callable[[bytes], None],
        poll_s: float = 0.1,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name=f"memview-phase-log-{os.path.basename(path)}", daemon=True)
        self.path = path
        self.on_line = on_line
        self.poll_s = poll_s
        self._halt = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._f: Any = None
        self._id: tuple[int, int] | None = None
        self._buf = b""
        self._first = True
        self.warn = warn
        self._warned = ""
        self._poll(read=False)  # where following starts is decided now, not when the thread gets going

    def run(self) -> None:
        notify = _Inotify.watch(os.path.dirname(os.path.abspath(self.path)))
        try:
            while True:
                self._poll()
                if notify is None:
                    if self._halt.wait(self.poll_s):
                        break
                    continue
                ready, _, _ = select.select([notify.fd, self._wake_r], [], [], max(self.poll_s, 1.0))
                if self._halt.is_set():
                    break
                if notify.fd in ready:
                    notify.drain()
        finally:
            if notify is not None:
                notify.close()
        self._poll()  # what was written up to the stop
        if self._f is not None:
            self._f.close()
            self._f = None

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        self.join(timeout)
        if not self.is_alive():
            self.close()

    def close(self) -> None:
        """Release the file and the wake-up pipe (idempotent; for a follower never started, too)."""
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._wake_r >= 0:
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            self._wake_r = self._wake_w = -1

    def _poll(self, read: bool = True) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if self._f is not None and (st is None or (st.st_dev, st.st_ino) != self._id):
            self._read()  # rotated away or removed: finish the old file, then follow the new one
            self._f.close()
            self._f = None
        if self._f is None:
            if st is None:
                self._first = False
                return
            if not stat.S_ISREG(st.st_mode):
                if self._first:
                    raise MarkerError(_not_a_log(self.path, st))
                self._warn_once(_not_a_log(self.path, st))
                return
            try:
                self._f = _open_log(self.path)
            except OSError:
                return
            if self._f is None:  # swapped for something else between stat and open
                return
            st = os.fstat(self._f.fileno())
            self._id = (st.st_dev, st.st_ino)
            if self._first:
                self._f.seek(0, os.SEEK_END)
            self._buf = b""
            self._first = False
        elif st is not None and st.st_size < self._f.tell():
            self._f.seek(0)  # truncated in place (copytruncate)
            self._buf = b""
        if read:
            self._read()

    def _read(self) -> None:
        while True:
            chunk = self._f.read(CHUNK)
            if not chunk:
                return
            data = self._buf + chunk
            lines = data.split(b"\n")
            self._buf = lines.pop()
            if len(self._buf) > MAX_LINE:
                self._buf = b""
            for line in lines:
                self.on_line(line.rstrip(b"\r"))
