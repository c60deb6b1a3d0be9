"""Per-process high-water-mark intervals: what a phase's exact peak is made of.

Why a module of its own: the phase tracker decides *which* phases are open; this decides *what
the kernel can say about them*. Every phase boundary closes one interval of the process the
marker is measured on: its ``VmHWM`` since the previous boundary is folded into every phase open
on that process, and the collector (the one owner of resets) resets it. The root is measured for
phases announced without a pid (or by the root); a worker that announces phases of its own gets
an :class:`Announcer`, a reader bound to that process. Where the kernel cannot give an exact
figure (a tree, an attach, a refused reset) a phase falls back to the sampled maximum:
:func:`fallback`, :func:`summed`.

The tracker calls everything here under its own lock; the collector's methods take the
collector's lock (never the other way round), so there is one lock order: tracker, collector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from memview.collectors import procfs
from memview.model import SOURCE_SAMPLED, SOURCE_VMHWM, Batch, Phase, ProcessExit, ProcessInfo, proc_series

_PRINT_SLACK = 256 * 1024  # a printed "12.34 MB" is rounded; VmHWM lags RSS by up to 64 pages per thread


class PeakSource(Protocol):
    """What phases need of the session's process collector
    (:class:`~memview.collectors.process.ProcessTreeCollector`); each method is safe to call from
    any thread (the collector serialises them with the sampler)."""

    root_pid: int
    fast: bool  # /proc is there and fast: a boundary can read and reset VmHWM

    def take_hwm(self, pid: int) -> tuple[int | None, str]:
        """``pid``'s exact maximum since its last ``take_hwm`` and its source; the mark is reset."""

    def root_rss(self) -> int | None:
        """The root's RSS read now; None once it has exited."""

    def tree_rss(self) -> int | None:
        """The tree's RSS now (the root fresh, the others as of the latest sample)."""

    def live_count(self) -> int:
        """Processes of the tree alive as of the latest sample."""

    def process_count(self) -> int:
        """Processes seen so far, alive or not."""

    def root_hwm_seen(self) -> int | None:
        """The largest root VmHWM the sampler read since the last reset."""

    def exit_figures(self, pid: int) -> ProcessExit | None:
        """Figures read at ``pid``'s exit; None while it runs or when unknown."""

    def processes(self) -> list[ProcessInfo]:
        """Every process seen so far."""


@dataclass(slots=True)
class OpenPhase:
    """A phase being measured."""

    phase: Phase
    key: int | None  # the pid whose stack it is on (None: lines without "pid")
    exact: bool  # every interval so far has an exact root VmHWM
    hwm: int = 0  # the largest root VmHWM of its intervals so far
    awaiting_exit: bool = False  # its last interval ended after the root exited: wait for ru_maxrss
    tree: bool = False  # another process was in the tree while it was open
    procs_at_start: int = 1  # processes the collector had seen when it started
    sampled: int = 0
    done: bool = False
    own: int | None = None  # the announcing process it is measured on; None: the root (and its tree)
    ghost: bool = False  # over the phase cap: kept on the stack so its end matches, never measured
    subtree: frozenset[int] = frozenset()  # processes the announcer started that ran during the phase
    timed: bool = False  # a log line with a timestamp started it: ordered by that time, not by arrival
    hwm_spills: bool = False  # its kernel intervals reach beyond its timestamped end: hwm is not its own


@dataclass(slots=True)
class Announcer:
    """A process other than the root that announces phases: its own RSS reader and mark state."""

    pid: int
    mem: procfs.ProcMemory | None  # bound to that process (a reused pid is never read)
    reset_ok: bool = False  # its VmHWM counts from its last boundary

    def rss(self) -> int | None:
        return self.mem.rss() if self.mem is not None else None

    def close(self) -> None:
        if self.mem is not None:
            self.mem.close()
            self.mem = None


