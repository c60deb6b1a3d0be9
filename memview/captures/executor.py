"""The capture executor: one thread that runs capture jobs one at a time and records each.

Why one at a time, on its own thread: captures take seconds and two ptrace-based tools must never
fight over one process, while the sampler that noticed a crossing must not wait for any of it.
Also here: running a tool as the target's own user (a staging folder it owns, then the files
moved into the session's folder).
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memview.captures.base import CaptureContext, CaptureError, Credentials, ToolFn, finish, target_credentials
from memview.collectors import procfs
from memview.model import Capture

log = logging.getLogger(__name__)


@dataclass
class CaptureJob:
    tool: str
    fn: ToolFn
    pid: int
    trigger: str
    duration: float
    time_limit: float
    native: bool = False
    subprocesses: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    requested_t: float = 0.0
    allow_inspector: bool = False


def _staging_dir(creds: Credentials) -> Path:
    """A private folder the target's user owns (0700), where a tool running as that user writes."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="memview-capture-"))
    os.chown(path, creds.uid, creds.gid)
    return path


def _collect(ctx: CaptureContext, out_dir: Path, capture: Capture) -> None:
    """Move the files a tool wrote as the target's user into the session's (root-only) folder.

    Only regular files are taken (the user owns the staging folder and could leave links there);
    ``written_by_uid`` records who created the first one, as the kernel says.
    """
    staging = ctx.out_dir
    moved: list[Path] = []
    for path in ctx.files:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            ctx.notes.append(f"{path.name} is not a regular file: not kept")
            continue
        if not moved:
            capture.data["written_by_uid"] = st.st_uid
        dest = out_dir / path.name
        shutil.move(str(path), dest)
        os.chown(dest, os.geteuid(), os.getegid())
        os.chmod(dest, 0o600)
        moved.append(dest)
    ctx.files = moved
    ctx.out_dir = out_dir
    shutil.rmtree(staging, ignore_errors=True)


Plan = Callable[[], list[CaptureJob]]


