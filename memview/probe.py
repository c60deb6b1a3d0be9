"""Announce phases to memview from inside a Python program: ``with phase("parse"): …``, ``mark("…")``.

Standard library only, and a no-op unless the program runs under ``memview run`` (which sets
``MEMVIEW_FD``), so it can stay in production code. This file does not import anything else from
memview: copy it into a project that does not depend on memview.

Each call writes one JSON line to the inherited descriptor (the protocol in docs/phases.md). A
phase boundary also asks memview to acknowledge it (``"sync"``) when memview said it answers
(``MEMVIEW_SYNC=1``), and waits up to ``SYNC_TIMEOUT_S`` for the answer: memview reads and resets
the kernel's high-water mark when it handles a boundary, so waiting makes that moment the
program's own, and memory the program touches right after ``phase(...)`` cannot be counted in the
previous phase. Without memview nothing is sent and nothing waits; after three unanswered
boundaries in a row the probe stops waiting.

``phase("load", tracemalloc=True)`` also sends the ten allocation sites that grew most during
the phase (a ``tracemalloc`` snapshot diff), so the phase's row says *what* grew. Tracing costs
time and memory of its own while it is on.
"""

from __future__ import annotations

import json
import os
import select
import stat
import threading
import time
from types import TracebackType
from typing import Any

ENV_FD = "MEMVIEW_FD"
ENV_SYNC = "MEMVIEW_SYNC"  # "1": memview acknowledges "sync" lines (set by memview run; "0" turns waiting off)
SYNC_TIMEOUT_S = 0.5
_MAX_MISSES = 3  # consecutive unanswered boundaries before the probe stops waiting for answers

_lock = threading.Lock()
_encoder = json.JSONEncoder(separators=(",", ":"), default=str)  # one encoder: json.dumps(**kw) builds one per call
_state: dict[str, Any] = {"pid": None, "fd": None, "sync": True, "seq": 0, "acks": b"", "misses": 0}


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _channel() -> int | None:
    """The descriptor to write to, checked once per process (a fork re-checks)."""
    pid = os.getpid()
    if _state["pid"] == pid:
        return _state["fd"]
    _state.update(pid=pid, fd=None, seq=0, acks=b"", misses=0, sock=None)
    raw = os.environ.get(ENV_FD, "")
    if raw.isdigit():
        fd = int(raw)
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            mode = 0  # not inherited (e.g. subprocess closed it): stay silent
        # only a socket or a pipe: a reused descriptor number must never get our lines
        if stat.S_ISSOCK(mode) or stat.S_ISFIFO(mode):
            _state["fd"] = fd
            _state["sync"] = stat.S_ISSOCK(mode) and os.environ.get(ENV_SYNC) == "1"
    return _state["fd"]


def enabled() -> bool:
    """True when running under memview (a channel to write to exists)."""
    return _channel() is not None


def _send(obj: dict[str, Any], sync: bool = False) -> None:
    with _lock:
        fd = _channel()
        if fd is None:
            return
        token = None
        if sync and _state["sync"]:
            _state["seq"] += 1
            token = f"{_state['pid']}.{_state['seq']}"
            obj["sync"] = token
        line = (_encoder.encode(obj) + "\n").encode()
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            _state["fd"] = None  # memview went away: be a no-op from now on
            return
        if token is not None:
            _wait_ack(fd, token.encode())


def _wait_ack(fd: int, token: bytes) -> None:
    """Wait for memview's answer to ``token``, taking only our own answers off the channel.

    The channel is shared by every process that inherited it (a harness and its workers, a pool):
    an answer is looked at with ``MSG_PEEK`` and only read when it is ours, so one worker never
    swallows another's (which then waited its full timeout and stopped waiting for good). An
    answer for a process that has exited is read and dropped, so it cannot block the others.
    """
    import socket

    deadline = time.monotonic() + SYNC_TIMEOUT_S
    mine = token.split(b".", 1)[0] + b"."
    line = token + b"\n"
    sock = _state.get("sock")
    if sock is None:
        try:
            sock = _state["sock"] = socket.socket(fileno=os.dup(fd))
        except OSError:
            _state["sync"] = False
            return
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            _state["misses"] += 1
            _state["missed_total"] = _state.get("missed_total", 0) + 1
            if _state["misses"] >= _MAX_MISSES:
                _state["sync"] = False  # nobody answers: stop waiting
            return
        try:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            head = sock.recv(4096, socket.MSG_PEEK)
        except (OSError, ValueError):
            _state["sync"] = False
            return
        if not head:
            _state["sync"] = False
            return
        end = head.find(b"\n")
        if end < 0:
            time.sleep(0.0002)  # half an answer: the rest is on its way
            continue
        answer = head[: end + 1]
        if answer.startswith(mine) or not _alive(answer):
            try:
                sock.recv(len(answer))  # ours (this one or an older one), or its owner is gone
            except OSError:
                _state["sync"] = False
                return
            if answer == line:
                _state["misses"] = 0
                return
            continue
        time.sleep(0.0002)  # another process's answer: it takes it; ours is behind it


