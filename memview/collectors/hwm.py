"""The one owner of high-water-mark reads and resets for a process tree (the collector's half).

Why one owner: a reset (``clear_refs 5``) is visible to every later reader, so the sampler's
envelope, phase boundaries (:meth:`HighWaterMarks.take_hwm`) and exit figures must fold into the
same per-process figures under one lock, or a phase would lose the maximum the envelope had just
reset. :class:`~memview.collectors.process.ProcessTreeCollector` inherits this; the attributes
declared below are its own, set in its ``__init__``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from memview.collectors import procfs
from memview.collectors.tracer import Tracer
from memview.collectors.tracked import Tracked
from memview.model import SOURCE_EXIT, SOURCE_SAMPLED, SOURCE_VMHWM, ProcessExit


class HighWaterMarks:
    """Exact per-process peaks: VmHWM reads, resets, exit figures, the root's exact peak."""

    root_pid: int
    tracer: Tracer | None
    fast: bool
    resets_allowed: bool
    root_exact_peak: int | None
    root_exact_source: str
    _lock: threading.Lock
    _root: Tracked
    _root_hwm_seen: int | None
    _procs: dict[int, Tracked]
    _gone_tr: dict[int, Tracked]
    _exits: list[ProcessExit]
    _exit_figs: dict[int, ProcessExit]
    _session_t: Callable[[float], float]  # tracer times -> session time (TracerReports)

    def _envelope_read(self, tr: Tracked) -> tuple[int, int] | None:
        """(RSS, exact max since the previous envelope read), resetting the mark; None if gone."""
        mem = tr.mem
        assert isinstance(mem, procfs.ProcMemory)  # the envelope is on only where procfs is
        with self._lock:
            pair = mem.rss_hwm()
            if pair is None:
                return None
            rss, hwm = pair
            if hwm > rss:
                mem.reset_hwm()
            self._fold_hwm(tr, hwm)
        self._raise_peak(tr, hwm)
        return pair

    def _read_hwm(self, tr: Tracked, t: float) -> None:
        """Read (without resetting) the process's VmHWM: its peak so far, while it lives."""
        tr.hwm_at = t
        with self._lock:
            hwm = tr.mem.hwm()
            if hwm is None:
                return
            self._fold_hwm(tr, hwm)
        self._raise_peak(tr, hwm)

    def _fold_hwm(self, tr: Tracked, hwm: int) -> None:
        """A VmHWM just read (under ``_lock``) raises the figures it bounds: the maximum since the
        last :meth:`take_hwm`, the process's own exact peak, and the root's."""
        if tr.since_take is None or hwm > tr.since_take:
            tr.since_take = hwm
            if tr is self._root:
                self._root_hwm_seen = hwm
        tr.fold_perf = time.perf_counter()
        if tr.exact is None or hwm > tr.exact:
            tr.exact = hwm
        if tr is self._root:
            self._fold_root(hwm, SOURCE_VMHWM)

    @staticmethod
    def _raise_peak(tr: Tracked, hwm: int) -> None:
        """The per-process record's peak: a kernel figure at least as high as any sample replaces it."""
        info = tr.info
        if hwm >= info.peak_rss_bytes:
            info.peak_rss_bytes = hwm
            info.peak_source = SOURCE_VMHWM

    def _fold_root(self, value: int, source: str) -> None:
        if self.root_exact_peak is None or value > self.root_exact_peak:
            self.root_exact_peak = value
            self.root_exact_source = source

    def _fold_exit(self, tr: Tracked, ex: ProcessExit) -> None:
        """The exit figure is the process's own peak since its last reset: fold the earlier ones in."""
        info = tr.info
        if ex.hwm_bytes is not None and ex.source == SOURCE_EXIT:
            with self._lock:
                own = max(ex.hwm_bytes, tr.exact or 0)
                tr.exact = own
                tr.since_take = max(tr.since_take or 0, ex.hwm_bytes)
                if tr is self._root:
                    self._root_hwm_seen = tr.since_take
                    self.root_exact_peak = own
                    self.root_exact_source = SOURCE_EXIT
            info.peak_rss_bytes = own
            info.peak_source = SOURCE_EXIT
        self._note_exit(tr, ex)

    def _note_exit(self, tr: Tracked, ex: ProcessExit) -> None:
        tr.exit = ex
        self._exit_figs[ex.pid] = ex
        self._exits.append(ex)

    # -- for phases, captures and the runner ----------------------------------------------------------

    def take_hwm(self, pid: int) -> tuple[int | None, str]:
        """The exact maximum of ``pid`` since the previous ``take_hwm`` for it, then reset the mark.

        The ONE place a caller other than the sampler resets a high-water mark (phase
        boundaries call this). The sampler's own envelope resets are folded into the value, so
        the two never fight: the result covers every moment since the previous call. The value
        is also folded into the process's own exact peak. Resets happen only where allowed
        (memview's own launched tree; ``attach --envelope``); otherwise the value is the
        process's VmHWM since it started. A process that has exited answers with its exit
        figure; one that cannot be read answers ``(None, "sampled")``.
        """
        tr = self._procs.get(pid)
        if tr is None or not tr.alive:
            ex = self.exit_figures(pid)
            done = tr or self._gone_tr.get(pid)
            if ex is None or ex.hwm_bytes is None:
                return None, SOURCE_SAMPLED
            with self._lock:
                value = max(ex.hwm_bytes, (done.since_take or 0) if done is not None else 0)
                if done is not None:
                    done.since_take = None
            return value, ex.source
        if not self.fast:
            return None, SOURCE_SAMPLED
        with self._lock:
            hwm = tr.mem.hwm()
            if hwm is None:
                return None, SOURCE_SAMPLED
            value = max(hwm, tr.since_take or 0)
            self._fold_hwm(tr, value)
            tr.since_take = None  # taken: the next take starts from here
            if tr is self._root:
                self._root_hwm_seen = None
            if self.resets_allowed and isinstance(tr.mem, procfs.ProcMemory):
                tr.mem.reset_hwm()
        self._raise_peak(tr, value)
        return value, SOURCE_VMHWM

    def exit_figures(self, pid: int) -> ProcessExit | None:
        """Figures read at ``pid``'s exit (session time); None while it runs or when unknown."""
        ex = self._exit_figs.get(pid)
        if ex is not None:
            return ex
        if self.tracer is not None:
            raw = self.tracer.exit_of(pid)
            if raw is not None:
                return ProcessExit(pid, self._session_t(raw.t), raw.hwm_bytes, raw.rss_bytes, raw.source)
        return None

    def root_hwm_seen(self) -> int | None:
        """The largest root VmHWM the sampler read since the last reset (None if none)."""
        return self._root_hwm_seen

    def set_root_exit(self, maxrss_bytes: int | None, exit_code: int | None, source: str) -> None:
        """The launched root was reaped: fold ``ru_maxrss`` into its exact peak."""
        info = self._root.info
        info.exit_code = exit_code
        if self._root.exit is None and maxrss_bytes:
            self._note_exit(self._root, ProcessExit(self.root_pid, info.last_t, maxrss_bytes, None, source))
        if maxrss_bytes:
            with self._lock:
                self._fold_root(maxrss_bytes, source)
            if maxrss_bytes >= info.peak_rss_bytes:
                info.peak_rss_bytes = maxrss_bytes
                info.peak_source = source
