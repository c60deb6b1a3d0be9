"""The session's plot: RSS over time, the phase/capture lane under it, an overview strip of the
whole session, threshold, marks, gaps and a crosshair tooltip.

Everything here draws from :class:`~memview.ui.series_buffer.SeriesBuffer` views and never reads
the store or the recorder. Curves use pyqtgraph's peak downsampling and clip-to-view, so a
1-million-sample session redraws from a few thousand points and a 30 ms spike stays visible
when the whole hour is on screen (min/max per pixel column, not averages).

Navigation is along time: the wheel zooms and a drag pans the time axis only, so the memory
scale a user reads from stays put; with Ctrl or Shift held they act on the memory axis instead.
The overview strip shows the whole session and the visible window (drag it to move the view).

"Follow" keeps the newest data in view; the first pan or zoom by the user turns it off (the
view stays where they put it) until they turn it back on.

A gap (an endpoint that did not answer) is drawn as a gap: the curves get a NaN at its start and
are drawn with ``connect="finite"``, so no line crosses it, and a grey band with the reason
covers it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from memview.model import ENVELOPE_SERIES, RSS_SERIES
from memview.ui import theme
from memview.ui.envelope import Envelope, with_gaps
from memview.ui.plot_items import (
    CAPTURE_COLOUR,
    THRESHOLD_COLOUR,
    BytesAxis,
    LaneItem,
    Span,
    TimeAxis,
    cut_gaps,
    series_colour,
    threshold_line,
)
from memview.ui.series_buffer import SeriesBuffer
from memview.units import format_bytes

AXIS_WIDTH = 78
LANE_ROW_PX = 20
OVERVIEW_PX = 46
OVERVIEW_BUCKETS = 2000
MIN_SPAN_S = 1.0
MAX_MARK_LINES = 300
MARK_COLOUR = "#2a9d8f"
#: heights (fractions of the plot, from the bottom) of the rows mark names are placed on
MARK_LABEL_ROWS = (0.04, 0.10, 0.16)
GAP_BRUSH = (150, 150, 150, 60)


def _curve(pen: Any, name: str | None = None, **kw: Any) -> pg.PlotDataItem:
    item = pg.PlotDataItem(pen=pen, name=name, connect="finite", **kw)
    item.setDownsampling(auto=True, method="peak")
    # one min/max pair per pixel column: a spike still shows, and a frame costs the same at 1k or 1M samples
    item.opts["autoDownsampleFactor"] = 1.0
    item.setClipToView(True)
    item.setSkipFiniteCheck(True)
    return item


class TimeViewBox(pg.ViewBox):
    """A view box whose wheel and drag act on time; Ctrl or Shift moves them to the memory axis."""

    MEMORY_MODIFIERS = QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.setMouseEnabled(x=True, y=False)

    def _memory(self, ev: Any) -> bool:
        return bool(ev.modifiers() & self.MEMORY_MODIFIERS)

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        if self._memory(ev):
            self.setMouseEnabled(x=False, y=True)
            try:
                super().wheelEvent(ev, axis)
            finally:
                self.setMouseEnabled(x=True, y=False)
        else:
            super().wheelEvent(ev, axis)

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802
        if self._memory(ev):
            self.setMouseEnabled(x=False, y=True)
            try:
                super().mouseDragEvent(ev, axis)
            finally:
                self.setMouseEnabled(x=True, y=False)
        else:
            super().mouseDragEvent(ev, axis)


class PlotArea(pg.GraphicsLayoutWidget):
    """Main plot + lane + overview, x-linked; see the module docstring."""

    follow_changed = QtCore.Signal(bool)
    hovered = QtCore.Signal(float, float)  # time, memory under the cursor (NaN, NaN: left the plot)
    capture_clicked = QtCore.Signal(object)
    span_clicked = QtCore.Signal(object)
    threshold_moved = QtCore.Signal(object)

    def __init__(self, parent: Any = None) -> None:
        self.theme = theme.current()
        super().__init__(parent)
        self.setBackground(self.theme.background)
        self.setMinimumSize(360, 240)
        self.ci.layout.setContentsMargins(4, 6, 10, 4)
        self.ci.layout.setVerticalSpacing(0)
        # no context menus (they are disabled below anyway): building three costs ~70 ms per view
        self.main = pg.PlotItem(viewBox=TimeViewBox(enableMenu=False), axisItems={"left": BytesAxis("left")})
        self.lane = pg.PlotItem(viewBox=pg.ViewBox(enableMenu=False), axisItems={"bottom": TimeAxis("bottom")})
        self.overview = pg.PlotItem(viewBox=pg.ViewBox(enableMenu=False))
        self.addItem(self.main, row=0, col=0)
        self.addItem(self.lane, row=1, col=0)
        self.addItem(self.overview, row=2, col=0)
        self.ci.layout.setRowStretchFactor(0, 10)
        self.ci.layout.setRowFixedHeight(2, OVERVIEW_PX)
        self.lane.setXLink(self.main)
        for plot in (self.main, self.lane, self.overview):
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            plot.setMenuEnabled(False)
            plot.hideButtons()
        self.main.showGrid(x=True, y=True, alpha=self.theme.grid_alpha)
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
        self.lane.showGrid(x=True, y=False, alpha=self.theme.grid_alpha)
        self.legend = self.main.addLegend(offset=(8, 8), labelTextSize="8pt", brush=self.theme.legend_fill,
                                          labelTextColor=self.theme.text)
        self._clearing_legend = False

        total_pen = pg.mkPen(self.theme.total, width=2)
        self.total = _curve(total_pen, name="RSS", fillLevel=0, brush=pg.mkBrush(*self.theme.total_fill))
        self.main.addItem(self.total)
        self.service_peak: pg.PlotDataItem | None = None
        self.envelope: pg.PlotDataItem | None = None  # the exact envelope (ENVELOPE_SERIES), when recorded
        self.proc_curves: dict[str, pg.PlotDataItem] = {}
        self.comp_curves: dict[str, pg.PlotDataItem] = {}
        self.peak_marker = pg.ScatterPlotItem(size=9, symbol="o", pen=pg.mkPen(self.theme.background, width=1.5),
                                              brush=pg.mkBrush(self.theme.total))
        self.peak_label = pg.TextItem(color=self.theme.total, anchor=(0.5, 1.25), fill=self.theme.label_fill)
        self.main.addItem(self.peak_marker)
        self.main.addItem(self.peak_label, ignoreBounds=True)
        self.peak_label.setZValue(15)
        self.peak_label.hide()
        self.legend.geometryChanged.connect(self._clear_legend)  # it widens when a curve joins it
        self.peak_value: float | None = None  # the figure the label shows (the exact peak when known)
        self.peak_t: float | None = None

        self.lane_item = LaneItem()
        self.lane.addItem(self.lane_item)
        self.capture_points = pg.ScatterPlotItem(size=13, symbol="t1", hoverable=True, tip=self._capture_tip,
                                                 hoverSize=16)
        self.capture_points.sigClicked.connect(self._on_capture_clicked)
        self.lane.addItem(self.capture_points)
        self.capture_lines: list[pg.InfiniteLine] = []
        self.mark_points = pg.ScatterPlotItem(size=11, symbol="d", hoverable=True, tip=self._mark_tip, hoverSize=14,
                                              pen=pg.mkPen(MARK_COLOUR), brush=pg.mkBrush(MARK_COLOUR))
        self.lane.addItem(self.mark_points)
        self.mark_lines: list[pg.InfiniteLine] = []
        self.marks: list[tuple[float, str]] = []
        self.gaps: list[tuple[float, float | None, str]] = []
        self.gap_regions: list[pg.LinearRegionItem] = []
        self.empty_lane = pg.TextItem("no phases", color=self.theme.muted, anchor=(0.5, 0.5))
        self.lane.addItem(self.empty_lane, ignoreBounds=True)

        self.threshold: pg.InfiniteLine | None = None
        self.threshold_phase: str | None = None  # a phase-scoped rule (parse:200MB) is drawn over that phase only
        self.threshold_segments = pg.PlotCurveItem(pen=pg.mkPen(THRESHOLD_COLOUR, width=2,
                                                                style=QtCore.Qt.PenStyle.DashLine), connect="finite")
        self.threshold_segments.setZValue(19)
        self.main.addItem(self.threshold_segments, ignoreBounds=True)
        self._phase_ranges: list[tuple[float, float]] = []

        cross_pen = pg.mkPen((128, 128, 128, 170), width=1, style=QtCore.Qt.PenStyle.DotLine)
        self.cross = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.cross_lane = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.main.addItem(self.cross, ignoreBounds=True)
        self.lane.addItem(self.cross_lane, ignoreBounds=True)
        self.cross.hide()
        self.cross_lane.hide()
        self.tip = pg.TextItem(color=self.theme.text, anchor=(0, 0), fill=self.theme.label_fill,
                               border=pg.mkPen(self.theme.muted))
        self.tip.setZValue(30)
        self.main.addItem(self.tip, ignoreBounds=True)
        self.tip.hide()
        self._proxy = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)
        self.scene().sigMouseClicked.connect(self._mouse_clicked)

        # the overview: the whole session, and the visible window as a draggable region
        self.overview.vb.setMouseEnabled(x=False, y=False)
        self.overview.vb.disableAutoRange()
        # no axes (each costs a few ms a frame to paint); the left column keeps the strip under the plot
        self.overview.hideAxis("bottom")
        self.overview.hideAxis("left")
        self.overview.layout.setColumnFixedWidth(0, AXIS_WIDTH)
        self.overview.setDownsampling(auto=True, mode="peak")
        self.overview.setClipToView(True)
        self.overview_curve = _curve(pg.mkPen(self.theme.total, width=1), fillLevel=0,
                                     brush=pg.mkBrush(*self.theme.total_fill))
        self.overview.addItem(self.overview_curve)
        self.window_region = pg.LinearRegionItem(values=(0, 10), brush=pg.mkBrush(78, 121, 167, 45),
                                                 pen=pg.mkPen(self.theme.total, width=1.5))
        self.window_region.setZValue(10)
        self.window_region.setToolTip("The part of the session shown above: drag it, or its edges")
        self.overview.addItem(self.window_region, ignoreBounds=True)
        self.window_region.sigRegionChanged.connect(self._region_moved)
        self.main.vb.sigXRangeChanged.connect(self._view_moved)
        self.main.vb.sigXRangeChanged.connect(lambda *_: self._thin_mark_labels())
        self.main.vb.sigResized.connect(lambda *_: self._thin_mark_labels())
        self.main.vb.sigRangeChanged.connect(lambda *_: self._place_peak_label())
        self.main.vb.sigResized.connect(lambda *_: self._place_peak_label())  # the same range, other pixels
        self._syncing = False
        self.session_end: float = 0.0
        self._overview_n = 0
        self._overview_at = 0.0
        self.envelopes: dict[str, Envelope] = {}
        self._enveloped: dict[int, tuple[pg.PlotDataItem, Envelope]] = {}
        self.main.vb.sigXRangeChanged.connect(self._apply_envelopes)
        self.main.vb.sigResized.connect(self._apply_envelopes)

        self.follow = True
        self.window_s: float | None = None  # None: the whole session
        self.per_process = False
        self.show_components = True
        self._stack_top: float | None = None
        self._lane_rows = 0
        self._set_lane_rows(1, [])
        self.main.vb.sigRangeChangedManually.connect(self._user_moved)
        self.lane.vb.sigRangeChangedManually.connect(self._user_moved)
        self._style_axes()

    def _style_axes(self) -> None:
        for plot in (self.main, self.lane):
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(pg.mkPen(self.theme.foreground))
                axis.setTextPen(pg.mkPen(self.theme.foreground))

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
        x_range = (x0, x1 + (x1 - x0) * 0.01)
        if self.threshold is not None and self.threshold.moving:
            # the user is dragging the threshold: a rescale now would move the line under the cursor
            self.main.vb.setXRange(*x_range, padding=0)
            return
        top = self._visible_max(buffers, x0, x1)
        if self.peak_value is not None and self.window_s is None:
            top = max(top, self.peak_value)
        if self.threshold is not None and self.threshold.isVisible():
            value = float(self.threshold.value())
            if value <= 2 * max(top, 1):
                top = max(top, value)
        # room above the peak for its label (about 25 px of a few-hundred-px plot)
        top = max(top, 1024**2) * 1.15
        self.main.vb.setRange(xRange=x_range, yRange=(0, top), padding=0)

    def _visible_max(self, buffers: dict[str, SeriesBuffer], x0: float, x1: float) -> float:
        names = [RSS_SERIES, ENVELOPE_SERIES, "service_peak"]
        if self.per_process:
            names += [n for n in buffers if n.startswith(("pid:", "prom:"))]
        top = 0.0
        whole = self.window_s is None
        for name in names:
            buf = buffers.get(name)
            if buf is None or not buf.count:
                continue
            got = buf.max if whole else buf.max_between(x0, x1)
            if got is not None and math.isfinite(got):
                top = max(top, got)
        if self.show_components and self._stack_top is not None:
            top = max(top, self._stack_top)
        return top

    # -- overview ----------------------------------------------------------------------------------
    def _view_moved(self, *_: Any) -> None:
        if self._syncing:
            return
        x0, x1 = self.main.vb.viewRange()[0]
        self._syncing = True
        try:
            self.window_region.setRegion((x0, x1))
        finally:
            self._syncing = False

    def _region_moved(self, *_: Any) -> None:
        if self._syncing:
            return
        x0, x1 = self.window_region.getRegion()
        self._syncing = True
        try:
            self.set_follow(False)
            self.main.vb.setXRange(x0, x1, padding=0)
        finally:
            self._syncing = False

    def _draw_overview(self, total: SeriesBuffer | None, end_t: float | None) -> None:
        """The whole session as an envelope of at most OVERVIEW_BUCKETS max values: a strip a few
        hundred pixels wide needs no more, and the main curve's million points are not drawn twice.
        Recomputed only when the session grew by a tenth, or once a second while it records."""
        if total is None or not total.count:
            return
        now = time.monotonic()
        if total.count == self._overview_n or (
                total.count < self._overview_n * 1.1 and now - self._overview_at < 1.0 and self._overview_n):
            return
        self._overview_n, self._overview_at = total.count, now
        env = self.envelopes.get(RSS_SERIES)
        if env is not None:
            t, v = env.view(-math.inf, math.inf, OVERVIEW_BUCKETS // 2)
        else:
            t, v = with_gaps(total.t, total.v, self.gaps)
        if len(t) > 2 * OVERVIEW_BUCKETS:
            step = len(t) // OVERVIEW_BUCKETS
            n = step * OVERVIEW_BUCKETS
            v_env = np.fmax.reduce(v[:n].reshape(OVERVIEW_BUCKETS, step), axis=1)
            t_env = t[:n:step]
            if n < len(t):
                t_env = np.append(t_env, t[-1])
                v_env = np.append(v_env, np.nanmax(v[n:]) if np.isfinite(v[n:]).any() else np.nan)
            t, v = t_env, v_env
        self.overview_curve.setData(t, v)
        end = max(end_t or 0.0, total.last_t or 0.0, MIN_SPAN_S)
        self.session_end = end
        top = max(total.max or 0.0, self.peak_value or 0.0, 1024**2) * 1.1
        self.overview.vb.setRange(xRange=(0, end), yRange=(0, top), padding=0.01)

    # -- curves ----------------------------------------------------------------------------------
    def set_envelopes(self, envelopes: dict[str, Envelope]) -> None:
        """Precomputed min/max pyramids of long stored series (drawn per pixel, see envelope)."""
        self.envelopes = dict(envelopes)

    def _apply_envelopes(self, *_: Any) -> None:
        if not self._enveloped:
            return
        (x0, x1) = self.main.vb.viewRange()[0]
        pixels = int(self.main.vb.width()) or 800
        for curve, env in self._enveloped.values():
            curve.setData(*env.view(x0, x1, pixels))

    def _set(self, curve: pg.PlotDataItem, t: np.ndarray, v: np.ndarray, name: str | None = None) -> None:
        env = self.envelopes.get(name) if name is not None else None
        if env is not None:
            self._enveloped[id(curve)] = (curve, env)
            curve.setSkipFiniteCheck(False)
            # a pixel-dense min/max band gains nothing from antialiasing, and costs most of the frame
            curve.opts["antialias"] = False
            curve.curve.opts["antialias"] = False
            (x0, x1) = self.main.vb.viewRange()[0]
            curve.setData(*env.view(x0, x1, int(self.main.vb.width()) or 800))
            return
        if self.gaps:
            t, v = with_gaps(t, v, self.gaps)
            curve.setSkipFiniteCheck(False)
        curve.setData(t, v)

    def draw_series(self, buffers: dict[str, SeriesBuffer], labels: dict[str, str],
                    peak: tuple[float, str] | None = None, end_t: float | None = None) -> None:
        """Draw every series; ``peak`` is the figure to label (the exact peak when there is one)."""
        total = buffers.get(RSS_SERIES)
        if total is not None and total.count:
            self._set(self.total, total.t, total.v, RSS_SERIES)
            peak_t, peak_v = total.max_t, total.max
            if peak_t is not None and peak_v is not None:
                value, exact = (peak[0], peak[1]) if peak is not None and peak[0] >= peak_v else (peak_v, "")
                self.peak_marker.setData([peak_t], [peak_v])
                self.peak_value, self.peak_t = float(value), float(peak_t)
                self.peak_label.setText(f"peak {format_bytes(value)}" + (" ✓" if exact else ""))
                self.peak_label.setToolTip("the kernel's own high-water mark" if exact else "the largest sample")
                self.peak_label.show()
                self._place_peak_label()
        self._draw_overview(total, end_t)
        self._draw_processes(buffers, labels)
        self._draw_components(buffers, labels)
        own_peak = buffers.get("service_peak")
        if own_peak is not None and own_peak.count:
            if self.service_peak is None:
                self.service_peak = _curve(pg.mkPen("#888888", width=1.5, style=QtCore.Qt.PenStyle.DashLine),
                                           name="service's own peak")
                self.main.addItem(self.service_peak)
            self._set(self.service_peak, own_peak.t, own_peak.v)
        self._draw_envelope(buffers.get(ENVELOPE_SERIES))
        curves = [self.total, self.envelope, self.service_peak, *self.proc_curves.values(),
                  *self.comp_curves.values()]
        self.legend.setVisible(sum(1 for c in curves if c is not None and c.isVisible()) > 1)
        self._clear_legend()  # its size is known only now

    def _draw_envelope(self, buf: SeriesBuffer | None) -> None:
        """The exact envelope over the sampled total: at each of its points, the sum of every
        process's own maximum since the previous point (the kernel's high-water mark, reset each
        time). A spike shorter than the sampling interval is under the envelope even where the
        sampled curve passes below it; where they differ the envelope is an upper bound."""
        if buf is None or not buf.count:
            if self.envelope is not None:
                self.envelope.hide()
            return
        if self.envelope is None:
            pen = pg.mkPen(self.theme.total, width=1, style=QtCore.Qt.PenStyle.DotLine)
            self.envelope = _curve(pen, name="exact envelope (per-interval maxima)")
            self.envelope.setToolTip("the sum of each process's exact maximum since the previous point: "
                                     "spikes between samples show here")
            self.envelope.setZValue(self.total.zValue() + 1)
            self.main.addItem(self.envelope)
        self.envelope.show()
        self._set(self.envelope, buf.t, buf.v, ENVELOPE_SERIES)

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
        self.peak_label.setAnchor((ax, ay))
        self.peak_label.setPos(t, y)
        self._clear_legend()

    def _clear_legend(self) -> None:
        """The legend takes the first place (top left, top right, either just under the label, bottom
        right, bottom left) where it does not cover the peak's label: on a narrow plot it spans most of
        the width."""
        if self._clearing_legend or not (self.legend.isVisible() and self.peak_label.isVisible()):
            return
        self._clearing_legend = True  # anchoring moves the legend, which signals geometryChanged again
        try:
            self.peak_label.updateTransform(force=True)  # else its scene rect lags until it is painted
            label = self.peak_label.sceneBoundingRect().adjusted(-6, -4, 6, 4)  # its fill reaches past the text
            below = label.bottom() - self.main.vb.sceneBoundingRect().top() + 4  # top left, under the label
            for corner, offset in (((0, 0), (8, 8)), ((1, 0), (-8, 8)), ((0, 0), (8, below)), ((1, 0), (-8, below)),
                                   ((1, 1), (-8, -8)), ((0, 1), (8, -8))):
                self.legend.anchor(corner, corner, offset=offset)
                if not label.intersects(self.legend.sceneBoundingRect()):
                    return
            self.legend.anchor((0, 0), (0, 0), offset=(8, 8))
        finally:
            self._clearing_legend = False

    def _draw_processes(self, buffers: dict[str, SeriesBuffer], labels: dict[str, str]) -> None:
        names = sorted((n for n in buffers if n.startswith("pid:")), key=lambda n: int(n[4:]))
        names += sorted(n for n in buffers if n.startswith("prom:"))  # a Prometheus query's label sets
        if not self.per_process or len(names) < 1:
            for curve in self.proc_curves.values():
                curve.hide()
            self.total.setPen(pg.mkPen(self.theme.total, width=2))
            self.total.setBrush(pg.mkBrush(*self.theme.total_fill))
            return
        self.total.setPen(pg.mkPen(self.theme.total, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        self.total.setBrush(None)
        for i, name in enumerate(names):
            curve = self.proc_curves.get(name)
            if curve is None:
                curve = self.proc_curves[name] = _curve(pg.mkPen(series_colour(i + 1), width=1.5),
                                                        name=labels.get(name, name))
                self.main.addItem(curve)
            curve.show()
            buf = buffers[name]
            self._set(curve, buf.t, buf.v, name)

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
            self._set(curve, t, stack)
        self._stack_top = float(stack.max()) if len(stack) else None

    # -- gaps and marks ------------------------------------------------------------------------------
    def set_gaps(self, gaps: list[tuple[float, float | None, str]], end_t: float | None) -> None:
        """Spans with no reading: (start, end or None while open, reason)."""
        self.gaps = list(gaps)
        for region in self.gap_regions:
            self.main.removeItem(region)
        self.gap_regions = []
        for start, end, reason in gaps:
            stop = end if end is not None else max(end_t or start, start)
            region = pg.LinearRegionItem(values=(start, stop), movable=False, brush=pg.mkBrush(*GAP_BRUSH),
                                         pen=pg.mkPen(None))
            region.setZValue(-20)
            length = f"{stop - start:.1f} s" + ("" if end is not None else ", still open")
            region.setToolTip(f"no reading for {length}: {reason}")
            self.main.addItem(region, ignoreBounds=True)
            self.gap_regions.append(region)

    def gap_at(self, t: float) -> tuple[float, float | None, str] | None:
        for gap in self.gaps:
            end = gap[1] if gap[1] is not None else math.inf
            if gap[0] <= t <= end:
                return gap
        return None

    def set_marks(self, marks: list[tuple[float, str]]) -> None:
        """``mark()`` events: a diamond in the lane (hover for the name) and a thin line on the plot."""
        if marks == self.marks:
            return
        self.marks = list(marks)
        for line in self.mark_lines:
            self.main.removeItem(line)
        self.mark_lines = []
        pen = pg.mkPen(MARK_COLOUR, width=1, style=QtCore.Qt.PenStyle.DotLine)
        end = max(self.session_end, max((t for t, _ in marks), default=0.0))
        for t, name in marks[:MAX_MARK_LINES]:
            # names right of their line, except near the session's end, where they would be cut off
            anchor = (1.04, 0.5) if end and t > 0.6 * end else (-0.04, 0.5)
            line = pg.InfiniteLine(pos=t, angle=90, movable=False, pen=pen, label=name,
                                   labelOpts={"position": MARK_LABEL_ROWS[0], "color": MARK_COLOUR,
                                              "anchors": [anchor, anchor]})
            line.setZValue(4)
            line.setToolTip(f"mark: {name}")
            self.main.addItem(line, ignoreBounds=True)
            self.mark_lines.append(line)
        self._thin_mark_labels()

    def _thin_mark_labels(self) -> None:
        """Place each mark's name on the first of ``MARK_LABEL_ROWS`` where it overlaps no other
        name at the current zoom, and hide it where none is free (the lane's diamond and the line's
        tooltip still name it). Runs again whenever the time range changes: zooming in shows more."""
        vb = self.main.vb
        if not self.mark_lines or vb.width() <= 0:
            return
        (x0, x1), _ = vb.viewRange()
        scale = vb.width() / max(x1 - x0, 1e-12)  # pixels per second
        taken: list[list[tuple[float, float]]] = [[] for _ in MARK_LABEL_ROWS]
        for line in sorted(self.mark_lines, key=lambda ln: ln.value()):
            label = line.label
            px = (line.value() - x0) * scale
            width = label.boundingRect().width() + 6  # a little air between names
            right = label.anchors[0][0] < 0.5  # anchored at its left: the name runs right of the line
            extent = (px, px + width) if right else (px - width, px)
            if extent[1] < 0 or extent[0] > vb.width():
                label.setVisible(False)  # out of view: it claims no room
                continue
            row = next((r for r, used in enumerate(taken)
                        if all(extent[1] <= a or extent[0] >= b for a, b in used)), None)
            label.setVisible(row is not None)
            if row is not None:
                taken[row].append(extent)
                if label.orthoPos != MARK_LABEL_ROWS[row]:
                    label.setPosition(MARK_LABEL_ROWS[row])

    def visible_mark_labels(self) -> list[pg.InfLineLabel]:
        """The mark names drawn at the current zoom (tests read their rectangles)."""
        return [ln.label for ln in self.mark_lines if ln.label.isVisible()]

    @staticmethod
    def _mark_tip(x: float, y: float, data: Any) -> str:
        return f"mark: {data}" if data else "mark"

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
        """Lay out the lane: captures and marks on top, then pressure, then phases by depth."""
        rows = 0
        labels: list[tuple[float, str]] = []
        capture_row = pressure_row = None
        if captures or self.marks:
            capture_row = rows
            labels.append((rows + 0.5, "captures" if not self.marks else "marks" if not captures else "events"))
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
        # no pressure state is drawn across a gap: nothing was read there
        spans = [Span(pressure_row, s.start, s.end, s.colour, s.label, s.open, s.key)
                 for s in cut_gaps(pressure, self.gaps)]
        spans += [Span(phase_base + s.row, s.start, s.end, s.colour, s.label, s.open, s.key) for s in phase_spans]
        self.lane_item.set_spans(spans)
        self._set_lane_rows(rows, labels)
        self._phase_ranges = [(s.start, s.end) for s in phase_spans if s.label == self.threshold_phase]
        self._draw_threshold_segments()
        empty = not spans and not captures and not self.marks
        self.empty_lane.setVisible(empty)
        if empty:
            vr = self.main.vb.viewRange()[0]
            self.empty_lane.setPos((vr[0] + vr[1]) / 2, 0.5)
        self._set_captures(captures, capture_row)
        if capture_row is not None and self.marks:
            self.mark_points.setData([t for t, _ in self.marks], [capture_row + 0.5] * len(self.marks),
                                     data=[name for _, name in self.marks])
        else:
            self.mark_points.setData([], [])

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
            self.threshold.setPen(pg.mkPen((214, 39, 40, 70), width=1, style=style.DotLine) if phase
                                  else pg.mkPen(THRESHOLD_COLOUR, width=2, style=style.DashLine))
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

    # -- mouse -----------------------------------------------------------------------------------
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
        super().leaveEvent(event)

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
