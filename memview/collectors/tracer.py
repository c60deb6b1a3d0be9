"""Exact per-process peaks for a launched tree: ptrace exit stops, one tracer thread.

Why ptrace: a process's VmHWM is gone when it exits, so the only exact moment to read it is the
exit itself. ``PTRACE_SEIZE`` with ``TRACEFORK|TRACEVFORK|TRACECLONE|TRACEEXEC|TRACEEXIT`` (no
syscall stops) stops each process once per fork, exec and exit; at the exit stop its
``/proc/PID/status`` is still whole and its ``VmHWM`` is the process's own peak since its last
exec (or since the last ``clear_refs`` reset). Fork events also name every new descendant at
once, daemons included (a double fork or ``setsid`` does not end tracing), so the sampler needs
no ``/proc`` scan to discover them. Measured here: within 0.04 % of the VmHWM the workers printed
themselves, 17 stops for a three-worker harness.

Rules ptrace imposes and how they are kept:

- Every ptrace call must come from the thread that attached, so ONE thread (this module's) does
  every ``ptrace`` and every wait. It waits with ``__WALL|__WNOTHREAD``: it sees its tracees and
  its own children only, never the children of memview's other threads (py-spy, heaptrack,
  ``git``), whose statuses belong to their ``Popen``.
- The tracer thread blocks in ``wait4``; other threads hand it commands (step aside for a pid,
  detach everything) by killing a tiny "waker" child it spawned, whose exit wakes ``wait4``.
- The launched child is seized before it execs: in the forked child (``preexec_fn``) it writes
  its PID to a pipe and waits for a byte back, which the tracer sends after ``PTRACE_SEIZE``.
- Before another tool ptraces a pid (py-spy, heaptrack, gdb), :meth:`Tracer.release` detaches
  every thread of that process; from then on it is sampled.
- memview becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``) while a tree is traced: orphans
  of the tree are re-parented to memview, and the tracer reaps them when they exit. It stops being
  one when the last tracer ends, so in the desktop app, which outlives its recordings, later
  orphans of other programs go to init as usual instead of piling up as the app's zombies.

Nothing here imports Qt or touches the store: the collector drains :meth:`drain` each sample.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass

from memview.collectors import procfs
from memview.collectors.ptrace import (
    AVAILABLE,
    EV_CLONE,
    EV_EXEC,
    EV_EXIT,
    EV_FORK,
    EV_STOP,
    EV_VFORK,
    OPTIONS,
    PTRACE_CONT,
    PTRACE_DETACH,
    PTRACE_INTERRUPT,
    PTRACE_LISTEN,
    PTRACE_SEIZE,
    WALL,
    WNOTHREAD,
    event_msg,
    hold_subreaper,
    ptrace,
    release_subreaper,
)
from memview.model import SOURCE_EXIT, ProcessExit

_STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


@dataclass(slots=True)
class ExitRecord:
    """What the tracer read at one process's exit stop, with enough to describe a 1 ms process."""

    exit: ProcessExit
    name: str
    ppid: int | None
    cmdline: list[str]
    start_ticks: int | None


@dataclass(slots=True)
class Death:
    """A traced process reaped by the tracer: its wait status and ``ru_maxrss`` (bytes)."""

    pid: int
    t: float
    status: int
    maxrss_bytes: int


def _exit_record(pid: int, t: float) -> ExitRecord:
    """What /proc still says about ``pid`` at its exit stop: its peak, name, parent, command line."""
    fields = procfs.status(pid) or {}
    hwm = procfs.kib_field(fields, "VmHWM")
    ppid = fields.get("PPid")
    st = procfs.stat(pid)
    return ExitRecord(
        ProcessExit(pid, t, hwm, procfs.kib_field(fields, "VmRSS"), SOURCE_EXIT if hwm is not None else "sampled"),
        fields.get("Name", ""),
        int(ppid) if ppid else None,
        procfs.cmdline(pid) or [],
        st.start_ticks if st is not None else None,
    )