def _alive(answer: bytes) -> bool:
    """Whether the process an answer belongs to (``PID.SEQ``) still exists."""
    try:
        pid = int(answer.split(b".", 1)[0])
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, OSError):
        return True
    return True


def _event(event: str, name: str | None, data: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"event": event, "t": time.time(), "pid": os.getpid()}
    if name is not None:
        obj["name"] = name
    if data:
        obj["data"] = data
    return obj


def mark(name: str, **data: Any) -> None:
    """A point on the timeline ("page 500 done"), with optional small data."""
    if _state["fd"] is not None or _channel() is not None:
        _send(_event("mark", name, data))


def phase_start(name: str, **data: Any) -> None:
    if _channel() is not None:
        _send(_event("phase_start", name, data), sync=True)


def phase_end(name: str | None = None, **data: Any) -> None:
    if _channel() is not None:
        _send(_event("phase_end", name, data), sync=True)


class phase:  # noqa: N801 - used like a function: with phase("parse"): …
    """A named phase: a context manager (``with phase("parse"):``) or a decorator (``@phase("parse")``).

    ``tracemalloc=True`` sends the top allocation sites that grew during the phase in its data.
    """

    def __init__(self, name: str, tracemalloc: bool = False, **data: Any) -> None:
        self.name = name
        self.data = data
        self.tracemalloc = tracemalloc
        self._snapshot: Any = None
        self._snapshot_error: str | None = None
        self._started_tracing = False

    def __enter__(self) -> phase:
        if _channel() is None:
            return self
        if self.tracemalloc:
            try:
                import tracemalloc

                if not tracemalloc.is_tracing():
                    tracemalloc.start()
                    self._started_tracing = True
            except Exception as exc:  # the probe never raises into the program
                self.data = {**self.data, "tracemalloc_error": _one_line(exc)}
        phase_start(self.name, **self.data)
        if self.tracemalloc and "tracemalloc_error" not in self.data:
            # the "before" snapshot follows phase_start: what sending it allocated (the first
            # message imports socket: ~200 KiB in <frozen importlib>) is the probe's, not the phase's
            try:
                import tracemalloc

                self._snapshot = tracemalloc.take_snapshot()
            except Exception as exc:
                self._snapshot_error = _one_line(exc)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if _channel() is None:
            return
        data: dict[str, Any] = {}
        if exc_type is not None:
            data["error"] = exc_type.__name__
        if self._snapshot_error is not None:
            data["tracemalloc_error"] = self._snapshot_error
            self._snapshot_error = None
        if self._snapshot is not None:
            # the program may have stopped tracing (or restarted it) inside the phase: whatever
            # tracemalloc says then, the phase ends normally and says why it has no sites
            try:
                data["tracemalloc_top"] = _grown(self._snapshot)
            except Exception as exc:
                data["tracemalloc_error"] = _one_line(exc)
            self._snapshot = None
        if self._started_tracing:
            try:
                import tracemalloc

                tracemalloc.stop()
            except Exception:  # noqa: S110 - nothing to report: tracing is off either way
                pass
            self._started_tracing = False
        phase_end(self.name, **data)

    def __call__(self, fn: Any) -> Any:
        import functools

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with phase(self.name, self.tracemalloc, **self.data):
                return fn(*args, **kwargs)

        return wrapper


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _grown(before: Any, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` allocation sites that grew most since ``before`` (bytes still allocated)."""
    import tracemalloc

    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    after = tracemalloc.take_snapshot().filter_traces(ignore)
    diffs = [d for d in after.compare_to(before.filter_traces(ignore), "lineno") if d.size_diff > 0]
    diffs.sort(key=lambda d: d.size_diff, reverse=True)
    out = []
    for d in diffs[:limit]:
        frame = d.traceback[0]
        out.append(
            {
                "file": frame.filename,
                "line": frame.lineno,
                "size_diff": d.size_diff,
                "count_diff": d.count_diff,
                "size": d.size,
            }
        )
    return out


__all__ = ["enabled", "mark", "phase", "phase_end", "phase_start"]
