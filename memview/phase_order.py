"""Log lines placed by their own timestamps, not by the order memview reads them.

Why a module of its own: a program's log lines reach memview on more than one channel (stdout
and stderr, a log file and a pipe), each buffered its own way, so a ``before X`` can be read after
the ``after X`` or after lines that came later by the program's clock. A line that carries its
own time (``"t"``) is placed by that time: a start read late goes *below* the phases its line
precedes (:func:`insert_late`), an end read early waits for its start (:class:`EarlyEnds`), and a
phase started after an end line by the clock is not closed by it (:func:`split_late_starts`). A
``before X`` read while log phase ``X`` is still open closes it first (:func:`take_repeated`).
Every phase so placed is flagged ``reordered`` and loses its exact figure where the kernel's
intervals no longer match its span. The phase tracker calls these under its lock.
"""

from __future__ import annotations

from collections import deque

from memview.markers import Marker
from memview.phase_limits import MAX_DEPTH
from memview.phase_meter import OpenPhase

LOG_VIAS = frozenset({"log", "stdout", "stderr"})  # markers read from a program's own log lines
RECENT_SAMPLES = 20_000  # the tree's latest RSS samples, for a phase whose line is read after its samples


def timed(item: Marker) -> bool:
    """A log line with its own timestamp: its place among the other lines is its time, not its arrival."""
    return item.via in LOG_VIAS and item.t is not None


def timed_op(op: OpenPhase) -> bool:
    return op.timed and not op.ghost


def mark_reordered(op: OpenPhase) -> None:
    if "reordered" not in op.phase.flags:
        op.phase.flags.append("reordered")


class RecentSamples:
    """The tree's latest RSS samples, already handed on, for a phase opened after its own span."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=RECENT_SAMPLES)  # (t, tree RSS)

    def extend(self, times: list[float], values: list[int]) -> None:
        self._samples.extend(zip(times, values))

    def seed(self, op: OpenPhase, end: float) -> None:
        """The samples in a late phase's span ``[start, end]`` that were handed on before it opened."""
        if op.own is None:
            start = op.phase.start_s
            op.sampled = max([op.sampled, *(v for t, v in self._samples if start <= t <= end)])


def insert_late(stack: list[OpenPhase], op: OpenPhase, item: Marker, recent: RecentSamples) -> bool:
    """Place a timestamped start read after the starts of phases its line precedes; False if none.

    Those phases began inside it: it goes below them, they one level deeper, and what was
    measured on them since its line is its too.
    """
    t = op.phase.start_s
    later = next((i for i, o in enumerate(stack) if timed_op(o) and o.phase.start_s > t), None)
    if later is None or not timed(item):
        return False
    mark_reordered(op)
    op.exact = False  # the time between its line and now was measured on them, not on it
    recent.seed(op, float("inf"))
    for inner in stack[later:]:
        inner.phase.depth += 1
        op.hwm, op.sampled = max(op.hwm, inner.hwm), max(op.sampled, inner.sampled)
    op.phase.depth = later
    stack.insert(later, op)
    return True


def split_late_starts(
    stack: list[OpenPhase], closing: list[OpenPhase], index: int, item: Marker, t: float
) -> list[OpenPhase]:
    """Of the phases an end line at ``t`` would close, keep open those whose start lines are later.

    They were read first from another channel and are not inside it: they stay open one level up
    (back on ``stack``) and its own intervals spill into theirs. Returns what the end closes.
    """
    stay = [op for op in closing[1:] if timed(item) and timed_op(op) and op.phase.start_s > t]
    if not stay:
        return closing
    closing = [op for op in closing if op not in stay]
    mark_reordered(closing[0])
    closing[0].exact, closing[0].hwm_spills = False, True
    for depth, op in enumerate(stay, start=index):
        op.phase.depth = depth
        stack.append(op)
    return closing


def take_repeated(stack: list[OpenPhase], item: Marker) -> list[OpenPhase]:
    """The documented rule for log lines: a ``before X`` while a log phase ``X`` is still open
    closes that phase (and what was opened inside it), flagged ``unclosed``, before X starts
    again at its depth. A ``before`` whose ``after`` never came (an exception between the two)
    would otherwise nest every later phase one level deeper, for ever. Returns the phases it
    takes off ``stack``, outermost first (to be closed)."""
    for i in range(len(stack) - 1, -1, -1):
        if stack[i].phase.name == item.name and stack[i].phase.data.get("via") in LOG_VIAS and not stack[i].ghost:
            closing = stack[i:]
            del stack[i:]
            for op in closing:
                op.phase.flags.append("unclosed")
                op.phase.data["closed_by"] = "the next start of the same name"
            return closing
    return []


class EarlyEnds:
    """Timestamped end lines read before their start (another channel, or a buffered stream)."""

    def __init__(self) -> None:
        self._ends: list[tuple[Marker, float]] = []

    def hold(self, item: Marker, t: float) -> bool:
        """Keep an unmatched end line for a start that may be read later; False if it cannot wait."""
        if not (timed(item) and item.name is not None) or len(self._ends) >= MAX_DEPTH:
            return False
        self._ends.append((item, t))
        return True

    def take(self, op: OpenPhase, item: Marker) -> tuple[Marker, float] | None:
        """The held end of the phase ``op`` that ``item`` just started, if one was read already."""
        for k, (end, end_t) in enumerate(self._ends):
            if end.name == item.name and end.pid == item.pid and end_t >= op.phase.start_s:
                del self._ends[k]
                return end, end_t
        return None

    def unmatched(self) -> list[Marker]:
        """The ends still held (the session is over: their starts never came); cleared."""
        ends = [end for end, _t in self._ends]
        self._ends.clear()
        return ends
