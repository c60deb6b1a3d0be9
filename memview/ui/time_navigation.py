"""How the plot's time range moves: Follow, and the wheel and drag along time.

Follow keeps the newest data in view; it moves the range in steps, not every frame, because a
range that moves re-lays every axis and repaints the whole scene in software (the live view's
stall, issue 18). The wheel and a drag act on time only, so the memory scale a user reads from
stays put; Ctrl or Shift moves them to the memory axis. Kept apart from the plot so the stepping
rule is a plain function, tested without a widget.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore

#: the shortest time range Follow shows (a session's first second)
MIN_SPAN_S = 1.0
#: Follow moves the time range in steps of this fraction of its width (see follow_x_range)
FOLLOW_STEP = 0.05
#: ... and at least this many seconds (a young session would otherwise step several times a second)
FOLLOW_MIN_STEP_S = 1.0


def follow_x_range(last: float, window_s: float | None, current: tuple[float, float]) -> tuple[float, float]:
    """The time range Follow shows with ``last`` the newest time: ``current`` while the newest data
    is in it with at most two steps of empty room on the right, else a new range with one step
    (``FOLLOW_STEP`` of its width, at least ``FOLLOW_MIN_STEP_S``) of room. Moving in steps rather
    than every frame is what keeps a live frame cheap: between steps the axes, grid and tick labels
    are unchanged and only the curves repaint (a moving range re-lays every axis and repaints the
    whole scene, 30 times a second)."""
    x1 = max(last, MIN_SPAN_S)
    width = x1 if window_s is None else min(x1, window_s)  # a session younger than the window: all of it
    step = max(width * FOLLOW_STEP, FOLLOW_MIN_STEP_S)

    def left_of(right: float) -> float:
        return 0.0 if window_s is None or right <= window_s else right - window_s

    c0, c1 = current
    if x1 <= c1 <= x1 + 2 * step and abs(c0 - left_of(c1)) <= 1e-9 * max(1.0, c1):
        return current
    right = x1 + step
    return left_of(right), right


def follow_y_top(top: float, current: float | None) -> float:
    """The memory range's top for the highest visible value ``top``: ``current`` while it leaves
    room above ``top`` for the peak's label (about 25 px) without wasting more than a third of the
    plot, else ``top`` with a quarter's room. Same reason as :func:`follow_x_range`."""
    if current is not None and top * 1.12 <= current <= top * 1.5:
        return current
    return top * 1.25


class TimeViewBox(pg.ViewBox):
    """A view box whose wheel and drag act on time; Ctrl or Shift moves them to the memory axis."""

    MEMORY_MODIFIERS = QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.setMouseEnabled(x=True, y=False)

    def _routed(self, ev: Any, handler: Any, axis: Any) -> None:
        """Run pyqtgraph's ``handler`` on the time axis, or on the memory axis with Ctrl/Shift held."""
        if not ev.modifiers() & self.MEMORY_MODIFIERS:
            handler(ev, axis)
            return
        self.setMouseEnabled(x=False, y=True)
        try:
            handler(ev, axis)
        finally:
            self.setMouseEnabled(x=True, y=False)

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        self._routed(ev, super().wheelEvent, axis)

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        self._routed(ev, super().mouseDragEvent, axis)