class Tracer:
    """One tracer thread for one launched tree. Thread-safe API; every ptrace call on its thread."""

    def __init__(self) -> None:
        self.error: str | None = None  # why tracing is off ("operation not permitted"), for the user
        self.root_pid: int | None = None
        self.seized = threading.Event()  # set once the seize was tried (see ``self.active``)
        self.active = False
        self.done = threading.Event()  # the tracer thread has ended
        self.root_dead = threading.Event()
        self.root_death: Death | None = None
        self.on_root_death: list = []  # callables(Death), called on the tracer thread
        self._lock = threading.Lock()
        self._forks: list[tuple[float, int, int]] = []  # (t, new pid, parent pid), processes only
        self._execs: list[tuple[float, int]] = []
        self._exits: list[ExitRecord] = []
        self._exit_by_pid: dict[int, ProcessExit] = {}
        self._deaths: dict[int, Death] = {}
        self._tgid: dict[int, int] = {}  # every traced tid -> its process id
        self._fresh: set[int] = set()  # tids whose first (attach) stop has not come yet
        self._releasing: dict[int, threading.Event] = {}
        self._released: set[int] = set()
        self._commands: list[tuple[str, int, threading.Event]] = []
        self._waker: int | None = None
        self._waker_w = -1  # our end of the waker's stdin
        self._stopping = False
        self._pid_r, self._pid_w = os.pipe()
        self._go_r, self._go_w = os.pipe()
        self.pending = False  # something to drain (read without the lock by the sampler: a hint)
        self.released_any = False  # a process was released: its children must be found by scanning
        self.stops = 0  # ptrace stops handled (for the docs' and benchmarks' figures)
        self._subreaper = False  # this tracer holds subreaper status (see hold_subreaper)
        self._thread = threading.Thread(target=self._main, name="memview-tracer", daemon=True)
        self._thread.start()

    @staticmethod
    def possible() -> bool:
        """Tracing can be tried here (Linux); whether the kernel allows it shows at the seize."""
        return AVAILABLE and os.environ.get("MEMVIEW_NO_TRACE", "") in ("", "0")

    def live_processes(self) -> set[int]:
        """The traced processes still running (thread-safe snapshot)."""
        return {g for g in list(self._tgid.values())}

    # -- the launch handshake ---------------------------------------------------------------
    def child_fds(self) -> tuple[int, int]:
        """(write end for the child's PID, read end the child waits on) — used in preexec_fn."""
        return self._pid_w, self._go_r

    @staticmethod
    def in_child(pid_w: int, go_r: int) -> None:
        """Runs in the forked child before exec: announce the PID, wait until seized."""
        os.write(pid_w, str(os.getpid()).encode())
        os.read(go_r, 1)

    def launched(self, ok: bool) -> None:
        """The parent's side after Popen: close the child's ends; unblock a tracer left waiting."""
        for fd in (self._pid_w, self._go_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if not ok:
            self.shutdown()

    # -- thread-safe API ----------------------------------------------------------------------
    def drain(self) -> tuple[list[tuple[float, int, int]], list[tuple[float, int]], list[ExitRecord]]:
        """New processes, execs and exit records since the last call (the sampler calls this)."""
        with self._lock:
            self.pending = False
            forks, self._forks = self._forks, []
            execs, self._execs = self._execs, []
            exits, self._exits = self._exits, []
        return forks, execs, exits

    def exit_of(self, pid: int) -> ProcessExit | None:
        with self._lock:
            return self._exit_by_pid.get(pid)

    def exit_code_of(self, pid: int) -> int | None:
        """The exit code of a traced process the tracer reaped (-N: killed by signal N)."""
        with self._lock:
            death = self._deaths.get(pid)
        return None if death is None else os.waitstatus_to_exitcode(death.status)

    def exited(self, pid: int) -> bool:
        return pid in self._exit_by_pid

    def traces(self, pid: int) -> bool:
        return self.active and self._tgid.get(pid) == pid and pid not in self._released

    def release(self, pid: int, timeout: float = 5.0) -> bool:
        """Detach every thread of process ``pid`` so another tool can ptrace it; True when done."""
        if not self.active or self.done.is_set() or not self.traces(pid):
            return not self.traces(pid)
        if threading.current_thread() is self._thread:
            return False
        ev = threading.Event()
        self._command("release", pid, ev)
        return ev.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Detach everything and end the tracer thread (the session is over; daemons run on)."""
        if self.done.is_set():
            return
        if not self.seized.is_set():  # still waiting for the child's PID: end that wait
            for fd in (self._pid_w,):
                try:
                    os.close(fd)
                except OSError:
                    pass
        ev = threading.Event()
        self._command("stop", 0, ev)
        self.done.wait(timeout)

    def _command(self, what: str, pid: int, ev: threading.Event) -> None:
        with self._lock:
            self._commands.append((what, pid, ev))
            waker = self._waker
        if waker is not None:
            try:
                os.kill(waker, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- the tracer thread ---------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._seize_root()
            if self.active:
                self._loop()
        except Exception as exc:  # never take the session down; say why figures are sampled
            self.error = self.error or f"tracer failed: {exc!r}"
        finally:
            self.active = False
            if self._subreaper:
                self._subreaper = False
                release_subreaper()
            for ev in [c[2] for c in self._commands] + list(self._releasing.values()):
                ev.set()
            self.done.set()
            for fd in (self._pid_r, self._go_w):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _seize_root(self) -> None:
        try:
            raw = os.read(self._pid_r, 32)  # one write() of a few digits: atomic on a pipe
        except OSError:
            raw = b""
        if not raw.isdigit():
            self.seized.set()
            return
        pid = int(raw)
        self.root_pid = pid
        err = ptrace(PTRACE_SEIZE, pid, OPTIONS)
        if err == 0:
            self.active = True
            self._tgid[pid] = pid
            self._subreaper = hold_subreaper()
        else:
            self.error = f"cannot trace the command ({os.strerror(err)}): peaks of its descendants are sampled"
        self.seized.set()
        try:
            os.write(self._go_w, b"g")
        except OSError:
            pass

    def _spawn_waker(self) -> None:
        """A ``cat`` reading a pipe only we write to: killing it wakes ``wait4``; if memview dies,
        the pipe's end closes and it exits too (no stray process left behind)."""
        exe = shutil.which("cat") or "/bin/cat"
        r, w = os.pipe()
        try:
            pid = os.posix_spawn(
                exe,
                [exe],
                {"PATH": os.defpath},
                setpgroup=0,
                setsigmask=(),
                file_actions=[(os.POSIX_SPAWN_DUP2, r, 0), (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
            )
        except OSError:
            pid = None
            os.close(w)
            w = -1
        os.close(r)
        old = self._waker_w
        with self._lock:
            self._waker = pid
            self._waker_w = w
        if old >= 0:
            os.close(old)

    def _loop(self) -> None:
        self._spawn_waker()
        while True:
            with self._lock:
                commands, self._commands = self._commands, []
            for what, pid, ev in commands:
                if what == "stop":
                    self._stopping = True
                    self._detach_all()
                    ev.set()
                elif what == "release":
                    self._start_release(pid, ev)
            if self._stopping and not self._tgid:
                self._kill_waker()
                return
            try:
                pid, status, usage = os.wait4(-1, WALL | WNOTHREAD)
            except ChildProcessError:
                return
            if pid == self._waker:
                with self._lock:
                    self._waker = None
                if not self._stopping:
                    self._spawn_waker()
                continue
            self._handle(pid, status, usage.ru_maxrss * 1024)
            if not self._tgid and self.root_dead.is_set() and not self._releasing:
                # the whole traced tree is gone
                self._kill_waker()
                return

    def _kill_waker(self) -> None:
        if self._waker is not None:
            try:
                os.kill(self._waker, signal.SIGKILL)
                os.waitpid(self._waker, WNOTHREAD)
            except OSError:
                pass
            self._waker = None
        if self._waker_w >= 0:
            os.close(self._waker_w)
            self._waker_w = -1

    def _handle(self, pid: int, status: int, maxrss: int) -> None:
        self.stops += 1
        if os.WIFSTOPPED(status):
            sig = os.WSTOPSIG(status)
            event = status >> 16
            if pid not in self._tgid:  # a new tracee reported before its parent's fork event
                self._tgid[pid] = self._tgid_of(pid)
                self._fresh.add(pid)
            if pid in self._releasing_tids():
                self._detach(pid, sig if event == 0 else 0)
                return
            if event == 0:  # signal-delivery-stop: deliver it
                self._cont(pid, sig)
            elif event == EV_EXIT:
                self._at_exit(pid)
                self._cont(pid, 0)
            elif event in (EV_FORK, EV_VFORK, EV_CLONE):
                new = event_msg(pid)
                if new:
                    self._new_tracee(pid, new, event)
                self._cont(pid, 0)
            elif event == EV_EXEC:
                tgid = self._tgid.get(pid, pid)
                with self._lock:
                    self._execs.append((time.perf_counter(), tgid))
                    self.pending = True
                self._cont(pid, 0)
            elif event == EV_STOP:
                if pid in self._fresh or sig not in _STOP_SIGNALS:
                    self._fresh.discard(pid)
                    self._cont(pid, 0)
                elif ptrace(PTRACE_LISTEN, pid) != 0:  # group-stop: stay stopped, see SIGCONT
                    self._cont(pid, 0)
            else:
                self._cont(pid, 0)
            return
        # exited or killed: reaped (by us, its tracer in the same thread group)
        tgid = self._tgid.pop(pid, pid)
        self._fresh.discard(pid)
        if tgid != pid:
            return  # a thread
        for tid in [t for t, g in self._tgid.items() if g == pid]:
            del self._tgid[tid]
        death = Death(pid, time.perf_counter(), status, maxrss)
        with self._lock:
            self._deaths[pid] = death
        if pid == self.root_pid:
            self._root_died(death)

    def _root_died(self, death: Death) -> None:
        self.root_death = death
        self.root_dead.set()
        for fn in list(self.on_root_death):
            try:
                fn(death)
            except Exception:
                pass

    def _tgid_of(self, tid: int) -> int:
        tgid = (procfs.status(tid) or {}).get("Tgid")
        return int(tgid) if tgid else tid

    def _new_tracee(self, parent_tid: int, new: int, event: int) -> None:
        parent = self._tgid.get(parent_tid, parent_tid)
        if event == EV_CLONE and procfs.is_thread_of(new, parent):
            tgid = parent  # a thread of the same process
        else:
            tgid = new
        if new not in self._tgid:
            self._tgid[new] = tgid
            self._fresh.add(new)
        else:
            self._tgid[new] = tgid  # its attach stop came first
        if tgid == new:
            with self._lock:
                self._forks.append((time.perf_counter(), new, parent))
                self.pending = True

    def _at_exit(self, tid: int) -> None:
        tgid = self._tgid.get(tid, tid)
        if tid != tgid:
            return  # a thread ending; the process's figure is read at its leader's exit stop
        record = _exit_record(tid, time.perf_counter())
        with self._lock:
            self._exits.append(record)
            self._exit_by_pid[tid] = record.exit
            self.pending = True

    def _cont(self, tid: int, sig: int) -> None:
        ptrace(PTRACE_CONT, tid, sig)

    def _detach(self, tid: int, sig: int) -> None:
        ptrace(PTRACE_DETACH, tid, sig)
        tgid = self._tgid.pop(tid, tid)
        self._fresh.discard(tid)
        if not any(g == tgid for g in self._tgid.values()):
            self._released.add(tgid)
            self.released_any = True
            ev = self._releasing.pop(tgid, None)
            if ev is not None:
                ev.set()
            if tgid == self.root_pid:
                self._wait_root_elsewhere(tgid)
            elif self._stopping:
                self._reap_adopted(tgid)

    @staticmethod
    def _reap_adopted(pid: int) -> None:
        """A daemon left running when tracing ends may be memview's child (the subreaper adopted it):
        wait for it on a thread of its own, or it would stay the app's zombie once it exits."""
        st = procfs.stat(pid)
        if st is None or st.ppid != os.getpid():
            return

        def wait() -> None:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

        threading.Thread(target=wait, name=f"memview-reap-{pid}", daemon=True).start()

    def _wait_root_elsewhere(self, pid: int) -> None:
        """The root is no longer traced: its exit reaches memview as its parent, not us."""

        def wait() -> None:
            try:
                _pid, status, usage = os.wait4(pid, 0)
            except ChildProcessError:
                return
            self._root_died(Death(pid, time.perf_counter(), status, usage.ru_maxrss * 1024))

        threading.Thread(target=wait, name="memview-root-wait", daemon=True).start()

    def _releasing_tids(self) -> set[int]:
        if not self._releasing:
            return set()
        return {t for t, g in self._tgid.items() if g in self._releasing}

    def _start_release(self, pid: int, ev: threading.Event) -> None:
        tids = [t for t, g in self._tgid.items() if g == pid]
        if not tids:
            ev.set()
            return
        self._releasing[pid] = ev
        for tid in tids:
            if ptrace(PTRACE_INTERRUPT, tid) == errno.ESRCH:
                self._tgid.pop(tid, None)
        if not any(g == pid for g in self._tgid.values()):
            self._releasing.pop(pid, None)
            self._released.add(pid)
            self.released_any = True
            ev.set()

    def _detach_all(self) -> None:
        """Interrupt every tracee; each is detached at its next stop (see ``_handle``)."""
        for tid, tgid in list(self._tgid.items()):
            self._releasing.setdefault(tgid, threading.Event())
            if ptrace(PTRACE_INTERRUPT, tid) == errno.ESRCH:
                self._tgid.pop(tid, None)
