"""The threshold on the plot: a draggable line (the live trigger follows it) and, for a rule
scoped to a phase (``parse:200MB``), solid segments over that phase's spans only, the line
itself faint elsewhere: drawn across the whole timeline it would claim a limit that does not
apply there.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from memview.ui.plot_items import THRESHOLD_COLOUR, threshold_line


class ThresholdOverlay:
    """PlotArea's threshold (a mixin: it shares the plot's state)."""

    main: pg.PlotItem

    def _build_threshold(self) -> None:
        self.threshold: pg.InfiniteLine | None = None
        self.threshold_phase: str | None = None  # a phase-scoped rule (parse:200MB) is drawn over that phase only
        self.threshold_segments = pg.PlotCurveItem(
            pen=pg.mkPen(THRESHOLD_COLOUR, width=2, style=QtCore.Qt.PenStyle.DashLine), connect="finite"
        )
        self.threshold_segments.setZValue(19)
        self.main.addItem(self.threshold_segments, ignoreBounds=True)
        self._phase_ranges: list[tuple[float, float]] = []

    def set_threshold(self, value: float | None, movable: bool = True, phase: str | None = None) -> None:
        """Show the threshold at ``value`` bytes (None hides it). A phase-scoped rule is drawn over
        that phase's spans only, labelled with its phase; the line stays draggable."""
        if value is None:
            if self.threshold is not None:
                self.threshold.hide()
            self.threshold_segments.setData([], [])
            return
        if self.threshold is None:
            self.threshold = threshold_line(value, movable=movable)
            self.threshold.sigPositionChangeFinished.connect(self._threshold_dragged)
            self.threshold.sigPositionChanged.connect(lambda *_: self._draw_threshold_segments())
            self.threshold.label.fill = pg.mkBrush(*self.theme.label_fill)
            self.main.addItem(self.threshold, ignoreBounds=True)
        if phase != self.threshold_phase:
            self.threshold_phase = phase
            self.threshold.label.format.prefix = f"{phase}: threshold" if phase else "threshold"  # type: ignore[attr-defined]
            # a phase-scoped line is faint outside its phase (it stays the handle to drag); the
            # solid segments over the phase are what it means
            style = QtCore.Qt.PenStyle
            self.threshold.setPen(
                pg.mkPen((214, 39, 40, 70), width=1, style=style.DotLine)
                if phase
                else pg.mkPen(THRESHOLD_COLOUR, width=2, style=style.DashLine)
            )
        self.threshold.setValue(value)
        self.threshold.label.valueChanged()
        self.threshold.show()
        self._draw_threshold_segments()

    def _draw_threshold_segments(self) -> None:
        line = self.threshold
        if line is None or not line.isVisible() or not self.threshold_phase or not self._phase_ranges:
            self.threshold_segments.setData([], [])
            return
        value = float(line.value())
        xs: list[float] = []
        ys: list[float] = []
        for start, end in self._phase_ranges:
            xs += [start, end, math.nan]
            ys += [value, value, math.nan]
        self.threshold_segments.setData(np.array(xs), np.array(ys))

    def _threshold_dragged(self, line: pg.InfiniteLine) -> None:
        self.threshold_moved.emit(int(round(line.value())))
