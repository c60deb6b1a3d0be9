"""The session's plot: RSS over time, the phase/capture lane under it, threshold, crosshair.

Everything here draws from :class:`~memview.ui.series_buffer.SeriesBuffer` views and never reads
the store or the recorder. Curves use pyqtgraph's peak downsampling and clip-to-view, so a
1-million-sample session redraws from a few thousand points and a 30 ms spike stays visible
when the whole hour is on screen (min/max per pixel column, not averages).

"Follow" keeps the newest data in view; the first pan or zoom by the user turns it off (the
view stays where they put it) until they turn it back on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from memview.model import RSS_SERIES
from memview.ui.plot_items import (
    CAPTURE_COLOUR,
    TOTAL_COLOUR,
    BytesAxis,
    LaneItem,
    Span,
    TimeAxis,
    series_colour,
    threshold_line,
)
from memview.ui.series_buffer import SeriesBuffer
from memview.units import format_bytes

AXIS_WIDTH = 78
LANE_ROW_PX = 20
MIN_SPAN_S = 1.0


def _curve(pen: Any, name: str | None = None, **kw: Any) -> pg.PlotDataItem:
    item = pg.PlotDataItem(pen=pen, name=name, **kw)
    item.setDownsampling(auto=True, method="peak")
    # one min/max pair per pixel column: a spike still shows, and a frame costs the same at 1k or 1M samples
    item.opts["autoDownsampleFactor"] = 1.0
    item.setClipToView(True)
    item.setSkipFiniteCheck(True)
    return item


class PlotArea(pg.GraphicsLayoutWidget):
    """Main plot + lane, x-linked; see the module docstring."""

    follow_changed = QtCore.Signal(bool)
    hovered = QtCore.Signal(float)
    capture_clicked = QtCore.Signal(object)
    span_clicked = QtCore.Signal(object)
    threshold_moved = QtCore.Signal(object)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(420, 260)
        self.ci.layout.setContentsMargins(4, 6, 10, 4)
        self.ci.layout.setVerticalSpacing(0)
        self.main = pg.PlotItem(axisItems={"left": BytesAxis("left")})
        self.lane = pg.PlotItem(axisItems={"bottom": TimeAxis("bottom")})
        self.addItem(self.main, row=0, col=0)
        self.addItem(self.lane, row=1, col=0)
        self.ci.layout.setRowStretchFactor(0, 10)
        self.lane.setXLink(self.main)
        for plot in (self.main, self.lane):
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            plot.setMenuEnabled(False)
            plot.hideButtons()
        self.main.showGrid(x=True, y=True, alpha=0.15)
        self.main.getAxis("bottom").setStyle(showValues=False)
        self.main.getAxis("bottom").setHeight(4)
        self.main.setLimits(yMin=0, xMin=-1)
        # PlotItem.addItem() imposes the plot's own modes on every curve added to it, so the
        # peak downsampling and clip-to-view must be set here, not (only) on the curves
        self.main.setDownsampling(auto=True, mode="peak")
        self.main.setClipToView(True)
        self.main.vb.disableAutoRange()
        self.lane.vb.disableAutoRange()
        self.lane.vb.invertY(True)
        self.lane.vb.setMouseEnabled(x=True, y=False)
        self.lane.getAxis("left").setStyle(tickLength=0)
        self.lane.showGrid(x=True, y=False, alpha=0.15)
        self.legend = self.main.addLegend(offset=(8, 8), labelTextSize="8pt", brush=(255, 255, 255, 200))

        self.total = _curve(pg.mkPen(TOTAL_COLOUR, width=2), name="RSS",
                            fillLevel=0, brush=pg.mkBrush(31, 78, 121, 40))
        self.main.addItem(self.total)
        self.service_peak: pg.PlotDataItem | None = None
        self.proc_curves: dict[str, pg.PlotDataItem] = {}
        self.comp_curves: dict[str, pg.PlotDataItem] = {}
        self.peak_marker = pg.ScatterPlotItem(size=9, symbol="o", pen=pg.mkPen("white", width=1.5),
                                              brush=pg.mkBrush(TOTAL_COLOUR))
        self.peak_label = pg.TextItem(color="#1f4e79", anchor=(0.5, 1.25))
        self.main.addItem(self.peak_marker)
        self.main.addItem(self.peak_label)
        self.peak_label.setZValue(15)

        self.lane_item = LaneItem()
        self.lane.addItem(self.lane_item)
        self.capture_points = pg.ScatterPlotItem(size=13, symbol="t1", hoverable=True, tip=self._capture_tip,
                                                 hoverSize=16)
        self.capture_points.sigClicked.connect(self._on_capture_clicked)
        self.lane.addItem(self.capture_points)
        self.capture_lines: list[pg.InfiniteLine] = []
        self.empty_lane = pg.TextItem("no phases", color="#999999", anchor=(0.5, 0.5))
        self.lane.addItem(self.empty_lane, ignoreBounds=True)

        self.threshold: pg.InfiniteLine | None = None
        cross_pen = pg.mkPen((90, 90, 90, 150), width=1, style=QtCore.Qt.PenStyle.DotLine)
        self.cross = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.cross_lane = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.main.addItem(self.cross, ignoreBounds=True)
        self.lane.addItem(self.cross_lane, ignoreBounds=True)
        self.cross.hide()
        self.cross_lane.hide()
        self._proxy = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        self.scene().sigMouseClicked.connect(self._mouse_clicked)

        self.follow = True
        self.window_s: float | None = None  # None: the whole session
        self.per_process = False
        self.show_components = True
        self._stack_top: float | None = None
        self._lane_rows = 0
        self._set_lane_rows(1, [])
        self.main.vb.sigRangeChangedManually.connect(self._user_moved)
        self.lane.vb.sigRangeChangedManually.connect(self._user_moved)

    # -- follow ----------------------------------------------------------------------------------
    def set_follow(self, on: bool) -> None:
        if on == self.follow:
            return
        self.follow = on
        self.follow_changed.emit(on)

    def _user_moved(self, *_: Any) -> None:
        self.set_follow(False)

    def apply_follow(self, buffers: dict[str, SeriesBuffer], end_t: float | None) -> None:
        """Put the newest data in view (the whole session, or the last ``window_s`` seconds)."""
        total = buffers.get(RSS_SERIES)
        last = end_t if end_t is not None else (total.last_t if total is not None and total.count else None)
        if last is None:
            self.main.vb.setRange(xRange=(0, 10), yRange=(0, 100 * 2**20), padding=0)
            return
        x1 = max(last, MIN_SPAN_S)
        x0 = 0.0 if self.window_s is None else max(0.0, x1 - self.window_s)
        top = self._visible_max(buffers, x0, x1)
        if self.threshold is not None and self.threshold.isVisible():
            value = float(self.threshold.value())
            if value <= 2 * max(top, 1):
                top = max(top, value)
        top = max(top, 1024**2) * 1.12
        self.main.vb.setRange(xRange=(x0, x1 + (x1 - x0) * 0.01), yRange=(0, top), padding=0)

    def _visible_max(self, buffers: dict[str, SeriesBuffer], x0: float, x1: float) -> float:
        names = [RSS_SERIES, "service_peak"]
        if self.per_process:
            names += [n for n in buffers if n.startswith(("pid:", "prom:"))]
        top = 0.0
        whole = self.window_s is None
        for name in names:
            buf = buffers.get(name)
            if buf is None or not buf.count:
                continue
            got = buf.max if whole else buf.max_between(x0, x1)
            if got is not None:
                top = max(top, got)
        if self.show_components and self._stack_top is not None:
            top = max(top, self._stack_top)
        return top

    # -- curves ----------------------------------------------------------------------------------
    def draw_series(self, buffers: dict[str, SeriesBuffer], labels: dict[str, str]) -> None:
        total = buffers.get(RSS_SERIES)
        if total is not None and total.count:
            self.total.setData(total.t, total.v)
            peak_t, peak_v = total.max_t, total.max
            if peak_t is not None and peak_v is not None:
                self.peak_marker.setData([peak_t], [peak_v])
                self.peak_label.setText(f"peak {format_bytes(peak_v)}")
                self.peak_label.setPos(peak_t, peak_v)
        self._draw_processes(buffers, labels)
        self._draw_components(buffers, labels)
        peak = buffers.get("service_peak")
        if peak is not None and peak.count:
            if self.service_peak is None:
                self.service_peak = _curve(pg.mkPen("#888888", width=1.5, style=QtCore.Qt.PenStyle.DashLine),
                                           name="service's own peak")
                self.main.addItem(self.service_peak)
            self.service_peak.setData(peak.t, peak.v)
        curves = [self.total, self.service_peak, *self.proc_curves.values(), *self.comp_curves.values()]
        self.legend.setVisible(sum(1 for c in curves if c is not None and c.isVisible()) > 1)

    def _draw_processes(self, buffers: dict[str, SeriesBuffer], labels: dict[str, str]) -> None:
        names = sorted((n for n in buffers if n.startswith("pid:")), key=lambda n: int(n[4:]))
        names += sorted(n for n in buffers if n.startswith("prom:"))  # a Prometheus query's label sets
        if not self.per_process or len(names) < 1:
            for curve in self.proc_curves.values():
                curve.hide()
            self.total.setPen(pg.mkPen(TOTAL_COLOUR, width=2))
            self.total.setBrush(pg.mkBrush(31, 78, 121, 40))
            return
        self.total.setPen(pg.mkPen(TOTAL_COLOUR, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        self.total.setBrush(None)
        for i, name in enumerate(names):
            curve = self.proc_curves.get(name)
            if curve is None:
                curve = self.proc_curves[name] = _curve(pg.mkPen(series_colour(i + 1), width=1.5),
                                                        name=labels.get(name, name))
                self.main.addItem(curve)
            curve.show()
            buf = buffers[name]
            curve.setData(buf.t, buf.v)

    def _draw_components(self, buffers: dict[str, SeriesBuffer], labels: dict[str, str]) -> None:
        names = sorted(n for n in buffers if n.startswith("component:"))
        if not names:
            return
        if not self.show_components:
            for curve in self.comp_curves.values():
                curve.hide()
            self._stack_top = None
            return
        base = buffers[names[0]]
        t = base.t
        stack = np.zeros(len(t))
        for i, name in enumerate(names):
            buf = buffers[name]
            values = buf.v if buf.count == len(t) else np.interp(t, buf.t, buf.v) if buf.count else np.zeros(len(t))
            stack = stack + values
            curve = self.comp_curves.get(name)
            if curve is None:
                colour = series_colour(i + 1)
                fill = QtGui.QColor(colour).lighter(135)
                # Each band fills down to 0 and sits behind the one below it, so what shows of it
                # is exactly its own slice of the stack (no FillBetween bookkeeping needed).
                curve = self.comp_curves[name] = _curve(pg.mkPen(colour, width=1), name=labels.get(name, name),
                                                        fillLevel=0, brush=pg.mkBrush(fill))
                curve.setZValue(-10 - i)
                self.main.addItem(curve)
            curve.show()
            curve.setData(t, stack)
        self._stack_top = float(stack.max()) if len(stack) else None

    # -- lane ------------------------------------------------------------------------------------
    def _set_lane_rows(self, rows: int, labels: list[tuple[float, str]]) -> None:
        rows = max(rows, 1)
        self.lane.getAxis("left").setTicks([labels, []])
        if rows != self._lane_rows:
            self._lane_rows = rows
            height = rows * LANE_ROW_PX + 34
            self.ci.layout.setRowFixedHeight(1, height)
        self.lane.vb.setYRange(0, rows, padding=0)

    def set_lane(self, phase_spans: list[Span], captures: list[dict[str, Any]], pressure: list[Span]) -> None:
        """Lay out the lane: captures on top, then pressure, then phases by depth."""
        rows = 0
        labels: list[tuple[float, str]] = []
        capture_row = pressure_row = None
        if captures:
            capture_row = rows
            labels.append((rows + 0.5, "captures"))
            rows += 1
        if pressure:
            pressure_row = rows
            labels.append((rows + 0.5, "pressure"))
            rows += 1
        phase_base = rows
        depth = max((s.row for s in phase_spans), default=-1) + 1
        if phase_spans:
            labels.append((phase_base + 0.5, "phases"))
        rows += max(depth, 0 if (captures or pressure) else 1)
        spans = [Span(pressure_row, s.start, s.end, s.colour, s.label, s.open, s.key) for s in pressure]
        spans += [Span(phase_base + s.row, s.start, s.end, s.colour, s.label, s.open, s.key) for s in phase_spans]
        self.lane_item.set_spans(spans)
        self._set_lane_rows(rows, labels)
        self.empty_lane.setVisible(not spans and not captures)
        if not spans and not captures:
            vr = self.main.vb.viewRange()[0]
            self.empty_lane.setPos((vr[0] + vr[1]) / 2, 0.5)
        self._set_captures(captures, capture_row)

    def _set_captures(self, captures: list[dict[str, Any]], row: int | None) -> None:
        for line in self.capture_lines:
            self.main.removeItem(line)
        self.capture_lines = []
        if row is None or not captures:
            self.capture_points.setData([], [])
            return
        xs, ys, brushes = [], [], []
        for cap in captures:
            t = float(cap.get("started_s") or 0.0)
            failed = cap.get("status") not in ("running", "ok", "completed", "done", None)
            colour = "#d62728" if failed else CAPTURE_COLOUR
            xs.append(t)
            ys.append(row + 0.5)
            brushes.append(pg.mkBrush(colour))
            line = pg.InfiniteLine(pos=t, angle=90, movable=False,
                                   pen=pg.mkPen(colour, width=1, style=QtCore.Qt.PenStyle.DashLine))
            line.setZValue(5)
            self.main.addItem(line, ignoreBounds=True)
            self.capture_lines.append(line)
        self.capture_points.setData(xs, ys, brush=brushes, data=list(captures))

    @staticmethod
    def _capture_tip(x: float, y: float, data: Any) -> str:
        cap = data or {}
        size = cap.get("size_bytes")
        parts = [f"{cap.get('tool', 'capture')} · {cap.get('status', '')}", f"trigger: {cap.get('trigger', '')}"]
        if cap.get("path"):
            parts.append(str(cap["path"]))
        if size:
            parts.append(format_bytes(size))
        parts.append("click to open")
        return "\n".join(parts)

    def _on_capture_clicked(self, _item: Any, points: Any, *_: Any) -> None:
        if len(points):
            self.capture_clicked.emit(points[0].data())

    # -- threshold -------------------------------------------------------------------------------
    def set_threshold(self, value: float | None, movable: bool = True) -> None:
        if value is None:
            if self.threshold is not None:
                self.threshold.hide()
            return
        if self.threshold is None:
            self.threshold = threshold_line(value, movable=movable)
            self.threshold.sigPositionChangeFinished.connect(self._threshold_dragged)
            self.main.addItem(self.threshold, ignoreBounds=True)
        self.threshold.setValue(value)
        self.threshold.show()

    def _threshold_dragged(self, line: pg.InfiniteLine) -> None:
        self.threshold_moved.emit(int(round(line.value())))

    # -- mouse -----------------------------------------------------------------------------------
    def _mouse_moved(self, args: tuple[Any, ...]) -> None:
        pos = args[0]
        for plot in (self.main, self.lane):
            if plot.sceneBoundingRect().contains(pos):
                t = plot.vb.mapSceneToView(pos).x()
                self.cross.setPos(t)
                self.cross_lane.setPos(t)
                self.cross.show()
                self.cross_lane.show()
                self.hovered.emit(float(t))
                return
        self.cross.hide()
        self.cross_lane.hide()
        self.hovered.emit(math.nan)

    def _mouse_clicked(self, event: Any) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton or event.double():
            return
        pos = event.scenePos()
        if not self.lane.sceneBoundingRect().contains(pos):
            return
        p = self.lane.vb.mapSceneToView(pos)
        span = self.lane_item.span_at(p.x(), p.y())
        if span is not None and span.key is not None:
            self.span_clicked.emit(span)

    def zoom_to(self, t0: float, t1: float) -> None:
        """Show [t0, t1] with a margin; counts as the user's own view (follow turns off)."""
        pad = max((t1 - t0) * 0.15, 0.05)
        self.set_follow(False)
        self.main.vb.setXRange(max(t0 - pad, -1), t1 + pad, padding=0)
