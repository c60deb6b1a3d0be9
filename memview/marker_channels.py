"""The marker channels memview listens on: the MEMVIEW_FD socket pair and ``--phase-pipe PATH``.

Why a module of its own: both are endpoints memview creates (or adopts) and must secure and
remove again, and both may answer a line (a ``"sync"`` token) on the same connection it came on.
The MEMVIEW_FD channel is a UNIX socket pair rather than a pipe: a program writes to it exactly
as to a pipe (``echo … >&$MEMVIEW_FD`` works), but memview can also answer on it, which is how the
Python probe's ``"sync"`` boundaries are acknowledged, and shutting it down wakes the reader.
A ``--phase-pipe`` path is refused when another user owns it or may write to it: they could
inject phases into, or end, a recording.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from memview.marker_reader import LineHandler, LineReader, Stream
from memview.markers import MarkerError

_CHANNEL_BUFFER = 1024 * 1024  # asked for; the kernel caps it (net.core.wmem_max)


class Channel:
    """The MEMVIEW_FD socket pair: the child's end is inherited, memview reads (and acks) the other."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for opt in (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF):
            if opt is None:
                continue
            try:
                self.theirs.setsockopt(socket.SOL_SOCKET, opt, _CHANNEL_BUFFER)
                break
            except OSError:
                continue
        self.theirs.set_inheritable(True)

    @property
    def child_fd(self) -> int:
        return self.theirs.fileno()

    def close_theirs(self) -> None:
        self.theirs.close()

    def stream(self, on_line: LineHandler) -> Stream:
        sock = self.ours

        def ack(token: bytes) -> None:
            try:
                sock.send(token + b"\n", socket.MSG_DONTWAIT)
            except OSError:
                pass  # nobody reads acks (or the buffer is full): never block the reader for them

        return Stream(sock.fileno(), sock.recv, on_line, "fd", self.close, ack)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


class PipePath:
    """``--phase-pipe PATH``: a FIFO (opened read-write, so writers may come and go) or a UNIX socket.

    An existing FIFO is read; an existing socket file nobody listens on is replaced; a missing path
    becomes a socket if it ends in ``.sock``, else a FIFO. What memview created it removes at the end.
    """

    def __init__(self, path: str, allowed_uids: frozenset[int] | None = None) -> None:
        self.path = path
        self.created = False
        self.fifo_fd: int | None = None
        self.server: socket.socket | None = None
        # who may announce phases: memview's user and the target's (another user's channel could
        # inject phases into, or end, a recording made as root)
        self.allowed = allowed_uids if allowed_uids is not None else frozenset({os.geteuid()})
        try:
            st: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise MarkerError(f"cannot use --phase-pipe {path}: {exc.strerror or exc}") from None
        if st is not None and (stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)):
            self._check_owner(st)
        if st is not None and stat.S_ISFIFO(st.st_mode):
            self._open_fifo()
        elif st is not None and stat.S_ISSOCK(st.st_mode):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # a stale socket file: its server is gone
                self._listen()
            else:
                probe.close()
                raise MarkerError(f"--phase-pipe {path}: another program is already listening on that socket")
        elif st is not None:
            raise MarkerError(f"--phase-pipe {path} exists and is neither a FIFO nor a UNIX socket")
        elif path.endswith(".sock"):
            self._listen()
        else:
            try:
                os.mkfifo(path, 0o600)
            except OSError as exc:
                raise MarkerError(f"cannot create the FIFO {path}: {exc.strerror or exc}") from None
            self.created = True
            self._open_fifo()

    def _check_owner(self, st: os.stat_result) -> None:
        """Refuse a channel another user owns or may write to: they would write our phases."""
        kind = "FIFO" if stat.S_ISFIFO(st.st_mode) else "socket"
        if st.st_uid not in self.allowed:
            raise MarkerError(
                f"--phase-pipe {self.path}: the {kind} belongs to uid {st.st_uid}, not to memview's "
                "user or the target's; refusing it (another user could inject phases)"
            )
        if stat.S_ISFIFO(st.st_mode) and st.st_mode & 0o002:
            raise MarkerError(
                f"--phase-pipe {self.path}: the FIFO is writable by every user (mode "
                f"{stat.S_IMODE(st.st_mode):o}); refusing it (chmod o-w, or let memview create it)"
            )

    def _open_fifo(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise MarkerError(f"cannot open the FIFO {self.path}: {exc.strerror or exc}") from None
        st = os.fstat(fd)  # the file opened, not the name checked: it may have been swapped in between
        try:
            if not stat.S_ISFIFO(st.st_mode):
                raise MarkerError(f"--phase-pipe {self.path} is no longer a FIFO")
            self._check_owner(st)
        except MarkerError:
            os.close(fd)
            raise
        self.fifo_fd = fd

    def _listen(self) -> None:
        # bound under a temporary name and renamed once listening: a program that waits for the
        # path to appear and connects at once must not find a socket that refuses connections
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            self.server.bind(tmp)
            os.chmod(tmp, 0o600)  # only our user may connect (bind honours the umask: often 0o755)
            self.server.listen(16)
            os.rename(tmp, self.path)
        except OSError as exc:
            self.server.close()
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise MarkerError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        self.created = True

    def attach(self, reader: LineReader, on_line: LineHandler) -> None:
        if self.fifo_fd is not None:
            fd = self.fifo_fd
            reader.add(Stream(fd, lambda n: os.read(fd, n), on_line, "pipe", lambda: None, waits=False))
            return
        server = self.server
        assert server is not None

        def accept() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            uid = peer_uid(conn)
            if uid is not None and uid not in self.allowed:
                conn.close()  # another user (root may have loosened the file's mode): not a phase source
                reader.warn(f"refused a --phase-pipe connection from uid {uid} (not memview's or the target's user)")
                return

            def ack(token: bytes, conn: socket.socket = conn) -> None:
                try:
                    conn.send(token + b"\n", socket.MSG_DONTWAIT)
                except OSError:
                    pass

            reader.add(Stream(conn.fileno(), conn.recv, on_line, "socket", conn.close, ack, waits=False))

        reader.add_listener(server, accept)

    def close(self) -> None:
        if self.fifo_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fifo_fd)
            self.fifo_fd = None
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.created:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.created = False


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end of a UNIX socket (Linux SO_PEERCRED), None elsewhere."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    try:
        import struct

        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    except OSError:
        return None
    return uid