class Executor:
    """Runs capture jobs one at a time on its own thread and records each in the session.

    Callers hand in a job, or a *plan*: a function that decides the jobs (which processes, which
    tools) and runs on the executor's thread, because even that means reading /proc, and the
    sampler thread that notices a crossing must not wait for it.
    """

    def __init__(
        self, recorder: Any, out_dir: Callable[[], Path], max_captures: int = 10, env: dict[str, str] | None = None
    ) -> None:
        self.recorder = recorder
        self._out_dir = out_dir
        self.max_captures = max_captures
        self.env = env
        self.taken = 0
        self._pending = 0
        self._seq = 0
        self._queue: queue.Queue[tuple[float, CaptureJob | Plan] | None] = queue.Queue()
        self._closing = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._current: CaptureContext | None = None
        self._history: dict[tuple[str, int], list[Path]] = {}  # (tool, pid) -> files kept, oldest first
        self._thread = threading.Thread(target=self._run, name="memview-captures", daemon=True)
        self._thread.start()

    def submit(self, item: CaptureJob | Plan) -> bool:
        """Queue a capture or a plan (any thread, returns at once); False once the session is closing."""
        with self._lock:
            if self._closing.is_set():
                return False
            self._pending += 1
            self._idle.clear()
            self._queue.put((self.recorder.now(), item))
        return True

    def close(self, timeout: float = 60.0) -> None:
        """The session is ending: finish the capture in progress (up to ``timeout``), drop the rest."""
        with self._lock:
            self._closing.set()
        current = self._current
        if current is not None:
            current.stop.set()
        dropped = 0
        while True:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            dropped += entry is not None
        if dropped:
            self.recorder.add_event(
                "capture_skipped",
                f"{dropped} requested capture(s) not taken: the session ended first",
                level="warning",
                data={"dropped": dropped},
            )
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive() and self._current is not None and self._current.running is not None:
            self._current.running.kill()
            self._thread.join(5.0)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no capture is queued or running (tests, the GUI's progress)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                self._idle.set()
                return
            requested_t, item = entry
            try:
                jobs = [item] if isinstance(item, CaptureJob) else item()
            except Exception as exc:  # a plan that fails is reported, never fatal
                log.exception("capture plan failed")
                self.recorder.add_event("capture_error", f"could not plan a capture: {exc!r}", level="error")
                jobs = []
            for job in jobs:
                if self._closing.is_set() and not isinstance(item, CaptureJob):
                    self.recorder.add_event(
                        "capture_skipped",
                        f"{job.tool} capture of PID {job.pid} not taken: the session ended first",
                        level="warning",
                        data={"tool": job.tool, "pid": job.pid, "trigger": job.trigger},
                    )
                    continue
                if self.taken >= self.max_captures:
                    self.recorder.add_event(
                        "capture_skipped",
                        f"{job.tool} capture of PID {job.pid} not taken: the session's limit "
                        f"of {self.max_captures} captures is reached (--max-captures)",
                        level="warning",
                        data={"tool": job.tool, "pid": job.pid, "trigger": job.trigger},
                    )
                    continue
                self.taken += 1
                job.requested_t = requested_t
                try:
                    self._execute(job)
                except Exception:  # never lose the executor over one capture
                    log.exception("capture %s failed", job.tool)
            with self._lock:
                self._pending -= 1
                if self._pending <= 0:
                    self._idle.set()

    def _execute(self, job: CaptureJob) -> None:
        rec = self.recorder
        self._seq += 1
        out_dir = self._out_dir()
        ctx = CaptureContext(
            job.tool,
            job.pid,
            out_dir,
            f"{self._seq:02d}-{job.tool}-{job.pid}",
            job.duration,
            job.time_limit,
            native=job.native,
            subprocesses=job.subprocesses,
            env=self.env,
            allow_inspector=job.allow_inspector,
        )
        if self._closing.is_set():
            ctx.stop.set()
        ctx.deadline = time.monotonic() + job.time_limit
        capture = Capture(
            tool=job.tool,
            pid=job.pid,
            trigger=job.trigger,
            started_s=rec.now(),
            data={
                **job.data,
                "requested_s": job.requested_t,
                "duration_s": job.duration,
                "time_limit_s": job.time_limit,
            },
        )
        st = procfs.stat(job.pid)
        ticks = st.start_ticks if st is not None else None
        ctx.previous = list(self._history.get((job.tool, job.pid), []))
        ctx.run_as = target_credentials(job.pid)
        if ctx.run_as is not None:
            ctx.out_dir = _staging_dir(ctx.run_as)
            capture.data["run_as"] = {"uid": ctx.run_as.uid, "gid": ctx.run_as.gid}
        self._current = ctx
        rec.add_capture(capture)
        try:
            job.fn(ctx, capture)
            capture.status = "ok" if capture.status == "running" else capture.status
        except CaptureError as exc:
            capture.status = exc.status
            capture.stderr_tail = exc.stderr_tail or capture.stderr_tail
            if exc.status == "failed" and not procfs.alive(job.pid, ticks):
                capture.status = "exited"
            self._report_error(job, capture, str(exc))
        except Exception as exc:
            log.exception("capture %s crashed", job.tool)
            capture.status = "error"
            self._report_error(job, capture, f"internal error: {exc!r}")
        finally:
            self._current = None
            capture.ended_s = rec.now()
            if ctx.run_as is not None:
                _collect(ctx, out_dir, capture)
            finish(capture, ctx)
            if capture.status in ("ok", "partial"):
                self._history.setdefault((job.tool, job.pid), []).extend(ctx.files)
            rec.add_capture(capture)
        if capture.status in ("ok", "partial"):
            size = capture.size_bytes or 0
            rec.add_event(
                "capture",
                f"{job.tool} of PID {job.pid} saved: {capture.path} ({size} bytes, "
                f"{capture.ended_s - capture.started_s:.2f}s)",
                data={"tool": job.tool, "pid": job.pid, "path": capture.path, "status": capture.status},
            )

    def _report_error(self, job: CaptureJob, capture: Capture, message: str) -> None:
        if capture.status == "exited" and "exited" not in message:
            message = f"PID {job.pid} exited during the capture ({message})"
        self.recorder.add_event(
            "capture_error",
            f"{job.tool} capture of PID {job.pid} {capture.status}: {message}",
            level="error",
            data={"tool": job.tool, "pid": job.pid, "status": capture.status, "trigger": job.trigger},
        )
