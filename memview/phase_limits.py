"""How much of a program's markers a session stores: rate and total caps, counted, never silent.

Why a module of its own: a program may announce phases or marks in a loop (100k a second), and
every phase boundary reads and resets ``/proc``; without caps memview would fall behind and fill
the database. What is over a cap is counted and said in one closing warning, so a reader knows
the figures are incomplete. The caps and their bookkeeping are here; the tracker asks
:meth:`Budget.admit` per phase or mark.
"""

from __future__ import annotations

import time
from typing import Any

MAX_DEPTH = 64  # deeper nesting is a program bug (starts without ends): further starts are refused
MARKS_PER_SECOND = 1000  # marks beyond this rate are counted, not stored
MAX_MARKS = 20_000  # per session
PHASES_PER_SECOND = 500  # phase starts measured per second (each boundary reads and resets /proc)
MAX_PHASES = 10_000  # per session; further phases are counted (their ends matched), not measured
MAX_WARNINGS = 20  # warnings stored one by one; the rest are counted in one closing warning


class Budget:
    """At most ``per_second`` items in any one second of the monotonic clock and ``total`` in all.

    ``seen`` counts every item offered, ``dropped`` those over a cap. Not thread-safe: the
    tracker calls it under its lock.
    """

    __slots__ = ("_window", "dropped", "per_second", "seen", "total")

    def __init__(self, per_second: int, total: int) -> None:
        self.per_second = per_second
        self.total = total
        self.seen = 0
        self.dropped = 0
        self._window = (0, 0)  # (monotonic second, items kept in it)

    def admit(self) -> bool:
        """Count one item; True if it is kept, False if it is over a cap (then counted as dropped)."""
        self.seen += 1
        second = int(time.monotonic())
        window, n = self._window
        if window != second:
            window, n = second, 0
        if n >= self.per_second or self.seen - self.dropped > self.total:
            self._window = (window, n)
            self.dropped += 1
            return False
        self._window = (window, n + 1)
        return True

    def dropping(self) -> bool:
        """Whether the next item would be dropped now (without counting it)."""
        window, n = self._window
        if window == int(time.monotonic()) and n >= self.per_second:
            return True
        return self.seen - self.dropped >= self.total

    def skip(self) -> None:
        """Count one item as dropped without offering it (the caller asked :meth:`dropping`)."""
        self.seen += 1
        self.dropped += 1


def closing_warnings(phases: Budget, marks: Budget, warnings_dropped: int) -> list[tuple[str, dict[str, Any]]]:
    """The session's closing warnings, (message, data): how much of what the program announced
    was counted, not kept."""
    out: list[tuple[str, dict[str, Any]]] = []
    if phases.dropped:
        out.append(
            (
                f"{phases.dropped} of {phases.seen} phases were counted, not measured "
                f"(more than {PHASES_PER_SECOND} per second or {MAX_PHASES} in all)",
                {"phases": phases.seen, "dropped": phases.dropped},
            )
        )
    if marks.dropped:
        out.append(
            (
                f"{marks.dropped} of {marks.seen} marks were not stored "
                f"(more than {MARKS_PER_SECOND} per second or {MAX_MARKS} in all)",
                {"marks": marks.seen, "dropped": marks.dropped},
            )
        )
    if warnings_dropped:
        out.append((f"{warnings_dropped} more marker warnings were not stored", {"dropped": warnings_dropped}))
    return out
