"""What happened at a time, drawn on the plot: ``mark()`` events and gaps.

A mark is a diamond in the lane (hover for its name) and a thin line on the plot whose name is
placed where it overlaps no other name at the current zoom. A gap (an endpoint that did not
answer) is a grey band with its reason on hover; the curves themselves are cut there (see
``memview.ui.envelope.with_gaps``), so no line crosses it.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore

MAX_MARK_LINES = 300
MARK_COLOUR = "#2a9d8f"
#: heights (fractions of the plot, from the bottom) of the rows mark names are placed on
MARK_LABEL_ROWS = (0.04, 0.10, 0.16)
GAP_BRUSH = (150, 150, 150, 60)


class MarksAndGaps:
    """PlotArea's marks and gap bands (a mixin: they share the plot's state)."""

    main: pg.PlotItem
    lane: pg.PlotItem
    session_end: float

    def _build_marks(self) -> None:
        self.mark_points = pg.ScatterPlotItem(
            size=11,
            symbol="d",
            hoverable=True,
            tip=self._mark_tip,
            hoverSize=14,
            pen=pg.mkPen(MARK_COLOUR),
            brush=pg.mkBrush(MARK_COLOUR),
        )
        self.lane.addItem(self.mark_points)
        self.mark_lines: list[pg.InfiniteLine] = []
        self.marks: list[tuple[float, str]] = []
        self.gaps: list[tuple[float, float | None, str]] = []
        self.gap_regions: list[pg.LinearRegionItem] = []
        self.main.vb.sigXRangeChanged.connect(lambda *_: self._thin_mark_labels())
        self.main.vb.sigResized.connect(lambda *_: self._thin_mark_labels())

    def set_gaps(self, gaps: list[tuple[float, float | None, str]], end_t: float | None) -> None:
        """Spans with no reading: (start, end or None while open, reason). The bands of gaps already
        drawn are moved, not rebuilt: an open gap grows every frame while a service is down."""
        same = len(gaps) == len(self.gaps) and all(a[0] == b[0] and a[2] == b[2] for a, b in zip(gaps, self.gaps))
        self.gaps = list(gaps)
        if not same:
            for region in self.gap_regions:
                self.main.removeItem(region)
            self.gap_regions = []
        for i, (start, end, reason) in enumerate(gaps):
            stop = end if end is not None else max(end_t or start, start)
            length = f"{stop - start:.1f} s" + ("" if end is not None else ", still open")
            if same:
                region = self.gap_regions[i]
                if tuple(region.getRegion()) != (start, stop):
                    region.setRegion((start, stop))
            else:
                region = pg.LinearRegionItem(
                    values=(start, stop), movable=False, brush=pg.mkBrush(*GAP_BRUSH), pen=pg.mkPen(None)
                )
                region.setZValue(-20)
                self.main.addItem(region, ignoreBounds=True)
                self.gap_regions.append(region)
            region.setToolTip(f"no reading for {length}: {reason}")

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
            line = pg.InfiniteLine(
                pos=t,
                angle=90,
                movable=False,
                pen=pen,
                label=name,
                labelOpts={"position": MARK_LABEL_ROWS[0], "color": MARK_COLOUR, "anchors": [anchor, anchor]},
            )
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
            row = next(
                (r for r, used in enumerate(taken) if all(extent[1] <= a or extent[0] >= b for a, b in used)), None
            )
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
