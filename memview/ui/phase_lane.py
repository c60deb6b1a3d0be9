"""The lane under the plot: phases by depth, memory pressure, captures and marks, one row each.

The lane is laid out again only when what it shows changed (a live view calls ``set_lane`` every
frame; an open phase's bar grows a pixel at a time): re-setting its ticks or bars repaints it.
A click on a phase's bar zooms to the phase; a capture's triangle opens the capture.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore

from memview.ui.plot_items import CAPTURE_COLOUR, LaneItem, Span, cut_gaps
from memview.units import format_bytes

LANE_ROW_PX = 20


class PhaseLane:
    """PlotArea's lane (a mixin: it shares the plot's state)."""

    main: pg.PlotItem
    lane: pg.PlotItem
    ci: Any
    marks: list[tuple[float, str]]
    gaps: list[tuple[float, float | None, str]]
    mark_points: pg.ScatterPlotItem
    threshold_phase: str | None

    def _build_lane(self) -> None:
        theme = self.theme  # type: ignore[attr-defined]
        self.lane_item = LaneItem()
        self.lane.addItem(self.lane_item)
        self.capture_points = pg.ScatterPlotItem(
            size=13, symbol="t1", hoverable=True, tip=self._capture_tip, hoverSize=16
        )
        self.capture_points.sigClicked.connect(self._on_capture_clicked)
        self.lane.addItem(self.capture_points)
        self.capture_lines: list[pg.InfiniteLine] = []
        self.empty_lane = pg.TextItem("no phases", color=theme.muted, anchor=(0.5, 0.5))
        self.lane.addItem(self.empty_lane, ignoreBounds=True)
        self.main.vb.sigXRangeChanged.connect(lambda *_: self._place_empty_lane())
        self.scene().sigMouseClicked.connect(self._mouse_clicked)  # type: ignore[attr-defined]
        self._lane_rows = 0
        self._lane_labels: list[tuple[float, str]] | None = None
        self._lane_inputs: tuple[Any, ...] | None = None

    def _set_lane_rows(self, rows: int, labels: list[tuple[float, str]]) -> None:
        rows = max(rows, 1)
        if labels != self._lane_labels:  # setTicks re-lays and repaints the axis, even when equal
            self._lane_labels = list(labels)
            self.lane.getAxis("left").setTicks([labels, []])
        if rows != self._lane_rows:
            self._lane_rows = rows
            height = rows * LANE_ROW_PX + 34
            self.ci.layout.setRowFixedHeight(1, height)
        if tuple(self.lane.vb.viewRange()[1]) != (0, rows):
            self.lane.vb.setYRange(0, rows, padding=0)

    def set_lane(self, phase_spans: list[Span], captures: list[dict[str, Any]], pressure: list[Span]) -> None:
        """Lay out the lane: captures and marks on top, then pressure, then phases by depth.
        Called every live frame: unchanged input changes nothing (no repaint of the lane)."""
        inputs = (
            list(phase_spans),
            [dict(c) for c in captures],
            list(pressure),
            list(self.marks),
            list(self.gaps),
            self.threshold_phase,
        )
        if inputs == self._lane_inputs:
            return
        self._lane_inputs = inputs
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
        spans = [
            Span(pressure_row, s.start, s.end, s.colour, s.label, s.open, s.key) for s in cut_gaps(pressure, self.gaps)
        ]
        spans += [Span(phase_base + s.row, s.start, s.end, s.colour, s.label, s.open, s.key) for s in phase_spans]
        self.lane_item.set_spans(spans)
        self._set_lane_rows(rows, labels)
        self._phase_ranges = [(s.start, s.end) for s in phase_spans if s.label == self.threshold_phase]
        self._draw_threshold_segments()
        empty = not spans and not captures and not self.marks
        self.empty_lane.setVisible(empty)
        self._place_empty_lane()
        self._set_captures(captures, capture_row)
        if capture_row is not None and self.marks:
            self.mark_points.setData(
                [t for t, _ in self.marks], [capture_row + 0.5] * len(self.marks), data=[name for _, name in self.marks]
            )
        else:
            self.mark_points.setData([], [])
        # an empty scatter item still costs ~1 ms of every lane repaint
        self.mark_points.setVisible(capture_row is not None and bool(self.marks))
        self.capture_points.setVisible(capture_row is not None and bool(captures))

    def _place_empty_lane(self) -> None:
        if self.empty_lane.isVisible():
            vr = self.main.vb.viewRange()[0]
            self.empty_lane.setPos((vr[0] + vr[1]) / 2, 0.5)

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
            line = pg.InfiniteLine(
                pos=t, angle=90, movable=False, pen=pg.mkPen(colour, width=1, style=QtCore.Qt.PenStyle.DashLine)
            )
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
