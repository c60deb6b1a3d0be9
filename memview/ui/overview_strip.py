"""The overview strip under the plot: the whole session, with the visible window as a region.

Dragging the region moves the plot; zooming or panning the plot moves the region. The strip is
drawn from at most ``OVERVIEW_BUCKETS`` maxima and recomputed at most once a second while a
session records: it is as wide as the plot, and must not cost a live frame what the main curve
costs.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg

from memview.model import RSS_SERIES
from memview.ui.envelope import StoredEnvelope, with_gaps
from memview.ui.series_buffer import SeriesBuffer
from memview.ui.time_navigation import MIN_SPAN_S

OVERVIEW_PX = 46
OVERVIEW_BUCKETS = 2000


class OverviewStrip:
    """PlotArea's overview (a mixin: the strip shares the plot's state)."""

    overview: pg.PlotItem
    main: pg.PlotItem
    overview_curve: pg.PlotDataItem
    window_region: pg.LinearRegionItem
    envelopes: dict[str, StoredEnvelope]
    gaps: list[tuple[float, float | None, str]]
    peak_value: float | None

    def _build_overview(self, curve: pg.PlotDataItem, axis_width: int) -> None:
        """The strip's items (the overview plot is already in the layout); ``curve`` draws the session."""
        theme = self.theme  # type: ignore[attr-defined]
        self.overview.vb.setMouseEnabled(x=False, y=False)
        self.overview.vb.disableAutoRange()
        # no axes (each costs a few ms a frame to paint); the left column keeps the strip under the plot
        self.overview.hideAxis("bottom")
        self.overview.hideAxis("left")
        self.overview.layout.setColumnFixedWidth(0, axis_width)
        self.overview.setDownsampling(auto=True, mode="peak")
        self.overview.setClipToView(True)
        self.overview_curve = curve
        self.overview.addItem(self.overview_curve)
        self.window_region = pg.LinearRegionItem(
            values=(0, 10), brush=pg.mkBrush(78, 121, 167, 45), pen=pg.mkPen(theme.total, width=1.5)
        )
        self.window_region.setZValue(10)
        self.window_region.setToolTip("The part of the session shown above: drag it, or its edges")
        self.overview.addItem(self.window_region, ignoreBounds=True)
        self.window_region.sigRegionChanged.connect(self._region_moved)
        self.main.vb.sigXRangeChanged.connect(self._view_moved)
        self._syncing = False
        self.session_end: float = 0.0
        self._overview_n = 0
        self._overview_at = 0.0

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
            total.count < self._overview_n * 1.1 and now - self._overview_at < 1.0 and self._overview_n
        ):
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
