"""The crosshair: a vertical line through the plot and the lane at the cursor, and a tooltip
beside it (the view fills it with every visible series' value, the phase, a mark, a gap).

The tooltip is placed right of the cursor, or left of it near the right edge, and below or
above it so it stays inside the plot. Mouse moves are rate-limited to 30 a second.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore


class Crosshair:
    """PlotArea's crosshair and tooltip (a mixin: they share the plot's state)."""

    main: pg.PlotItem
    lane: pg.PlotItem

    def _build_crosshair(self) -> None:
        theme = self.theme  # type: ignore[attr-defined]
        cross_pen = pg.mkPen((128, 128, 128, 170), width=1, style=QtCore.Qt.PenStyle.DotLine)
        self.cross = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.cross_lane = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.main.addItem(self.cross, ignoreBounds=True)
        self.lane.addItem(self.cross_lane, ignoreBounds=True)
        self.cross.hide()
        self.cross_lane.hide()
        self.tip = pg.TextItem(color=theme.text, anchor=(0, 0), fill=theme.label_fill, border=pg.mkPen(theme.muted))
        self.tip.setZValue(30)
        self.main.addItem(self.tip, ignoreBounds=True)
        self.tip.hide()
        self._proxy = pg.SignalProxy(
            self.scene().sigMouseMoved,
            rateLimit=30,  # type: ignore[attr-defined]
            slot=self._mouse_moved,
        )

    def _mouse_moved(self, args: tuple[Any, ...]) -> None:
        pos = args[0]
        for plot in (self.main, self.lane):
            if plot.sceneBoundingRect().contains(pos):
                p = plot.vb.mapSceneToView(pos)
                t = p.x()
                y = self.main.vb.mapSceneToView(pos).y() if plot is self.main else math.nan
                self.cross.setPos(t)
                self.cross_lane.setPos(t)
                self.cross.show()
                self.cross_lane.show()
                self.hovered.emit(float(t), float(y))
                return
        self.hide_tip()
        self.hovered.emit(math.nan, math.nan)

    def leaveEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 - the cursor left for another widget
        self.hide_tip()  # no scene move follows: a stale tooltip would stay over the plot
        self.hovered.emit(math.nan, math.nan)
        super().leaveEvent(event)  # type: ignore[misc]

    def hide_tip(self) -> None:
        self.cross.hide()
        self.cross_lane.hide()
        self.tip.hide()

    def show_tip(self, t: float, y: float, html: str) -> None:
        """The crosshair tooltip at (t, y): right of the cursor, or left of it near the right edge."""
        (x0, x1), (y0, y1) = self.main.vb.viewRange()
        if not math.isfinite(y):
            y = y1
        self.tip.setHtml(html)
        width = self.tip.boundingRect().width() * self.main.vb.viewPixelSize()[0]
        height = self.tip.boundingRect().height() * self.main.vb.viewPixelSize()[1]
        left = t - width if t + width * 1.1 > x1 else t  # its left edge: right of the cursor, else left of it
        left = max(x0, min(left, x1 - width))  # never cut off by either edge of the plot
        ay = 0.0 if y - height > y0 else 1.0
        self.tip.setAnchor((0.0, ay))
        self.tip.setPos(left, y)
        self.tip.show()

    def visible_time_span(self) -> float:
        x0, x1 = self.main.vb.viewRange()[0]
        return max(x1 - x0, 0.0)
