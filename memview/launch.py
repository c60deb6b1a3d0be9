"""Starting a command and reaping it: clear errors for what cannot start, its exit status and exact peak.

Why apart from the session (:mod:`memview.runner`): launching has its own hard parts, each with
its reason below: a traced child waits before exec until the tracer has seized it; the launcher's
memory that the kernel folds into the child's ``ru_maxrss`` is measured in the child; and while
the tracer owns the child, nothing else may ``waitpid`` for it (the tracer reaps it, ``reap``
reads what it collected).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from memview.collectors import procfs
from memview.collectors.tracer import Death, Tracer

MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux, bytes on macOS


class LaunchError(Exception):
    """The command could not be started; ``exit_code`` follows the shell's convention."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(slots=True)
class ExitInfo:
    exit_code: int | None  # the code passed to exit(), None when killed by a signal
    signal: int | None
    maxrss_bytes: int

    @property
    def status(self) -> int:
        """The shell's view: the exit code, or 128 + signal number."""
        return 128 + self.signal if self.signal else (self.exit_code or 0)

    def describe(self) -> str:
        if self.signal:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            extra = " — possibly out of memory (the OOM killer sends SIGKILL)" if self.signal == signal.SIGKILL else ""
            return f"killed by signal {self.signal} ({name}){extra}"
        return f"exit code {self.exit_code}"


class _TracedPopen(subprocess.Popen[bytes]):
    """A Popen whose ``poll``/``wait`` never call ``waitpid`` while memview's tracer owns the child.

    Any ``waitpid`` on a traced child from another memview thread would take the tracer's ptrace
    stops (the kernel reports a tracee's stops to every thread of the tracer's process), leaving
    the child stopped for good. The tracer reaps it; these read what it collected.
    """

    memview_tracer: Tracer | None = None

    def _traced(self) -> Tracer | None:
        tracer = self.memview_tracer
        if tracer is None or self.returncode is not None:
            return None
        if tracer.root_dead.is_set() or tracer.active:
            return tracer
        return None

    def _internal_poll(self, *args: Any, **kw: Any) -> int | None:
        tracer = self._traced()
        if tracer is None:
            return super()._internal_poll(*args, **kw)  # type: ignore[misc]  # private in typeshed
        if tracer.root_dead.is_set() and tracer.root_death is not None:
            self.returncode = os.waitstatus_to_exitcode(tracer.root_death.status)
        return self.returncode

    def _wait(self, timeout: float | None) -> int:
        tracer = self._traced()
        if tracer is None:
            return super()._wait(timeout)  # type: ignore[misc]  # private in typeshed
        if not tracer.root_dead.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)  # type: ignore[arg-type]
        assert tracer.root_death is not None
        self.returncode = os.waitstatus_to_exitcode(tracer.root_death.status)
        return self.returncode


def launch(
    argv: list[str],
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    stdout: Any = None,
    stderr: Any = None,
    preexec_fn: Callable[[], None] | None = None,
    tracer: Tracer | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` directly (never through a shell); clear errors for what cannot start.

    With a ``tracer`` the child announces its PID and waits, before exec, until the tracer has
    seized it: every process of the command, from its first instruction, is traced.
    """
    if not argv:
        raise LaunchError("no command given (usage: memview run [OPTIONS] -- COMMAND [ARGS]...)", 2)
    if cwd is not None and not os.path.isdir(cwd):
        raise LaunchError(f"working directory does not exist: {cwd}", 2)
    if tracer is not None:
        _check_executable(argv[0], cwd, env)  # an exec failure after the seize would strand the child
        pid_w, go_r = tracer.child_fds()
        inner = preexec_fn

        def preexec_fn() -> None:
            if inner is not None:
                inner()
            Tracer.in_child(pid_w, go_r)

    floor_r = floor_w = -1
    child_setup = preexec_fn
    if preexec_fn is not None and procfs.AVAILABLE:
        # Already forking (not vfork-ing) for preexec_fn: in the child, reset the copied memory's
        # high-water mark and tell the parent what it is — the exact floor the kernel will fold
        # into the child's ru_maxrss at exec.
        floor_r, floor_w = os.pipe()

        def child_setup() -> None:
            preexec_fn()
            procfs.reset_hwm(os.getpid())
            os.write(floor_w, str(procfs.ProcMemory(os.getpid()).hwm() or 0).encode())

    try:
        popen = _TracedPopen if tracer is not None else subprocess.Popen
        proc = popen(argv, cwd=cwd, env=env, pass_fds=pass_fds, stdout=stdout, stderr=stderr, preexec_fn=child_setup)
    except FileNotFoundError:
        raise LaunchError(f"command not found: {argv[0]}", 127) from None
    except PermissionError:
        raise LaunchError(f"permission denied: {argv[0]} is not executable", 126) from None
    except OSError as exc:
        raise LaunchError(f"cannot run {argv[0]}: {exc.strerror or exc}", 126) from None
    finally:
        if tracer is not None:
            tracer.launched(ok=sys.exc_info()[0] is None)
        if floor_w >= 0:
            os.close(floor_w)
        if floor_r >= 0 and sys.exc_info()[0] is not None:
            os.close(floor_r)
    proc.memview_floor = None  # type: ignore[attr-defined]
    proc.memview_tracer = tracer  # type: ignore[attr-defined]  # (a _TracedPopen reads it too)
    if floor_r >= 0:
        with os.fdopen(floor_r, "rb") as f:
            raw = f.read()
        proc.memview_floor = int(raw) if raw.isdigit() else None  # type: ignore[attr-defined]
    return proc


def _check_executable(cmd: str, cwd: str | None, env: dict[str, str] | None) -> None:
    """The errors Popen would give, found before the fork (a traced child must reach its exec)."""
    import shutil

    if os.sep in cmd:
        path = os.path.join(cwd or os.getcwd(), cmd)
        if not os.path.exists(path):
            raise LaunchError(f"command not found: {cmd}", 127)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise LaunchError(f"permission denied: {cmd} is not executable", 126)
        return
    search = (env or os.environ).get("PATH", os.defpath)
    if shutil.which(cmd, path=search) is None:
        raise LaunchError(f"command not found: {cmd}", 127)


def _exit_info(death: Death) -> ExitInfo:
    code = os.waitstatus_to_exitcode(death.status)
    return ExitInfo(code if code >= 0 else None, -code if code < 0 else None, death.maxrss_bytes)


def reap(proc: subprocess.Popen[bytes], block: bool = True) -> ExitInfo | None:
    """``wait4`` the child: its status and its exact peak RSS. None if it is still running.

    A traced child is reaped by the tracer thread (the only thread that may wait for a tracee);
    this then takes the status it collected.
    """
    tracer: Tracer | None = getattr(proc, "memview_tracer", None)
    if tracer is not None and (tracer.root_dead.is_set() or tracer.active):
        if block:
            while not tracer.root_dead.wait(1.0):
                if not tracer.active and not tracer.root_dead.is_set():
                    break  # the tracer ended without it (it failed): wait ourselves
            else:
                death = tracer.root_death
                assert death is not None
                proc.returncode = os.waitstatus_to_exitcode(death.status)
                return _exit_info(death)
        elif tracer.root_dead.is_set():
            death = tracer.root_death
            assert death is not None
            proc.returncode = os.waitstatus_to_exitcode(death.status)
            return _exit_info(death)
        elif tracer.active:
            return None
    try:
        pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return None
    if pid == 0:
        return None
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # Popen must not try to wait for it again
    return ExitInfo(code if code >= 0 else None, -code if code < 0 else None, usage.ru_maxrss * MAXRSS_UNIT)
