"""What every capture tool shares: finding the tool, running it with a time limit, whose
credentials it runs with, and the context of one capture.

Captures are subprocesses (py-spy, heaptrack/gdb, heaptrack_print) or socket talk (node's
inspector) that can take seconds. They run one at a time on the executor's own thread
(:mod:`memview.captures.executor`), so the sampler never waits for them and two ptrace-based
tools never fight over one process; why ptrace was refused is :mod:`memview.captures.ptrace_advice`.

Subprocesses start through ``posix_spawn`` with an empty signal mask: ``memview run`` blocks
SIGINT/SIGTERM/SIGCHLD in every thread (the runner takes them with ``sigtimedwait``), and a child
inherits its parent thread's mask, so tools started with ``subprocess`` would ignore the SIGINT
that makes ``py-spy record`` write its file, and gdb would run with SIGCHLD blocked. Each tool
gets its own process group so a time limit kills it and everything it started.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memview.collectors import procfs
from memview.model import Capture

STDERR_TAIL = 2000


class CaptureError(Exception):
    """A capture that could not be done; ``status`` goes into the captures row, the message to the user."""

    def __init__(self, message: str, status: str = "failed", stderr_tail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.stderr_tail = stderr_tail


# -- finding tools ---------------------------------------------------------------------------------

_INSTALL_HINTS = {
    "py-spy": "pip install py-spy (it is a memview dependency: reinstall memview, or put its bin folder on PATH)",
    "heaptrack": "apt install heaptrack (or your distribution's heaptrack package)",
    "heaptrack_print": "apt install heaptrack",
    "gdb": "apt install gdb (heaptrack attaches through gdb)",
    "zstd": "apt install zstd",
    "memray": "pip install memray (a memview dependency; the target's Python needs it too)",
}


def find_tool(name: str, env: dict[str, str] | None = None) -> str:
    """Absolute path of ``name``: beside the frozen app if bundled; on PATH; else beside memview's own Python.

    The fallback matters for ``pipx install memview``: pipx exposes only memview's own entry point,
    while py-spy, a dependency, sits in the same venv's bin folder.
    """
    if getattr(sys, "frozen", False):  # the one-folder build (packaging/memview.spec) ships py-spy beside memview
        found = shutil.which(name, path=os.path.dirname(sys.executable))
        if found:
            return found
    path = (env or os.environ).get("PATH", os.defpath)
    found = shutil.which(name, path=path)
    if found:
        return found
    scripts = sysconfig.get_path("scripts")
    if name in ("py-spy", "memray") and scripts:
        found = shutil.which(name, path=scripts)
        if found:
            return found
    hint = _INSTALL_HINTS.get(name, f"install {name}")
    raise CaptureError(f"{name} is not installed or not on PATH (PATH={path}): {hint}", status="missing-tool")


# -- running tools -----------------------------------------------------------------------------------

_UNBLOCK = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD, signal.SIGPIPE)


class Spawned:
    """A tool process in its own process group, started with no signals blocked."""

    def __init__(
        self,
        argv: list[str],
        stdout: Path | int | None = None,
        stderr: Path | int | None = None,
        stdin: int | None = None,
        env: dict[str, str] | None = None,
        run_as: Credentials | None = None,
    ) -> None:
        if run_as is not None:
            run_as.check_can_run(argv[0])
            argv = run_as.wrap(argv)
        self.argv = argv
        # a descriptor handed in is the caller's (closed once we have started): its tail is theirs to read
        self.stderr_path = stderr if isinstance(stderr, Path) else None
        self.returncode: int | None = None
        actions: list[tuple[Any, ...]] = []
        if stdin is None:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        else:
            actions.append((os.POSIX_SPAWN_DUP2, stdin, 0))
        for fd, target in ((1, stdout), (2, stderr)):
            if target is None:
                actions.append((os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0))
            elif isinstance(target, int):
                actions.append((os.POSIX_SPAWN_DUP2, target, fd))
            else:
                # a fresh file, never through a link: the folder may belong to the target's user
                Path(target).unlink(missing_ok=True)
                actions.append(
                    (os.POSIX_SPAWN_OPEN, fd, str(target), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                )
        run_env = dict(os.environ if env is None else env)
        # argv[0] is an absolute path from find_tool (posix_spawn has no cwd: tools get absolute paths)
        self.pid = os.posix_spawn(
            argv[0], argv, run_env, file_actions=actions, setpgroup=0, setsigmask=(), setsigdef=_UNBLOCK
        )
        self.started = time.monotonic()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self._pidfd = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.returncode = -1
            return self.returncode
        if pid == 0:
            return None
        self.returncode = os.waitstatus_to_exitcode(status)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds (no busy loop with pidfd)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                return code
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            if self._pidfd is not None:
                select.select([self._pidfd], [], [], 1.0 if left is None else min(left, 1.0))
            else:
                time.sleep(0.02 if left is None else min(left, 0.02))

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.wait(5.0)

    def stderr_tail(self, limit: int = STDERR_TAIL) -> str:
        return tail(self.stderr_path, limit)


def write_private(path: Path | str, text: str) -> None:
    """Write a file memview derives (an SVG, a merged dump) as a fresh 0600 file, never through a link.

    When memview is root the capture folder belongs to the target's user, who could leave a link
    at a predictable name pointing at a file of root's: unlink, then create exclusively without
    following links (a link recreated in between makes the open fail, never write elsewhere).
    """
    path = Path(path)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def tail(path: Path | None, limit: int = STDERR_TAIL) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def run_tool(
    ctx: CaptureContext,
    argv: list[str],
    stdout: Path | None,
    stderr: Path,
    stop_after: float | None = None,
    stop_signal: int = signal.SIGINT,
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run a tool to completion within the capture's time limit; (exit code, stderr tail).

    ``stop_after``: send ``stop_signal`` after that many seconds (tools that record until told).
    Past the time limit the tool's process group is killed and CaptureError(status="timeout") raised.
    """
    proc = Spawned(argv, stdout=stdout, stderr=stderr, env=env, run_as=ctx.run_as)
    ctx.running = proc
    try:
        if stop_after is not None:
            until = time.monotonic() + min(stop_after, ctx.remaining())
            code = proc.poll()
            while code is None and not ctx.stop.is_set() and time.monotonic() < until:
                code = proc.wait(min(0.1, max(0.0, until - time.monotonic())))
            if code is None:
                proc.signal_group(stop_signal)
        code = proc.wait(ctx.remaining())
        if code is None:
            proc.kill()
            raise CaptureError(
                f"{Path(argv[0]).name} did not finish within the capture time limit ({ctx.time_limit:g}s): killed",
                status="timeout",
                stderr_tail=proc.stderr_tail(),
            )
        return code, proc.stderr_tail()
    finally:
        ctx.running = None


