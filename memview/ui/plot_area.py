"""The session's plot: RSS over time, the phase/capture lane under it and an overview strip of
the whole session, x-linked, with threshold, marks, gaps, the peak and a crosshair tooltip.

Everything here draws from :class:`~memview.ui.series_buffer.SeriesBuffer` views and never reads
the store or the recorder. Curves use pyqtgraph's peak downsampling and clip-to-view, so a
1-million-sample session redraws from a few thousand points and a 30 ms spike stays visible
when the whole hour is on screen (min/max per pixel column, not averages).

This module owns the layout and the curves; each overlay is a mixin in its own module (the
lane: ``phase_lane``, marks and gaps: ``marks_and_gaps``, the threshold: ``threshold_overlay``,
the peak: ``peak_label``, the crosshair: ``crosshair``, the overview: ``overview_strip``), and
how the time range moves is ``time_navigation``.

A live frame must stay cheap (it is painted in software, up to 30 times a second, issue 18):
Follow moves the range in steps, the axes are cached as pixmaps, every overlay is re-set only
when what it shows changed, and wide lines are stroked as segments.

"Follow" keeps the newest data in view; the first pan or zoom by the user turns it off (the
view stays where they put it) until they turn it back on.

A gap (an endpoint that did not answer) is drawn as a gap: the curves get a NaN at its start and
are drawn with ``connect="finite"``, so no line crosses it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from memview.model import ENVELOPE_SERIES, RSS_SERIES
from memview.ui import theme
from memview.ui.crosshair import Crosshair
from memview.ui.envelope import StoredEnvelope, with_gaps
from memview.ui.marks_and_gaps import MarksAndGaps
from memview.ui.overview_strip import OVERVIEW_PX, OverviewStrip
from memview.ui.peak_label import PeakLabel
from memview.ui.phase_lane import PhaseLane
from memview.ui.plot_items import BytesAxis, TimeAxis, series_colour
from memview.ui.series_buffer import SeriesBuffer
from memview.ui.threshold_overlay import ThresholdOverlay
from memview.ui.time_navigation import TimeViewBox, follow_x_range, follow_y_top

AXIS_WIDTH = 78


def _curve(pen: Any, name: str | None = None, **kw: Any) -> pg.PlotDataItem:
    item = pg.PlotDataItem(pen=pen, name=name, connect="finite", **kw)
    item.setDownsampling(auto=True, method="peak")
    # one min/max pair per pixel column: a spike still shows, and a frame costs the same at 1k or 1M samples
    item.opts["autoDownsampleFactor"] = 1.0
    item.setClipToView(True)
    item.setSkipFiniteCheck(True)
    set_pen(item, pen)
    return item


def set_pen(item: pg.PlotDataItem, pen: Any) -> None:
    """Set ``item``'s pen; a solid line wider than a pixel is drawn as separate segments. Qt's
    software stroker turns one long, wide, antialiased polyline into a polygon with joins, which
    cost most of a frame (6 ms for 2,000 points); the segments look the same on an opaque pen."""
    pen = pg.mkPen(pen)
    item.setPen(pen)
    solid = pen.style() == QtCore.Qt.PenStyle.SolidLine and pen.color().alphaF() == 1.0
    item.curve.setSegmentedLineMode("on" if solid and pen.widthF() > 1.0 else "auto")


class PlotArea(PhaseLane, MarksAndGaps, ThresholdOverlay, PeakLabel, Crosshair, OverviewStrip, pg.GraphicsLayoutWidget):
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
        self.legend = self.main.addLegend(
            offset=(8, 8), labelTextSize="8pt", brush=self.theme.legend_fill, labelTextColor=self.theme.text
        )

        total_pen = pg.mkPen(self.theme.total, width=2)
        self.total = _curve(total_pen, name="RSS", fillLevel=0, brush=pg.mkBrush(*self.theme.total_fill))
        self.main.addItem(self.total)
        self.service_peak: pg.PlotDataItem | None = None
        self.envelope: pg.PlotDataItem | None = None  # the exact envelope (ENVELOPE_SERIES), when recorded
        self.proc_curves: dict[str, pg.PlotDataItem] = {}
        self.comp_curves: dict[str, pg.PlotDataItem] = {}
        self._build_peak()
        self._build_lane()
        self._build_marks()
        self._build_threshold()
        self._build_crosshair()
        self._build_overview(
            _curve(pg.mkPen(self.theme.total, width=1), fillLevel=0, brush=pg.mkBrush(*self.theme.total_fill)),
            AXIS_WIDTH,
        )
        self.envelopes: dict[str, StoredEnvelope] = {}
        self._enveloped: dict[int, tuple[pg.PlotDataItem, StoredEnvelope]] = {}
        self.main.vb.sigXRangeChanged.connect(self._apply_envelopes)
        self.main.vb.sigResized.connect(self._apply_envelopes)

        self.follow = True
        self.window_s: float | None = None  # None: the whole session
        self.per_process = False
        self.show_components = True
        self._stack_top: float | None = None
        self._total_split = False  # the total is drawn dashed over per-process curves
        self._set_lane_rows(1, [])
        self.main.vb.sigRangeChangedManually.connect(self._user_moved)
        self.lane.vb.sigRangeChangedManually.connect(self._user_moved)
        self._style_axes()

    def _style_axes(self) -> None:
        for plot in (self.main, self.lane):
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                # Tick labels cost most of a software-painted frame (QPicture replay of the text);
                # cached as a pixmap they are redrawn only when their range or ticks change, and
                # a frame where only a curve moved blits them
                axis.setCacheMode(axis.CacheMode.DeviceCoordinateCache)
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
        (cx0, cx1), (cy0, cy1) = self.main.vb.viewRange()
        x_range = follow_x_range(last, self.window_s, (cx0, cx1))
        x0, x1 = x_range
        if self.threshold is not None and self.threshold.moving:
            # the user is dragging the threshold: a rescale now would move the line under the cursor
            if x_range != (cx0, cx1):
                self.main.vb.setXRange(*x_range, padding=0)
            return
        top = self._visible_max(buffers, x0, x1)
        if self.peak_value is not None and self.window_s is None:
            top = max(top, self.peak_value)
        if self.threshold is not None and self.threshold.isVisible():
            value = float(self.threshold.value())
            if value <= 2 * max(top, 1):
                top = max(top, value)
        y_top = follow_y_top(max(top, 1024**2), cy1 if cy0 == 0 else None)
        if x_range == (cx0, cx1) and y_top == cy1 and cy0 == 0:
            return  # nothing moved: no range signal, no axis re-layout, no full repaint
        self.main.vb.setRange(xRange=x_range, yRange=(0, y_top), padding=0)

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

    # -- curves ----------------------------------------------------------------------------------
    def set_envelopes(self, envelopes: dict[str, StoredEnvelope]) -> None:
        """Long stored series, drawn per pixel from the store (see envelope): redrawn as answers arrive."""
        self.envelopes = dict(envelopes)
        for env in self.envelopes.values():
            env.on_ready(self._apply_envelopes)

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

    def draw_series(
        self,
        buffers: dict[str, SeriesBuffer],
        labels: dict[str, str],
        peak: tuple[float, str] | None = None,
        end_t: float | None = None,
    ) -> None:
        """Draw every series; ``peak`` is the figure to label (the exact peak when there is one)."""
        total = buffers.get(RSS_SERIES)
        if total is not None and total.count:
            self._set(self.total, total.t, total.v, RSS_SERIES)
            self._show_peak(total, peak)
        self._draw_overview(total, end_t)
        self._draw_processes(buffers, labels)
        self._draw_components(buffers, labels)
        own_peak = buffers.get("service_peak")
        if own_peak is not None and own_peak.count:
            if self.service_peak is None:
                self.service_peak = _curve(
                    pg.mkPen("#888888", width=1.5, style=QtCore.Qt.PenStyle.DashLine), name="service's own peak"
                )
                self.main.addItem(self.service_peak)
            self._set(self.service_peak, own_peak.t, own_peak.v)
        self._draw_envelope(buffers.get(ENVELOPE_SERIES))
        curves = [self.total, self.envelope, self.service_peak, *self.proc_curves.values(), *self.comp_curves.values()]
        self.legend.setVisible(sum(1 for c in curves if c is not None and c.isVisible()) > 1)
        self._place_peak_label()  # the legend may now cover it: its size is known only now

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
            self.envelope.setToolTip(
                "the sum of each process's exact maximum since the previous point: spikes between samples show here"
            )
            self.envelope.setZValue(self.total.zValue() + 1)
            self.main.addItem(self.envelope)
        self.envelope.show()
        self._set(self.envelope, buf.t, buf.v, ENVELOPE_SERIES)

    def _draw_processes(self, buffers: dict[str, SeriesBuffer], labels: dict[str, str]) -> None:
        names = sorted((n for n in buffers if n.startswith("pid:")), key=lambda n: int(n[4:]))
        names += sorted(n for n in buffers if n.startswith("prom:"))  # a Prometheus query's label sets
        split = self.per_process and len(names) >= 1
        if split != self._total_split:  # a pen or brush set again repaints the curve: only on a change
            self._total_split = split
            if split:
                set_pen(self.total, pg.mkPen(self.theme.total, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
                self.total.setBrush(None)
            else:
                set_pen(self.total, pg.mkPen(self.theme.total, width=2))
                self.total.setBrush(pg.mkBrush(*self.theme.total_fill))
        if not split:
            for curve in self.proc_curves.values():
                curve.hide()
            return
        for i, name in enumerate(names):
            curve = self.proc_curves.get(name)
            if curve is None:
                curve = self.proc_curves[name] = _curve(
                    pg.mkPen(series_colour(i + 1), width=1.5), name=labels.get(name, name)
                )
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
                curve = self.comp_curves[name] = _curve(
                    pg.mkPen(colour, width=1), name=labels.get(name, name), fillLevel=0, brush=pg.mkBrush(fill)
                )
                curve.setZValue(-10 - i)
                self.main.addItem(curve)
            curve.show()
            self._set(curve, t, stack)
        self._stack_top = float(stack.max()) if len(stack) else None

    def zoom_to(self, t0: float, t1: float) -> None:
        """Show [t0, t1] with a margin; counts as the user's own view (follow turns off)."""
        pad = max((t1 - t0) * 0.15, 0.05)
        self.set_follow(False)
        self.main.vb.setXRange(max(t0 - pad, -1), t1 + pad, padding=0)
