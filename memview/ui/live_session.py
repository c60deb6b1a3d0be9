"""One recording started from the GUI: launch/attach/watch off the UI thread, reap, close.

Starting a session writes its row (SQLite) and may wait for a fork, so it happens on a worker
thread; that same thread then waits for the end (``wait4`` for a launched command, the
recorder's end otherwise) and closes the session in the store, whatever the reason it ended.
The UI learns about each step through queued signals and never blocks on any of it.

Stopping a launched command means ending it (SIGTERM, then SIGKILL after a grace period);
detaching means the recording stops and the command runs on. Either way the session is closed
exactly once. As with ``memview run``, what the command started and left running (a daemon, a
double fork) stays in the recording after the command exits, until it exits too or the user
presses Stop, which then ends the recording and leaves those processes running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from PySide6 import QtCore

from memview import runner
from memview.captures.options import CaptureSetup
from memview.collectors.base import CollectorError
from memview.collectors.redact import redact_url
from memview.errors import OptionError
from memview.marker_sources import MarkerError
from memview.store import Store, StoreError
from memview.ui.bridge import RecorderBridge
from memview.ui.child_output import ChildOutput
from memview.ui.plot_items import command_title
from memview.watch import WatchSession

log = logging.getLogger(__name__)

#: Seconds a launched command gets between SIGTERM and SIGKILL when the user presses Stop.
STOP_GRACE_S = 3.0
#: How often a GUI recording hands its samples on (the recorder's ``flush_every``).
LIVE_FLUSH_S = 0.1


@dataclass(slots=True)
class RunSpec:
    argv: list[str]
    interval: float
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    threshold: str | None = None
    capture: str | None = None
    children: bool = True

    kind = "run"

    @property
    def title(self) -> str:
        return self.name or command_title(self.argv)


@dataclass(slots=True)
class AttachSpec:
    pid: int
    interval: float
    name: str | None = None
    process_name: str = ""
    threshold: str | None = None
    capture: str | None = None
    children: bool = True

    kind = "attach"

    @property
    def title(self) -> str:
        return self.name or f"{self.process_name or 'pid'} {self.pid}"


@dataclass(slots=True)
class WatchSpec:
    url: str
    interval: float
    fmt: str = "auto"
    headers: dict[str, str] = field(default_factory=dict)
    metric: str | None = None  # Prometheus: the series recorded as RSS (default process_resident_memory_bytes)
    name: str | None = None
    threshold: str | None = None
    query: str | None = None  # a PromQL query: url is then a Prometheus server
    keep_query: tuple[str, ...] = ()  # --keep-query: query names whose values may be stored and shown

    kind = "watch"
    capture = "none"  # a service has no local process to capture

    @property
    def title(self) -> str:
        return self.name or redact_url(self.url, self.keep_query)  # shown and stored as the CLI would


Spec = RunSpec | AttachSpec | WatchSpec


class SetupError(ValueError):
    """Thresholds or capture options the core refused; the message is one line for the user."""


def split_rules(text: str | None) -> tuple[str, ...]:
    """The threshold field holds one rule or several separated by ``;`` (a comma belongs to a rule's options)."""
    return tuple(r.strip() for r in (text or "").split(";") if r.strip())


def capture_setup(threshold: str | None, capture: str | None) -> CaptureSetup:
    """The same :class:`CaptureSetup` the CLI builds from ``--threshold``/``--capture``.

    ``capture`` None or "auto" means the CLI's default (auto when a rule is set); "none" records
    firings only. Raises :class:`SetupError` with the core's one-line reason.
    """
    try:
        return CaptureSetup.from_cli(
            thresholds=split_rules(threshold), capture=None if capture in (None, "", "auto") else capture
        )
    except OptionError as exc:
        raise SetupError(str(exc)) from None


def line_of(setup: CaptureSetup) -> int | None:
    """Where the draggable line starts: the first absolute RSS rule, if any."""
    from memview.triggers import ThresholdLine

    rule = ThresholdLine.pick(setup.rules)
    return None if rule is None else int(rule.line)


class LiveSession(QtCore.QObject):
    """Controls one recording; lives on the UI thread, works on its own thread."""

    started = QtCore.Signal()
    failed = QtCore.Signal(str)
    finished = QtCore.Signal()
    notice = QtCore.Signal(str)

    def __init__(self, spec: Spec, store: Store, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.store = store
        self.bridge = RecorderBridge(self)
        self.session: Any = None
        self.recorder: Any = None
        self.session_id: int | None = None
        self.state = "starting"
        self.setup = capture_setup(spec.threshold, spec.capture)  # SetupError: the dialog checked it already
        self.output: ChildOutput | None = None  # a launched command's stdout/stderr files
        self.detached = False
        self._stop_requested = False  # Stop was pressed: a command that exits now is not followed
        self._following = False  # the command exited; its daemons are recorded until they exit
        self._follow_lock = threading.Lock()  # orders Stop against the decision to follow
        self._close_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def running(self) -> bool:
        return self.state in ("starting", "recording", "stopping")

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="memview-gui-session", daemon=True)
        self._thread.start()

    def _wire(self, session: Any) -> None:
        """Before the first sample: the bridge listens, the trigger engine and capture service attach.

        The rules go through the CLI's own :class:`CaptureSetup`; ``movable_line`` makes
        :meth:`Recorder.set_threshold` (the draggable line) move the engine's rule.
        """
        recorder = session.recorder
        # batches at 10 Hz rather than the CLI's 4 Hz: the curve moves smoothly (the store does not mind)
        recorder.flush_every = max(min(recorder.flush_every, LIVE_FLUSH_S), recorder.interval)
        recorder.add_listener(self.bridge)
        self.setup.install(session, movable_line=True)
        line = line_of(self.setup)
        if line is not None:
            recorder.set_threshold(line)  # draws the line; the rule is already there

    def _launch(self) -> Any:
        spec = self.spec
        if isinstance(spec, RunSpec):
            env = self.setup.launch_env({**os.environ, **spec.env}) or {**os.environ, **spec.env}
            # the child writes into files, never into memview's own output (see child_output)
            self.output = ChildOutput(self.store.path.with_name(self.store.path.stem + ".artefacts") / "output")
            try:
                return runner.ProcessSession.launch(
                    spec.argv,
                    self.store,
                    spec.interval,
                    cwd=spec.cwd,
                    env=env,
                    children=spec.children,
                    before_start=self._wire,
                    **self.output.launch_kwargs(),
                )
            finally:
                self.output.close_ours()
        if isinstance(spec, AttachSpec):
            return runner.ProcessSession.attach(
                spec.pid, self.store, spec.interval, children=spec.children, before_start=self._wire
            )
        return WatchSession.start(
            spec.url,
            self.store,
            spec.interval,
            fmt=spec.fmt,
            headers=spec.headers or None,
            metric=spec.metric or None,
            before_start=self._wire,
            query=spec.query,
            keep_query=spec.keep_query,
        )

    def _main(self) -> None:
        try:
            session = self._launch()
        except (runner.LaunchError, CollectorError, StoreError, MarkerError, OptionError) as exc:
            self.setup.abandon()
            self.state = "failed"
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # still one line for the user; the details go to the log
            log.exception("cannot start the session")
            self.setup.abandon()
            self.state = "failed"
            self.failed.emit(f"cannot start: {exc}")
            return
        self.session = session
        self.recorder = session.recorder
        self.session_id = session.recorder.session_id
        if self.output is not None:
            try:
                self.output.move_to(self.store.artefact_dir(self.session_id))
            except OSError as exc:
                self.notice.emit(f"the command's output stays in {self.output.paths['stdout'].parent}: {exc}")
        if self.spec.name:
            try:
                self.store.update_session(self.session_id, name=self.spec.name)
            except StoreError as exc:
                self.notice.emit(str(exc))
        self.state = "recording"
        self.started.emit()
        proc = getattr(session, "proc", None)
        if proc is not None:
            info = runner.reap(proc)  # blocks in wait4 until the command exits
            if self.detached:
                return  # already closed when the user detached
            if info is not None:
                self._reaped(session, info)
            if self.detached:
                return
        else:
            session.recorder.wait()
        self._close()

    def _reaped(self, session: Any, info: runner.ExitInfo) -> None:
        """The command exited: follow what it left running, as the CLI does, unless Stop came first.

        While following, the recorder ends by itself when the last of those processes exits, or
        when :meth:`stop` stops it; this thread waits for that end.
        """
        with self._follow_lock:
            follow = not self._stop_requested
            self._following = follow
        session.reaped(info, follow=follow)
        if not session.following:
            return
        n = len(session.collector.tracer.live_processes())
        self.notice.emit(
            f"the command exited; recording the {n} process(es) it started until they exit "
            "(Stop ends the recording and leaves them running)"
        )
        session.recorder.wait()

    # -- commands (UI thread) -------------------------------------------------------------------
    def stop(self) -> None:
        """End the recording; a launched command is ended too (SIGTERM, then SIGKILL).

        Once the command has exited and its daemons are being followed, Stop ends the recording
        only: like Ctrl-C under ``memview run``, it leaves those processes running.
        """
        if self.state != "recording":
            return
        self.state = "stopping"
        proc = getattr(self.session, "proc", None)
        with self._follow_lock:
            self._stop_requested = True
            following = self._following
        if following:
            self.recorder.add_event(
                "stop", "stopped from the GUI while following the processes the command started: they run on"
            )
            self.recorder.stop("stopped")
        elif proc is not None:
            self.recorder.add_event("stop", "stopped from the GUI: sent SIGTERM to the command")
            self._signal(proc, signal.SIGTERM)
            timer = threading.Timer(STOP_GRACE_S, self._signal, (proc, signal.SIGKILL))
            timer.daemon = True
            timer.start()
        else:
            self.recorder.stop("stopped")

    def detach(self) -> None:
        """Stop recording but leave a launched command running; the session is closed now."""
        if self.state != "recording":
            return
        self.state = "stopping"
        self.detached = True
        self.recorder.stop("detached")
        threading.Thread(target=self._close, args=("detached",), name="memview-gui-close", daemon=True).start()

    def capture_now(self) -> bool:
        """Ask the capture engine for a capture now; False when no engine is attached."""
        if self.recorder is None or not self.running:
            return False
        return bool(self.recorder.request_capture("manual"))

    def set_threshold(self, value: int | None) -> None:
        if self.recorder is not None and self.running:
            self.recorder.set_threshold(value)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread (tests, shutdown)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- internals ---------------------------------------------------------------------------------
    @staticmethod
    def _signal(proc: Any, sig: int) -> None:
        # Not proc.send_signal(): that polls (waitpid), which could reap the child from under the
        # thread blocked in wait4 and lose its exit status and exact peak.
        if proc.returncode is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass

    def _close(self, status: str | None = None) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.session.close(status) if status else self.session.close()
        except Exception as exc:
            log.exception("closing the session failed")
            self.notice.emit(f"the session could not be closed cleanly: {exc}")
        self.state = "closed"
        self.finished.emit()