# -- whose credentials a tool runs with -----------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A target's user, group and supplementary groups: what a capture tool runs as when memview is root.

    Root can trace anything, and a tool running as root against another user's process is root
    code reading (and with gdb, injecting into) memory that user controls: a crafted process can
    attack the tool. With the target's own credentials the tool can do exactly what that user
    could, no more. ``setpriv`` (util-linux) switches before the tool's exec: real and effective
    ids, groups, no inheritable capabilities, no new privileges.
    """

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def wrap(self, argv: list[str]) -> list[str]:
        setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
        if setpriv is None:
            raise CaptureError(
                "setpriv (util-linux) is needed to run capture tools as the target's user", status="missing-tool"
            )
        groups = [f"--groups={','.join(map(str, self.groups))}"] if self.groups else ["--clear-groups"]
        return [
            setpriv,
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            *groups,
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
            *argv,
        ]

    def _allows(self, st: os.stat_result, bit: int) -> bool:
        if st.st_uid == self.uid:
            return bool(st.st_mode & (bit << 6))
        if st.st_gid == self.gid or st.st_gid in self.groups:
            return bool(st.st_mode & (bit << 3))
        return bool(st.st_mode & bit)

    def check_can_run(self, tool: str) -> None:
        """CaptureError unless this user can reach and execute ``tool`` (e.g. one installed under /root)."""
        path = Path(tool)
        try:
            for folder in reversed(path.parents):
                if not self._allows(folder.stat(), 0o1):
                    raise CaptureError(
                        f"{path.name} at {tool} is out of reach of uid {self.uid} (the target's "
                        f"user; {folder} is closed to it): install {path.name} where every user "
                        "can run it, e.g. /usr/local/bin",
                        status="missing-tool",
                    )
            if not self._allows(path.stat(), 0o1):
                raise CaptureError(
                    f"{tool} is not executable by uid {self.uid} (the target's user)", status="missing-tool"
                )
        except OSError as exc:
            raise CaptureError(f"cannot check {tool}: {exc}", status="missing-tool") from None


def target_credentials(pid: int) -> Credentials | None:
    """The credentials to run a capture of ``pid`` with: its own when memview is root and it is not."""
    if os.geteuid() != 0:
        return None
    fields = procfs.status(pid) or {}
    uid, gid, groups = fields.get("Uid"), fields.get("Gid"), fields.get("Groups")
    if uid is None or gid is None:
        return None
    euid, egid = int(uid.split()[1]), int(gid.split()[1])
    if euid == 0:
        return None
    return Credentials(euid, egid, tuple(int(g) for g in (groups or "").split()))


# -- one capture -------------------------------------------------------------------------------------


@dataclass
class CaptureContext:
    """What a tool function needs: the target, where to write, how long, and the time limit."""

    tool: str
    pid: int
    out_dir: Path
    stem: str  # artefact file names start with this, e.g. "03-py-spy-dump-1234"
    duration: float
    time_limit: float
    native: bool = False
    subprocesses: bool = False
    env: dict[str, str] | None = None
    allow_inspector: bool = False  # node: may open the TCP inspector (--node-inspector, the user accepted it)
    run_as: Credentials | None = None  # memview is root: tools run as the target's user, in a folder of theirs
    previous: list[Path] = field(default_factory=list)  # files of earlier captures by this tool of this PID
    deadline: float = 0.0
    running: Spawned | None = None
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)  # set when the session is closing

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def path(self, suffix: str) -> Path:
        return self.out_dir / f"{self.stem}{suffix}"

    def keep(self, path: Path) -> Path:
        """Record an artefact file of this capture (the first one kept is the capture's path)."""
        self.files.append(path)
        return path


ToolFn = Callable[[CaptureContext, Capture], None]


def finish(capture: Capture, ctx: CaptureContext) -> None:
    """Fill the capture's path/size from the files the tool kept."""
    files = [p for p in ctx.files if p.exists()]
    if files:
        capture.path = str(files[0])
        capture.size_bytes = files[0].stat().st_size
        capture.data["files"] = [{"path": str(p), "size_bytes": p.stat().st_size} for p in files]
    if ctx.notes:
        capture.data["notes"] = list(ctx.notes)