class PhaseMeter:
    """The kernel side of phase boundaries for one session: the root's and each announcer's intervals.

    ``exact`` says whether memview may reset the root's high-water mark (a launched child on
    Linux); without the collector's fast ``/proc`` path no reset is tried at all.
    """

    def __init__(self, collector: PeakSource, exact: bool = True) -> None:
        self.collector = collector
        self.exact_possible = exact and collector.fast
        self.reset_ok = False  # the root's VmHWM currently counts from the last boundary
        self.announcers: dict[int, Announcer] = {}

    @property
    def root_pid(self) -> int:
        return self.collector.root_pid

    def root_boundary(self, open_phases: Iterable[OpenPhase]) -> None:
        """Close the root's current interval: fold its VmHWM into ``open_phases`` (those measured
        on the root), then reset it."""
        collector = self.collector
        tree = self.tree_now()
        hwm, reset, alive = None, False, True
        if self.exact_possible:
            hwm, source = collector.take_hwm(collector.root_pid)
            reset = hwm is not None and source == SOURCE_VMHWM
            alive = hwm is not None or collector.root_rss() is not None
        for op in open_phases:
            if tree or collector.process_count() > op.procs_at_start:
                op.tree = True
            if op.awaiting_exit:
                continue  # the root is gone; its ru_maxrss closes the interval it was in
            if hwm is not None and self.reset_ok:
                op.hwm = max(op.hwm, hwm)
            elif not alive and self.reset_ok:
                op.awaiting_exit = True
                seen = collector.root_hwm_seen()  # the sampler's last reading: a floor until ru_maxrss
                if seen:
                    op.hwm = max(op.hwm, seen)
            else:
                op.exact = False
        self.reset_ok = reset

    def own_boundary(self, pid: int, open_phases: Iterable[OpenPhase]) -> None:
        """One boundary of process ``pid``: its VmHWM since its last boundary goes into its open
        phases, then the collector (the one owner of resets) resets it.

        A process that has already exited leaves its open phases waiting for its exit figures
        (read by the collector at its exit; the tracker's ``on_process_exit``).
        """
        ann = self.announcers[pid]
        hwm, source = self.collector.take_hwm(pid)
        exact = hwm is not None and source == SOURCE_VMHWM
        for op in open_phases:
            if op.awaiting_exit or op.ghost:
                continue
            if hwm is not None and ann.reset_ok:
                op.hwm = max(op.hwm, hwm)
            elif hwm is None and ann.reset_ok:
                op.awaiting_exit = True
            else:
                op.exact = False
        ann.reset_ok = exact

    def measured_on(self, pid: int | None) -> int | None:
        """The process a marker from ``pid`` is measured on: None for the root (or a line without a pid)."""
        if pid is None or pid == self.collector.root_pid or not self.exact_possible:
            return None
        if pid not in self.announcers:
            try:
                mem: procfs.ProcMemory | None = procfs.ProcMemory(pid)
            except OSError:
                mem = None  # gone already: its figures come from its exit
            self.announcers[pid] = Announcer(pid, mem)
        return pid

    def start_figures(self, own: int | None) -> tuple[int | None, bool, bool]:
        """``(RSS now, exact so far, in a tree)`` for a phase starting on ``own`` (None: the root)."""
        if own is None:
            return self.tree_rss(), self.exact_possible and self.reset_ok, self.tree_now()
        ann = self.announcers[own]
        return ann.rss(), ann.reset_ok, False

    def rss(self, own: int | None) -> int | None:
        """RSS now of what a phase on ``own`` is measured on: the tree for the root, else that process."""
        return self.tree_rss() if own is None else self.announcers[own].rss()

    def count(self) -> int:
        return self.collector.process_count()

    def tree_now(self) -> bool:
        return self.collector.live_count() > 1

    def tree_rss(self) -> int | None:
        """The tree's RSS now; None once the root has exited (a stale sample would mislead)."""
        return self.collector.tree_rss()

    def exit_figures(self, pid: int) -> ProcessExit | None:
        return self.collector.exit_figures(pid)

    def started_by(self, pid: int, start: float, end: float) -> frozenset[int]:
        """Descendants of ``pid`` the collector saw alive at some point in ``[start, end]``."""
        for _attempt in range(3):
            try:
                procs = list(self.collector.processes())
                break
            except RuntimeError:  # the sampler changed the table while it was copied: read it again
                continue
        else:
            return frozenset()
        children: dict[int | None, list[int]] = {}
        alive: dict[int, bool] = {}
        for info in procs:
            children.setdefault(info.ppid, []).append(info.pid)
            alive[info.pid] = info.first_t <= end and info.last_t >= start
        out: set[int] = set()
        todo = [pid]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in out:
                    out.add(child)
                    todo.append(child)
        return frozenset(p for p in out if alive.get(p))

    def fold_samples(self, op: OpenPhase, batch: Batch, times: list[float], values: list[int]) -> None:
        """Raise ``op``'s sampled maximum by a batch's samples inside its span.

        A phase on the root takes the tree's total series; one measured on a process takes that
        process's own series summed with the processes it started (then it is a tree phase).
        """
        start = op.phase.start_s
        end = op.phase.end_s if op.phase.end_s is not None else float("inf")
        if op.own is None:
            ts, vs = times, values
        else:
            op.subtree |= self.started_by(op.own, start, end)
            op.tree = op.tree or bool(op.subtree)
            ts, vs = summed(batch, (op.own, *op.subtree))
        best = op.sampled
        for t, v in zip(ts, vs):
            if start <= t <= end and v > best:
                best = v
        op.sampled = best

    def close(self, pid: int | None = None) -> None:
        """Stop reading announcer ``pid`` (every announcer when None)."""
        for ann in self.announcers.values() if pid is None else [self.announcers[pid]]:
            ann.close()


def fallback(op: OpenPhase) -> tuple[int | None, str]:
    """The best figure for a phase without a clean exact peak."""
    candidates = [v for v in (op.sampled, op.phase.start_rss_bytes, op.phase.end_rss_bytes) if v]
    if op.hwm and not op.hwm_spills:
        candidates.append(op.hwm)  # the root's own exact peak in the phase: the tree held at least this
    return (max(candidates) if candidates else None), SOURCE_SAMPLED


def at_least_reported(phase: Phase, peak: int | None, source: str) -> tuple[int | None, str]:
    """A log phase's peak is at least the figures the program printed inside it.

    Beyond the printed figure's rounding and the kernel's per-CPU counter slack, a larger printed
    figure wins (source ``reported``): the kernel interval was read later than the line was written.
    """
    if peak is not None and "log_boundaries" in phase.flags:
        printed = [v for v in (phase.start_rss_bytes, phase.end_rss_bytes) if v is not None]
        if printed and max(printed) > peak + _PRINT_SLACK:
            return max(printed), "reported"
    return peak, source


def summed(batch: Batch, pids: tuple[int, ...]) -> tuple[list[float], list[int]]:
    """The sum of these processes' RSS series at each sample time of the batch."""
    total: dict[float, int] = {}
    for pid in pids:
        ts, vs = batch.series.get(proc_series(pid), ([], []))
        for t, v in zip(ts, vs):
            total[t] = total.get(t, 0) + v
    times = sorted(total)
    return times, [total[t] for t in times]
