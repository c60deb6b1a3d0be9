"""The peak on the plot: a dot on the highest sample and a label with the session's peak figure
(the exact one, the kernel's high-water mark, when known: the same figure as the side panel).

The label is kept inside the plot: left or right of the dot near an edge, under it when there is
no room above, and out from under the legend (under or beside the dot, or under the legend). It
is re-set only when the figure changes: a label set again repaints every frame.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore

from memview.ui.series_buffer import SeriesBuffer
from memview.units import format_bytes


class PeakLabel:
    """PlotArea's peak dot and label (a mixin: they share the plot's state)."""

    main: pg.PlotItem

    def _build_peak(self) -> None:
        theme = self.theme  # type: ignore[attr-defined]
        self.peak_marker = pg.ScatterPlotItem(
            size=9, symbol="o", pen=pg.mkPen(theme.background, width=1.5), brush=pg.mkBrush(theme.total)
        )
        self.peak_label = pg.TextItem(color=theme.total, anchor=(0.5, 1.25), fill=theme.label_fill)
        self.main.addItem(self.peak_marker)
        self.main.addItem(self.peak_label, ignoreBounds=True)
        self.peak_label.setZValue(15)
        self.peak_label.hide()
        self.peak_value: float | None = None  # the figure the label shows (the exact peak when known)
        self.peak_t: float | None = None
        self._peak_shown: tuple[float, float, float, bool] | None = None
        self.main.vb.sigRangeChanged.connect(lambda *_: self._place_peak_label())
        self.main.vb.sigResized.connect(lambda *_: self._place_peak_label())  # the same range, other pixels

    def _show_peak(self, total: SeriesBuffer, peak: tuple[float, str] | None) -> None:
        """Label ``total``'s highest sample with ``peak`` (figure, exact source) when that is at
        least as high (the exact peak), else with the sample itself."""
        peak_t, peak_v = total.max_t, total.max
        if peak_t is None or peak_v is None:
            return
        value, exact = (peak[0], peak[1]) if peak is not None and peak[0] >= peak_v else (peak_v, "")
        shown = (float(peak_t), float(peak_v), float(value), bool(exact))
        if shown == self._peak_shown:  # re-set, the marker and the label repaint every frame
            return
        self._peak_shown = shown
        self.peak_marker.setData([peak_t], [peak_v])
        self.peak_value, self.peak_t = float(value), float(peak_t)
        self.peak_label.setText(f"peak {format_bytes(value)}" + (" ✓" if exact else ""))
        self.peak_label.setToolTip("the kernel's own high-water mark" if exact else "the largest sample")
        self.peak_label.show()
        self._place_peak_label()

    def _place_peak_label(self) -> None:
        """Keep the peak's label inside the plot: left or right of the point near an edge, and
        under it when there is no room above."""
        if self.peak_t is None or self.peak_value is None or not self.peak_label.isVisible():
            return
        (x0, x1), (y0, y1) = self.main.vb.viewRange()
        px = self.main.vb.viewPixelSize()  # data units per pixel
        width_px = self.peak_label.boundingRect().width()
        height_px = self.peak_label.boundingRect().height()
        t = min(max(self.peak_t, x0), x1)
        room_left = (t - x0) / px[0] if px[0] else 1e9
        room_right = (x1 - t) / px[0] if px[0] else 1e9
        ax = 0.5
        if room_left < width_px / 2 + 4:
            ax = 0.0
        elif room_right < width_px / 2 + 4:
            ax = 1.0
        y = min(self.peak_marker.data["y"][0] if len(self.peak_marker.data) else self.peak_value, y1)
        room_above = (y1 - y) / px[1] if px[1] else 1e9
        ay = 1.25 if room_above >= height_px * 1.25 + 2 else -0.25
        self.peak_label.setPos(t, y)
        # the legend sits over the plot's top-left corner, where an early peak's label goes: the
        # label moves under its dot, or beside it, rather than be painted over
        legend = getattr(self, "legend", None)
        if legend is None or not legend.isVisible():
            self.peak_label.setAnchor((ax, ay))
            return
        box = self.main.vb.sceneBoundingRect().adjusted(-1, -1, 1, 1)
        covered = legend.sceneBoundingRect()
        for anchor in ((ax, ay), (ax, -0.25), (-0.06, 0.5), (1.06, 0.5)):
            self.peak_label.setAnchor(anchor)
            rect = self.peak_label.sceneBoundingRect()
            if box.contains(rect) and not rect.intersects(covered):
                return
        # the dot is level with the legend: the label goes just under the legend, above the dot's time
        self.peak_label.setAnchor((ax, 0.0))
        self.peak_label.setPos(t, self.main.vb.mapSceneToView(QtCore.QPointF(0, covered.bottom() + 3)).y())
        if not box.contains(self.peak_label.sceneBoundingRect()):  # no room there either: inside the plot first
            self.peak_label.setAnchor((ax, ay))
            self.peak_label.setPos(t, y)
