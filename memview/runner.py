"""Launching and attaching: a process session from first sample to a properly closed record.

``memview run`` behaves like ``/usr/bin/time``: the child keeps the terminal, memview's exit
status is the child's (128+N for signal N, 127 for a command that does not exist). Signals are
handled by blocking them and taking them with ``sigtimedwait`` in the main thread: that tells a
Ctrl-C typed at the terminal (the kernel sends it to the child too, so memview must not send it
twice) from a ``kill`` aimed at memview alone (forwarded to the child), and turns SIGCHLD into
an immediate reap with ``wait4``, whose ``ru_maxrss`` is the child's exact peak.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from memview.collectors.base import CollectorError
from memview.collectors.oom import OomWatch
from memview.collectors.process import ProcessTreeCollector
from memview.collectors.process_info import check_attachable
from memview.collectors.tracer import Tracer
from memview.launch import MAXRSS_UNIT, ExitInfo, LaunchError, launch, reap
from memview.marker_sources import MarkerOptions, Markers
from memview.meta import MetaCollector
from memview.model import EXACT_SOURCES, SOURCE_BOUND, SOURCE_ENVELOPE, SOURCE_MAXRSS, SOURCE_SAMPLED
from memview.phases import PhaseTracker
from memview.recorder import Recorder
from memview.store import Store

SI_KERNEL = 0x80  # si_code of a signal the kernel generated (a terminal's Ctrl-C)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


#: how far above the launcher's floor a child's ru_maxrss must be to be the child's own figure
MAXRSS_MARGIN = 2 * 2**20


def exit_fields(collector: ProcessTreeCollector, recorder: Recorder, tree_maxrss: int | None = None) -> dict[str, Any]:
    """The session's peak, saying what is exact and what is a bound (see docs/exactness.md).

    One process: its own exact peak (VmHWM at its exit, VmHWM while it ran, or a trusted
    ``ru_maxrss``). A tree: the sum of per-process RSS at one instant is only *sampled*; no
    single reading of the tree is exact. Two honest figures frame it: a floor (the largest
    sampled sum, or the largest single process's exact peak if that is higher: the tree was
    never below it) and, with the envelope, an upper bound (the largest sum of each process's
    exact maximum over one interval). ``peak_rss_bytes`` is the floor; its ``peak_source`` says
    ``sampled`` for a sampled sum, ``floor:<source>`` for one process's exact figure, and the
    returned ``peak`` dict (stored in meta) holds every figure. When the bound meets the floor
    the tree's peak is exact and says so.
    """
    sampled = recorder.stats.max or None
    bound = getattr(collector, "envelope_max", 0) or None
    count = collector.process_count()
    exact, source = collector.root_exact_peak, collector.root_exact_source
    if (
        count == 1
        and tree_maxrss is not None
        and (exact is None or tree_maxrss > exact)
        and collector.exit_figures(collector.root_pid) is None
    ):
        exact, source = tree_maxrss, SOURCE_MAXRSS
    peak: dict[str, Any] = {
        "sampled_bytes": sampled,
        "bound_bytes": bound,
        "bound_source": SOURCE_BOUND if bound else None,
        "processes": count,
    }
    if count == 1:
        # the kernel's RSS counters are per-CPU approximations (a few dozen pages): a sample can
        # read slightly above the high-water mark of the same moment; within 1 % the kernel's
        # own peak figure stands
        if exact is not None and (sampled is None or exact >= sampled * 0.99):
            peak |= {"exact_bytes": exact, "exact_source": source}
            return {"peak_rss_bytes": exact, "peak_source": source, "peak": peak}
        return {"peak_rss_bytes": sampled, "peak_source": SOURCE_SAMPLED, "peak": peak}
    floor, floor_source = sampled or 0, SOURCE_SAMPLED
    for info in collector.processes():
        if info.peak_source in EXACT_SOURCES and info.peak_rss_bytes > floor:
            floor, floor_source = info.peak_rss_bytes, "floor:" + info.peak_source
    if tree_maxrss is not None and tree_maxrss > floor:
        floor, floor_source = tree_maxrss, "floor:" + SOURCE_MAXRSS
    peak |= {"floor_bytes": floor or None, "floor_source": floor_source}
    if floor and bound is not None and bound <= floor:
        # the upper bound meets the floor: the tree's peak is known exactly (e.g. a shell that
        # ran helpers, then exec'd the real program: never two processes big at once)
        source = floor_source.removeprefix("floor:") if floor_source != SOURCE_SAMPLED else SOURCE_ENVELOPE
        peak |= {"exact_bytes": floor, "exact_source": source}
        return {"peak_rss_bytes": floor, "peak_source": source, "peak": peak}
    return {"peak_rss_bytes": floor or None, "peak_source": floor_source, "peak": peak}


class ProcessSession:
    """A launched or attached process recorded into the store; used by the CLI and the GUI."""

    def __init__(
        self,
        recorder: Recorder,
        collector: ProcessTreeCollector,
        meta: MetaCollector,
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.recorder = recorder
        self.collector = collector
        self.meta = meta
        self.proc = proc
        self.exit: ExitInfo | None = None
        self.closed = False
        self.maxrss_floor = 0
        self.oom: OomWatch | None = None
        self.tree_maxrss: int | None = None
        self.oom_killed: tuple[int, str] | None = None
        self.markers: Markers | None = None  # phase markers: MEMVIEW_FD, output regexes, log, pipe
        self.tracker: PhaseTracker | None = None
        self._trusted_maxrss: int | None = None
        self.following = False  # the command exited; recording goes on while its daemons run
        self.exited_t: float | None = None
        self.signalled: int | None = None  # the last SIGINT/TERM/HUP/QUIT memview itself received (run_foreground)

    @classmethod
    def launch(
        cls,
        argv: list[str],
        store: Store | None,
        interval: float,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        duration: float | None = None,
        children: bool = True,
        before_start: Callable[[ProcessSession], None] | None = None,
        markers: MarkerOptions | None = None,
        trace: bool = True,
        envelope: bool = True,
        **launch_kw: Any,
    ) -> ProcessSession:
        floor = _own_hwm()
        phase_markers = Markers(markers, launched=True)  # MarkerError for a bad regex or pipe path
        launch_kw.update(phase_markers.launch_kwargs(env, **launch_kw))
        env = launch_kw.pop("env", env)
        tracer = Tracer() if trace and Tracer.possible() else None
        try:
            proc = launch(argv, cwd=cwd, env=env, tracer=tracer, **launch_kw)
        except BaseException:
            phase_markers.close()
            raise
        phase_markers.after_launch(proc)
        try:
            collector = ProcessTreeCollector(proc.pid, kind="run", children=children, tracer=tracer, envelope=envelope)
            work_dir = os.path.abspath(cwd or os.getcwd())
            recorder = Recorder(
                collector,
                store,
                interval=interval,
                duration=duration,
                session_fields={
                    "command": argv,
                    "target": shlex.join(argv),
                    "pid": proc.pid,
                    "cwd": work_dir,
                },
            )
        except BaseException:
            proc.kill()
            reap(proc)
            phase_markers.close()
            raise
        meta = MetaCollector(work_dir)
        session = cls(recorder, collector, meta, proc)
        if tracer is not None and tracer.error:
            recorder.add_event("tracing_off", f"{tracer.error}", level="warning")
        session.oom = OomWatch.start(proc.pid)
        session._start_markers(phase_markers, exact=True)
        measured = getattr(proc, "memview_floor", None)
        session.maxrss_floor = measured if measured is not None else max(floor, _own_hwm())
        try:
            if before_start:
                before_start(session)
        except BaseException:  # never leave a launched child running unrecorded
            proc.kill()
            reap(proc)
            phase_markers.close()
            raise
        meta.start()
        recorder.start()
        return session

    @classmethod
    def attach(
        cls,
        pid: int,
        store: Store | None,
        interval: float,
        duration: float | None = None,
        children: bool = True,
        markers: MarkerOptions | None = None,
        before_start: Callable[[ProcessSession], None] | None = None,
        envelope: bool = False,
    ) -> ProcessSession:
        check_attachable(pid)
        phase_markers = (
            Markers(markers, launched=False, target_pid=pid) if markers and (markers.log or markers.pipe) else None
        )
        try:
            collector = ProcessTreeCollector(pid, kind="attach", children=children, envelope=envelope)
            info = collector.processes()[0]
            cwd = _cwd_of(pid)
            recorder = Recorder(
                collector,
                store,
                interval=interval,
                duration=duration,
                session_fields={
                    "command": info.cmdline,
                    "target": shlex.join(info.cmdline) or info.name,
                    "pid": pid,
                    "cwd": cwd,
                },
            )
        except BaseException:
            if phase_markers is not None:
                phase_markers.close()
            raise
        meta = MetaCollector(cwd or os.getcwd())
        session = cls(recorder, collector, meta)
        if phase_markers is not None:
            # memview resets the high-water mark of a process it did not start only with --envelope
            session._start_markers(phase_markers, exact=envelope)
        if before_start:  # listeners added here see the first batch
            before_start(session)
        meta.start()
        recorder.start()
        return session

    def _start_markers(self, markers: Markers, exact: bool) -> None:
        self.markers = markers
        self.tracker = PhaseTracker(self.recorder, self.collector, exact=exact)
        self.recorder.add_listener(self.tracker)
        markers.start(self.tracker)

    def reaped(self, info: ExitInfo, follow: bool = False) -> None:
        """The launched child has exited: stop sampling and fold its exact peak in.

        With ``follow``, processes the command started that still run (a daemon, a background
        job) keep the session going: the sampler ends by itself when the last one exits, or
        when the caller stops it (Ctrl-C). Otherwise the session ends with the command.
        """
        self.exit = info
        self.exited_t = self.recorder.now()  # the session's wall time: draining markers after it is not the child's
        tracer = self.collector.tracer
        self.following = bool(
            follow and self.collector.children and tracer is not None and tracer.active and tracer.live_processes()
        )
        if self.following:
            n = len(tracer.live_processes())  # type: ignore[union-attr]
            self.recorder.add_event(
                "descendants_running",
                f"the command exited; {n} process(es) it started still run: recording until they exit "
                "(Ctrl-C stops recording and leaves them running)",
                level="warning",
            )
        else:
            self.recorder.stop("exited")
            self.recorder.wait()
            self.recorder.drain_collector()
        # The kernel folds the high-water mark of the *launcher's* memory into the child's
        # ru_maxrss at exec (fork/vfork share or copy memview's pages until then). A figure
        # above memview's own peak at spawn time can only be the child's; below it, it is ours.
        # It also takes in the largest child the root waited for, so in a tree it is not the
        # root's own figure: there the VmHWM readings stand. With the tracer the root's own
        # VmHWM at its exit stop is exact and ru_maxrss is not needed.
        # The floor is read in the child just before exec; the pages it touches after that reading
        # (closing descriptors, the exec call itself) still count as the launcher's: a figure less
        # than MAXRSS_MARGIN above the floor is not trusted (seen: /bin/true reported at 31 MiB).
        trusted = info.maxrss_bytes if info.maxrss_bytes > self.maxrss_floor + MAXRSS_MARGIN else None
        self.tree_maxrss = trusted
        exact_at_exit = self.collector.exit_figures(self.collector.root_pid)
        if exact_at_exit is not None and exact_at_exit.hwm_bytes is not None:
            root_maxrss = None
            # the root's own high-water mark since the last reset, read at its exit stop: what
            # closes a phase still open at the exit (exact in a tree too, unlike ru_maxrss)
            self._trusted_maxrss, _source = self.collector.take_hwm(self.collector.root_pid)
        else:
            # in a tree, ru_maxrss takes in the largest child the root waited for: not the root's own figure
            root_maxrss = trusted if self.collector.process_count() == 1 else None
            self._trusted_maxrss = root_maxrss
        self.collector.set_root_exit(root_maxrss, info.exit_code, SOURCE_MAXRSS)
        if trusted is None and self.collector.root_exact_peak is None:
            self.recorder.add_event(
                "peak_unknown",
                "unknown: the command exited before the first reading, and its ru_maxrss is memview's own "
                f"footprint at launch ({self.maxrss_floor / 2**20:.0f} MiB), not the command's",
                level="warning",
                data={"ru_maxrss_bytes": info.maxrss_bytes, "floor_bytes": self.maxrss_floor},
            )
        if info.signal:
            text = info.describe()
            if info.signal == signal.SIGKILL and self.oom is not None:
                self.oom_killed = self.oom.kills()
                if self.oom_killed:
                    n, where = self.oom_killed
                    text = f"killed by the kernel's OOM killer (SIGKILL; oom_kill +{n} in {where})"
            self.recorder.add_event(
                "exit",
                f"{self.collector.processes()[0].name} {text}",
                level="error" if info.signal == signal.SIGKILL else "warning",
                data={"signal": info.signal, "oom_kill": bool(self.oom_killed)},
            )

    def close(self, status: str | None = None) -> None:
        """Close the session in the store (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.recorder.stop()
        self.recorder.wait()
        if self.markers is not None:
            self.markers.stop(timeout=1.0)  # the lines the child wrote before it exited
        if self.tracker is not None:
            self.tracker.finish(self._trusted_maxrss)
        if self.collector.tracer is not None:
            self.collector.tracer.shutdown()
        fields = exit_fields(self.collector, self.recorder, self.tree_maxrss)
        if self.exit is not None:
            fields.update(exit_code=self.exit.exit_code, signal=self.exit.signal)
            if self.exited_t is not None:
                fields.update(wall_s=self.exited_t, ended_at=self.recorder.started_at + self.exited_t)
        kernel = {}
        if self.exit is not None:
            kernel = {
                "ru_maxrss_bytes": self.exit.maxrss_bytes,
                "launcher_hwm_bytes": self.maxrss_floor,
                "oom_killed": bool(self.oom_killed),
            }
        peak = fields.pop("peak", {})
        fields["meta"] = (
            self.meta.result()
            | kernel
            | {"peak": peak}
            | {
                "stop_reason": self.recorder.stop_reason,
                "late_samples": self.recorder.stats.late,
                "max_late_s": round(self.recorder.stats.max_late, 6),
            }
        )
        self.recorder.close(status or "completed", **fields)


def _own_hwm() -> int:
    """memview's own RSS high-water mark (bytes), the floor under a launched child's ru_maxrss."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * MAXRSS_UNIT


def _cwd_of(pid: int) -> str | None:
    try:
        import psutil

        return psutil.Process(pid).cwd()
    except Exception:
        return None


def run_foreground(**launch_kw: Any) -> ProcessSession:
    """Launch and record in the CLI's main thread until the child exits; see the module doc.

    Signals are blocked before the fork and before any memview thread starts (so the threads
    inherit the block and only ``sigtimedwait`` sees them); the child gets the old mask back.
    """
    sigs = {signal.SIGCHLD, *FORWARDED}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    def unblock_in_child() -> None:  # runs in the forked child before exec; no threads exist yet
        signal.pthread_sigmask(signal.SIG_SETMASK, old)

    try:
        session = ProcessSession.launch(preexec_fn=unblock_in_child, **launch_kw)
        proc = session.proc
        assert proc is not None
        tracer = session.collector.tracer
        if tracer is not None:  # wake the loop below at once when the tracer has reaped the command
            tracer.on_root_death.append(lambda _death: os.kill(os.getpid(), signal.SIGCHLD))
        while session.exit is None:
            info = reap(proc, block=False)
            if info is not None:
                session.reaped(info, follow=True)
                break
            got = signal.sigtimedwait(sigs, 1.0)
            if got is None or got.si_signo == signal.SIGCHLD:
                continue
            session.signalled = got.si_signo  # a Ctrl-C is the user's even when the child turns it into exit 1
            if got.si_code != SI_KERNEL:  # sent to memview alone: pass it on
                try:
                    os.kill(proc.pid, got.si_signo)
                except ProcessLookupError:
                    pass
                session.recorder.add_event("signal", f"forwarded {signal.Signals(got.si_signo).name} to the child")
        if session.following:
            print(
                "memview: the command exited; recording the processes it started until they exit (Ctrl-C to stop)",
                file=sys.stderr,
            )
            while not session.recorder.wait(0):
                got = signal.sigtimedwait(sigs, 0.5)
                if got is not None and got.si_signo != signal.SIGCHLD:
                    session.recorder.stop("stopped")
                    break
        session.close()
        return session
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


__all__ = ["CollectorError", "ExitInfo", "LaunchError", "ProcessSession", "launch", "reap", "run_foreground"]
