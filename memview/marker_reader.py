"""Reading marker lines off many file descriptors: one select loop, lines handled on a second thread.

Why a module of its own: every marker source that is a file descriptor (the MEMVIEW_FD channel,
a child's stdout/stderr pumped through for ``--phase-regex``, a ``--phase-pipe`` FIFO or its
socket connections) is read by the same two threads, and what makes that safe is here: the
reading thread only reads (and passes output through), so a program that floods its channel
waits at most for a ``recv``, never for memview's parsing; the handling thread splits lines,
drops over-long ones with a warning and hands each to its source's handler.
"""

from __future__ import annotations

import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable

from memview.markers import MAX_LINE

CHUNK = 256 * 1024  # bytes read per call


LineHandler = Callable[[bytes, "Stream"], None]


class Stream:
    """One readable thing: its fd, its partial line, how to read it, answer it, pass it through."""

    __slots__ = ("ack", "buf", "close", "fd", "on_line", "passthrough", "read", "skipping", "via", "waits")

    def __init__(
        self,
        fd: int,
        read: Callable[[int], bytes],
        on_line: LineHandler,
        via: str,
        close: Callable[[], None],
        ack: Callable[[bytes], None] | None = None,
        passthrough: int | None = None,
        waits: bool = True,
    ) -> None:
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


class LineReader(threading.Thread):
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
        self.warn = warn
        self._waiting = 0
        self._queue: queue.SimpleQueue[tuple[Stream, bytes | None] | None] = queue.SimpleQueue()
        self._bytes_in = 0  # written by the reading thread only
        self._bytes_out = 0  # written by the handling thread only
        self._dropped = 0
        self._handler = threading.Thread(target=self._handle_loop, name=f"{name}-lines", daemon=True)
        self.drained = threading.Event()  # every stream the end waits for has reached EOF and been handled
        self.drained.set()

    def add(self, stream: Stream) -> None:
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
                if isinstance(key.data, Stream):
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

    def _read(self, stream: Stream) -> bool:
        """Read once; False when nothing more is there now (EOF, or nothing buffered)."""
        try:
            data = stream.read(CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._finish(stream)
            return False
        if stream.passthrough is not None and not write_all(stream.passthrough, data):
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
            if not isinstance(stream, Stream):
                continue
            try:
                os.set_blocking(stream.fd, False)
            except OSError:
                continue
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and self._read(stream):
                pass

    def _finish(self, stream: Stream) -> None:
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
            self.warn(f"memview fell behind reading markers: {self._dropped} bytes of marker lines were dropped")

    def _eof(self, stream: Stream) -> None:
        if stream.buf and not stream.skipping:
            self._line(stream, bytes(stream.buf))
        stream.buf.clear()
        stream.close()
        if stream.waits:
            self._waiting -= 1
            if self._waiting <= 0:
                self.drained.set()

    def _lines(self, stream: Stream, data: bytes) -> None:
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
                self.warn(f"ignored a marker line longer than {MAX_LINE // 1024} KiB ({stream.via})")
                continue
            self._line(stream, line)
        stream.buf = bytearray(rest)
        if len(stream.buf) > MAX_LINE:
            self._too_long(stream)

    def _too_long(self, stream: Stream) -> None:
        self.warn(f"ignored a marker line longer than {MAX_LINE // 1024} KiB ({stream.via})")
        stream.buf.clear()
        stream.skipping = True

    def _line(self, stream: Stream, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            stream.on_line(line, stream)
        except Exception as exc:  # a bug in handling one line must not stop the channel
            self.warn(f"a marker line could not be handled: {exc!r}")


def write_all(fd: int, data: bytes) -> bool:
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
