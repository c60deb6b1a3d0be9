"""Where marker lines come from: the MEMVIEW_FD channel, the child's output, a log file, a FIFO or socket.

Every source runs on its own daemon thread and only reads, splits lines and hands them on, so a
program that floods its channel is drained as fast as memview can parse, and one that writes
nothing costs a blocked thread. :class:`Markers` owns all the sources of one session: it prepares
what the launch needs (the inherited socket and ``MEMVIEW_FD``, pipes for ``--phase-regex``),
starts the readers once the :class:`~memview.phases.PhaseTracker` exists, and drains and stops
them when the session closes.

The MEMVIEW_FD channel is a UNIX socket pair rather than a pipe: a program writes to it exactly
as to a pipe (``echo … >&$MEMVIEW_FD`` works), but memview can also answer on it, which is how the
Python probe's ``"sync"`` boundaries are acknowledged, and shutting it down wakes the reader.
"""

from __future__ import annotations

import functools
import os
import queue
import select
import selectors
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memview.markers import MAX_LINE, RegexMarkers, parse_json_line

ENV_FD = "MEMVIEW_FD"
ENV_SYNC = "MEMVIEW_SYNC"
_CHUNK = 256 * 1024
_CHANNEL_BUFFER = 1024 * 1024  # asked for; the kernel caps it (net.core.wmem_max)


class MarkerError(Exception):
    """A marker source cannot be set up; the message is one line for the user."""


@dataclass(slots=True)
class MarkerOptions:
    """What the user asked for (CLI options); the MEMVIEW_FD channel is on for every launch."""

    regex: tuple[str, ...] = ()
    preset: tuple[str, ...] = ()
    log: str | None = None
    pipe: str | None = None
    channel: bool = True

    @property
    def wants_output(self) -> bool:
        return bool(self.regex or self.preset) and not self.log


LineHandler = Callable[[bytes, "_Stream"], None]


class _Stream:
    """One readable thing: its fd, its partial line, how to read it, answer it, pass it through."""

    __slots__ = ("ack", "buf", "close", "fd", "on_line", "passthrough", "read", "skipping", "via", "waits")

    def __init__(self, fd: int, read: Callable[[int], bytes], on_line: LineHandler, via: str,
                 close: Callable[[], None], ack: Callable[[bytes], None] | None = None,
                 passthrough: int | None = None, waits: bool = True) -> None:
        self.waits = waits  # the session's end waits (briefly) for its EOF: the child's own channels
        self.fd = fd
        self.read = read
        self.on_line = on_line
        self.via = via
        self.close = close
        self.ack = ack
        self.passthrough = passthrough
        self.buf = bytearray()
        self.skipping = False


class _Reader(threading.Thread):
    """A select loop over streams (and listening sockets) that ends when all reach EOF or on stop.

    Reading and handling are two threads: this one only reads (and passes output through), a
    second one splits and handles lines. So a program that floods its channel waits at most for
    a ``recv``, never for memview's parsing; what is read and not yet handled is held in memory,
    up to ``MAX_BACKLOG`` bytes (beyond that chunks are dropped and counted in a warning).
    """

    MAX_BACKLOG = 64 * 1024 * 1024

    def __init__(self, name: str, warn: Callable[[str], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._warn = warn
        self._waiting = 0
        self._queue: queue.SimpleQueue[tuple[_Stream, bytes | None] | None] = queue.SimpleQueue()
        self._bytes_in = 0  # written by the reading thread only
        self._bytes_out = 0  # written by the handling thread only
        self._dropped = 0
        self._handler = threading.Thread(target=self._handle_loop, name=f"{name}-lines", daemon=True)
        self.drained = threading.Event()  # every stream the end waits for has reached EOF and been handled
        self.drained.set()

    def add(self, stream: _Stream) -> None:
        self._sel.register(stream.fd, selectors.EVENT_READ, stream)
        if stream.waits:
            self._waiting += 1
            self.drained.clear()

    @property
    def empty(self) -> bool:
        return len(self._sel.get_map()) <= 1

    def add_listener(self, sock: socket.socket, accept: Callable[[], None]) -> None:
        self._sel.register(sock.fileno(), selectors.EVENT_READ, accept)

    def start(self) -> None:
        self._handler.start()
        super().start()

    # -- the reading thread ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while len(self._sel.get_map()) > 1:
                for key, _ in self._sel.select():
                    if key.fd == self._wake_r:
                        self._drain_all()
                        return
                    if callable(key.data):
                        key.data()
                    else:
                        self._read(key.data)
        finally:
            for key in list(self._sel.get_map().values()):
                if isinstance(key.data, _Stream):
                    self._finish(key.data)
            self._sel.close()
            self._queue.put(None)

    def stop(self, timeout: float) -> None:
        """Let the child's streams reach EOF for up to ``timeout`` seconds, then read what is left and end."""
        if self.is_alive():
            self.drained.wait(timeout)
        if self.is_alive():
            os.write(self._wake_w, b"x")
            self.join(5.0)
        # every line read is handled before the session closes (a flood's lines are counted, never
        # lost silently): wait as long as the handler makes progress, not a fixed time
        done = -1
        while self._handler.is_alive() and self._bytes_out != done:
            done = self._bytes_out
            self._handler.join(2.0)
        if not self.is_alive() and self._wake_w >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def _read(self, stream: _Stream) -> bool:
        """Read once; False when nothing more is there now (EOF, or nothing buffered)."""
        try:
            data = stream.read(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._finish(stream)
            return False
        if stream.passthrough is not None and not _write_all(stream.passthrough, data):
            stream.passthrough = None  # the reader of memview's output went away: so does the child's
            self._finish(stream)
            return False
        if self._bytes_in - self._bytes_out > self.MAX_BACKLOG:
            self._dropped += len(data)
            return True
        self._bytes_in += len(data)
        self._queue.put((stream, data))
        return True

    def _drain_all(self) -> None:
        """On stop: read whatever is already buffered in every stream without waiting for more."""
        for key in list(self._sel.get_map().values()):
            stream = key.data
            if not isinstance(stream, _Stream):
                continue
            try:
                os.set_blocking(stream.fd, False)
            except OSError:
                continue
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and self._read(stream):
                pass

    def _finish(self, stream: _Stream) -> None:
        try:
            self._sel.unregister(stream.fd)
        except (KeyError, ValueError):
            return  # already finished
        self._queue.put((stream, None))

    # -- the handling thread -----------------------------------------------------------------------
    def _handle_loop(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                break
            stream, data = item
            if data is None:
                self._eof(stream)
                continue
            self._lines(stream, data)
            self._bytes_out += len(data)
        if self._dropped:
            self._warn(f"memview fell behind reading markers: {self._dropped} bytes of marker lines were dropped")

    def _eof(self, stream: _Stream) -> None:
        if stream.buf and not stream.skipping:
            self._line(stream, bytes(stream.buf))
        stream.buf.clear()
        stream.close()
        if stream.waits:
            self._waiting -= 1
            if self._waiting <= 0:
                self.drained.set()

    def _lines(self, stream: _Stream, data: bytes) -> None:
        if b"\n" not in data:
            if not stream.skipping:
                stream.buf += data
                if len(stream.buf) > MAX_LINE:
                    self._too_long(stream)
            return
        stream.buf += data
        lines = bytes(stream.buf).split(b"\n")  # bytes, as the handlers take them
        rest = lines.pop()
        if stream.skipping:
            stream.skipping = False
            lines = lines[1:]
        for line in lines:
            if len(line) > MAX_LINE:
                self._warn(f"ignored a marker line longer than {MAX_LINE // 1024} KiB ({stream.via})")
                continue
            self._line(stream, line)
        stream.buf = bytearray(rest)
        if len(stream.buf) > MAX_LINE:
            self._too_long(stream)

    def _too_long(self, stream: _Stream) -> None:
        self._warn(f"ignored a marker line longer than {MAX_LINE // 1024} KiB ({stream.via})")
        stream.buf.clear()
        stream.skipping = True

    def _line(self, stream: _Stream, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            stream.on_line(line, stream)
        except Exception as exc:  # a bug in handling one line must not stop the channel
            self._warn(f"a marker line could not be handled: {exc!r}")


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:
            time.sleep(0.001)
            continue
        except OSError:
            return False
        view = view[n:]
    return True


# -- the sources ------------------------------------------------------------------------------------

class _Channel:
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

    def stream(self, on_line: LineHandler) -> _Stream:
        sock = self.ours

        def ack(token: bytes) -> None:
            try:
                sock.send(token + b"\n", socket.MSG_DONTWAIT)
            except OSError:
                pass  # nobody reads acks (or the buffer is full): never block the reader for them

        return _Stream(sock.fileno(), sock.recv, on_line, "fd", self.close, ack)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


class _PipePath:
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
            raise MarkerError(f"--phase-pipe {self.path}: the {kind} belongs to uid {st.st_uid}, not to memview's "
                              "user or the target's; refusing it (another user could inject phases)")
        if stat.S_ISFIFO(st.st_mode) and st.st_mode & 0o002:
            raise MarkerError(f"--phase-pipe {self.path}: the FIFO is writable by every user (mode "
                              f"{stat.S_IMODE(st.st_mode):o}); refusing it (chmod o-w, or let memview create it)")

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

    def attach(self, reader: _Reader, on_line: LineHandler) -> None:
        if self.fifo_fd is not None:
            fd = self.fifo_fd
            reader.add(_Stream(fd, lambda n: os.read(fd, n), on_line, "pipe", lambda: None, waits=False))
            return
        server = self.server
        assert server is not None

        def accept() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            uid = _peer_uid(conn)
            if uid is not None and uid not in self.allowed:
                conn.close()  # another user (root may have loosened the file's mode): not a phase source
                reader._warn(f"refused a --phase-pipe connection from uid {uid} (not memview's or the target's user)")
                return

            def ack(token: bytes, conn: socket.socket = conn) -> None:
                try:
                    conn.send(token + b"\n", socket.MSG_DONTWAIT)
                except OSError:
                    pass

            reader.add(_Stream(conn.fileno(), conn.recv, on_line, "socket", conn.close, ack, waits=False))

        reader.add_listener(server, accept)

    def close(self) -> None:
        if self.fifo_fd is not None:
            try:
                os.close(self.fifo_fd)
            except OSError:
                pass
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


def _peer_uid(conn: socket.socket) -> int | None:
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


def uid_of(pid: int) -> int | None:
    """The real uid of ``pid`` (the owner of ``/proc/PID``); None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


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

    def __init__(self, path: str, on_line: Callable[[bytes], None], poll_s: float = 0.1,
                 warn: Callable[[str], None] | None = None) -> None:
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

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        self.join(timeout)
        if not self.is_alive() and self._wake_r >= 0:
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
            chunk = self._f.read(_CHUNK)
            if not chunk:
                return
            data = self._buf + chunk
            lines = data.split(b"\n")
            self._buf = lines.pop()
            if len(self._buf) > MAX_LINE:
                self._buf = b""
            for line in lines:
                self.on_line(line.rstrip(b"\r"))


# -- one session's sources ----------------------------------------------------------------------------

class Markers:
    """All marker sources of one session, from launch preparation to the last drained line."""

    def __init__(self, options: MarkerOptions | None = None, launched: bool = True,
                 target_pid: int | None = None) -> None:
        self.options = options or MarkerOptions()
        allowed = {os.geteuid()}
        if target_pid is not None and (uid := uid_of(target_pid)) is not None:
            allowed.add(uid)
        try:
            self.regex = RegexMarkers(self.options.regex, self.options.preset)
        except ValueError as exc:
            raise MarkerError(str(exc)) from None
        self.launched = launched
        if not launched and (self.options.regex or self.options.preset) and not self.options.log:
            raise MarkerError("--phase-regex and --phase-preset need --phase-log FILE here: memview cannot "
                              "read the output of a process it did not start")
        self.channel: _Channel | None = None
        self.pipe: _PipePath | None = None
        self._pumps: list[tuple[int, Any]] = []  # (memview's own fd to pass through to, child pipe)
        self._reader: _Reader | None = None
        self._log: LogFollower | None = None
        self._tracker: Any = None
        if self.options.log:
            self._log = LogFollower(self.options.log, self._regex_log if self.regex else self._json_log)
        if self.options.pipe:
            self.pipe = _PipePath(self.options.pipe, frozenset(allowed))
        if launched and self.options.channel and hasattr(socket, "socketpair") and os.name == "posix":
            self.channel = _Channel()

    # -- before and after the fork --------------------------------------------------------------
    def launch_kwargs(self, env: dict[str, str] | None, **given: Any) -> dict[str, Any]:
        """Keyword arguments for :func:`memview.runner.launch`: env, pass_fds, stdout/stderr pipes."""
        kw: dict[str, Any] = {}
        if self.channel is not None:
            child_env = dict(os.environ if env is None else env)
            child_env[ENV_FD] = str(self.channel.child_fd)
            child_env.setdefault(ENV_SYNC, "1")  # "sync" lines are acknowledged (the Python probe waits for it)
            kw["env"] = child_env
            kw["pass_fds"] = (*given.get("pass_fds", ()), self.channel.child_fd)
        if self.options.wants_output and self.launched:
            if given.get("stdout") is None:
                kw["stdout"] = subprocess.PIPE
            if given.get("stderr") is None:
                kw["stderr"] = subprocess.PIPE
        return kw

    def after_launch(self, proc: subprocess.Popen[bytes] | None) -> None:
        """The child has its copies now: close ours of its end, take its output pipes."""
        if self.channel is not None:
            self.channel.close_theirs()
        if proc is not None:
            for pipe, own_fd in ((proc.stdout, 1), (proc.stderr, 2)):
                if pipe is not None and self.options.wants_output:
                    self._pumps.append((own_fd, pipe))

    # -- reading -----------------------------------------------------------------------------------
    def start(self, tracker: Any) -> None:
        self._tracker = tracker
        warn = tracker.warn
        reader = _Reader("memview-markers", lambda msg: warn(msg))
        if self.channel is not None:
            reader.add(self.channel.stream(self._json_line))
        for own_fd, pipe in self._pumps:
            fd = pipe.fileno()
            via = "stdout" if own_fd == 1 else "stderr"
            reader.add(_Stream(fd, functools.partial(os.read, fd), self._regex_line, via, pipe.close,
                               passthrough=own_fd))
        if self.pipe is not None:
            self.pipe.attach(reader, self._json_line)
        if not reader.empty:
            self._reader = reader
            reader.start()
        if self._log is not None:
            self._log.warn = warn
            self._log.start()

    def _json_line(self, line: bytes, stream: _Stream) -> None:
        if b'"mark"' in line and b'"phase_' not in line and self._tracker.skip_mark():
            return  # a flood of marks: counted, not parsed
        token = self._tracker.handle(parse_json_line(line, stream.via))
        if token is not None and stream.ack is not None:
            stream.ack(token.encode())

    def _regex_line(self, line: bytes, stream: _Stream) -> None:
        if self.regex:
            self._tracker.handle(self.regex.match(line.decode("utf-8", "replace"), stream.via))

    def _json_log(self, line: bytes) -> None:
        self._tracker.handle(parse_json_line(line, "log"))

    def _regex_log(self, line: bytes) -> None:
        self._tracker.handle(self.regex.match(line.decode("utf-8", "replace"), "log"))

    def stop(self, timeout: float = 1.0) -> None:
        """Drain: give the streams ``timeout`` seconds to reach EOF (the child has usually exited)."""
        if self._reader is not None:
            self._reader.stop(timeout)
            self._reader = None
        if self._log is not None and self._log.is_alive():
            self._log.stop()
        self.close()

    def close(self) -> None:
        """Release everything (idempotent; also after a failed launch, without reading)."""
        if self.channel is not None:
            self.channel.close()
        for _own, pipe in self._pumps:
            try:
                pipe.close()
            except OSError:
                pass
        if self.pipe is not None:
            self.pipe.close()
        if self._log is not None and not self._log.is_alive() and self._log._f is not None:
            self._log._f.close()  # never started (a failed launch)
            self._log._f = None
        if self._log is not None and not self._log.is_alive() and self._log._wake_r >= 0:
            for fd in (self._log._wake_r, self._log._wake_w):
                os.close(fd)
            self._log._wake_r = self._log._wake_w = -1

