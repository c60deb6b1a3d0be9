"""pyqtgraph pieces the session view is built from: axes that speak MiB and mm:ss, the lane of
phase bars and capture markers, the threshold line, and the colours.

Kept apart from the view so each piece can be tested and benchmarked on its own, and so the
view module reads as composition rather than painting code.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from memview.units import format_bytes

# Tableau-10, readable on white and distinct for colour-blind viewers in most pairs.
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
THRESHOLD_COLOUR = "#d62728"
CAPTURE_COLOUR = "#7b3fa0"
PRESSURE_COLOURS = {0: "#8fd19e", 1: "#f6c85f", 2: "#e15759"}
PRESSURE_NAMES = {0: "normal", 1: "warning", 2: "critical"}


_ASSIGNED: dict[str, int] = {}


def colour_for(name: str) -> QtGui.QColor:
    """A stable colour per name: the same phase gets the same colour in every session.

    The name's hash picks a palette slot; a slot another name already holds is skipped (until
    all are taken), so "parse" and "render" never share a colour just because their hashes do.
    """
    slot = _ASSIGNED.get(name)
    if slot is None:
        n = len(PALETTE)
        start = zlib.crc32(name.encode()) % n
        used = set(_ASSIGNED.values())
        slot = next(((start + i) % n for i in range(n) if (start + i) % n not in used), start)
        _ASSIGNED[name] = slot
    return QtGui.QColor(PALETTE[slot])


def series_colour(index: int) -> QtGui.QColor:
    return QtGui.QColor(PALETTE[index % len(PALETTE)])


def format_clock(seconds: float | None, decimals: int = 0) -> str:
    """Seconds since the session start as ``mm:ss`` (``h:mm:ss`` past an hour)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if decimals:
        scale = 10**decimals
        seconds = round(seconds * scale) / scale
    whole = int(seconds)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    frac = f"{seconds - whole:.{decimals}f}"[1:] if decimals else ""
    return f"{sign}{h}:{m:02d}:{s:02d}{frac}" if h else f"{sign}{m:02d}:{s:02d}{frac}"


def format_span(seconds: float | None) -> str:
    """A duration: "2.9 s" under a minute, else mm:ss (h:mm:ss past an hour)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"
    return format_clock(seconds)


def command_title(argv: list[str] | str | None, fallback: str = "") -> str:
    """A short name for a command: "python extract.py", "node build.js", "sleep"."""
    import os
    import shlex

    if isinstance(argv, str):
        try:
            argv = shlex.split(argv)
        except ValueError:
            argv = argv.split()
    if not argv:
        return fallback
    prog = os.path.basename(argv[0])
    interpreters = ("python", "node", "ruby", "perl", "bash", "sh", "java", "deno", "bun", "uv", "npx")
    if prog.startswith(interpreters):
        script = next((a for a in argv[1:] if not a.startswith("-")), None)
        if script:
            return f"{prog} {os.path.basename(script)}"
    return prog


_TIME_STEPS = [
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
]


class TimeAxis(pg.AxisItem):
    """Seconds since the session start, labelled mm:ss on minute-friendly steps."""

    def __init__(self, orientation: str = "bottom", **kw: Any) -> None:
        super().__init__(orientation, **kw)
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:  # noqa: N802
        span = abs(maxVal - minVal)
        if span == 0 or not math.isfinite(span):
            return []
        target = span / max(2.0, size / 90.0)  # a label every ~90 px
        major = next((s for s in _TIME_STEPS if s >= target), _TIME_STEPS[-1])
        minors = [s for s in _TIME_STEPS if s < major and (major / s) in (2, 4, 5, 6, 10)]
        levels = [(major, 0.0)]
        if minors:
            levels.append((minors[-1], 0.0))
        return levels

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        decimals = 0 if spacing >= 1 else (1 if spacing >= 0.1 else 2)
        return [format_clock(v, decimals) for v in values]


_BINARY = [(1024**4, "TiB"), (1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"), (1, "B")]


def _unit_for(magnitude: float) -> tuple[int, str]:
    for factor, name in _BINARY:
        if magnitude >= factor:
            return factor, name
    return 1, "B"


class BytesAxis(pg.AxisItem):
    """Byte values labelled in binary units with round steps (100 MiB, not 104857600)."""

    def __init__(self, orientation: str = "left", **kw: Any) -> None:
        super().__init__(orientation, **kw)
        self.enableAutoSIPrefix(False)
        self._unit = (1024**2, "MiB")

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:  # noqa: N802
        magnitude = max(abs(minVal), abs(maxVal))
        if not math.isfinite(magnitude) or maxVal == minVal:
            return []
        factor, name = _unit_for(magnitude)
        self._unit = (factor, name)
        levels = super().tickSpacing(minVal / factor, maxVal / factor, size)
        return [(spacing * factor, offset * factor) for spacing, offset in levels]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        factor, name = self._unit
        step = spacing / factor
        decimals = 0 if step >= 1 else max(0, int(math.ceil(-math.log10(step))))
        return [f"{v / factor:.{decimals}f} {name}" for v in values]


class BytesLabelFormat:
    """Stands in for the format string of a pyqtgraph line label: ``format(value=bytes)``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def format(self, value: float) -> str:  # noqa: A003 - the InfLineLabel protocol
        return f"{self.prefix} {format_bytes(value)}"


def threshold_line(value: float, movable: bool = True) -> pg.InfiniteLine:
    """The horizontal, draggable threshold line; its label shows the value as MiB/GiB."""
    pen = pg.mkPen(THRESHOLD_COLOUR, width=2, style=QtCore.Qt.PenStyle.DashLine)
    hover = pg.mkPen(THRESHOLD_COLOUR, width=4)
    line = pg.InfiniteLine(
        pos=value,
        angle=0,
        movable=movable,
        pen=pen,
        hoverPen=hover,
        bounds=(0, None),
        label=BytesLabelFormat("threshold"),  # type: ignore[arg-type]
        labelOpts={
            "position": 0.02,
            "color": THRESHOLD_COLOUR,
            "fill": (255, 255, 255, 210),
            "anchors": [(0, 1), (0, 1)],
            "movable": False,
        },
    )
    line.setZValue(20)
    line.setToolTip("Drag to move the threshold; the trigger follows")
    return line


@dataclass(slots=True)
class Span:
    """One bar in the lane: a phase (or a pressure state) from ``start`` to ``end`` on ``row``."""

    row: int
    start: float
    end: float
    colour: QtGui.QColor
    label: str
    open: bool = False  # still running: drawn with a hatched end
    key: Any = None


class LaneItem(pg.GraphicsObject):
    """Coloured, named bars on integer rows, drawn in pixel space so names stay crisp.

    A lane may hold hundreds of phases; one item painting them all (and only those in view) is
    much cheaper than one QGraphicsItem per bar, and the text is elided to the bar's width
    instead of being stretched with the view.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []
        self._bounds = QtCore.QRectF(0, 0, 1, 1)
        self._font = QtGui.QFont()
        self._font.setPointSizeF(max(7.5, self._font.pointSizeF() * 0.9))

    def set_spans(self, spans: list[Span]) -> None:
        self.prepareGeometryChange()
        self.spans = spans
        if spans:
            x0 = min(s.start for s in spans)
            x1 = max(s.end for s in spans)
            rows = max(s.row for s in spans) + 1
            self._bounds = QtCore.QRectF(x0, 0, max(x1 - x0, 1e-9), rows)
        else:
            self._bounds = QtCore.QRectF(0, 0, 1e-9, 1)
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802
        return self._bounds

    def span_at(self, x: float, y: float) -> Span | None:
        """The innermost span under data coordinates (x, y), for tooltips and clicks."""
        row = int(math.floor(y))
        for span in self.spans:
            if span.row == row and span.start <= x <= span.end:
                return span
        return None

    def paint(self, painter: QtGui.QPainter, *_: Any) -> None:
        if not self.spans:
            return
        view = self.getViewBox()
        visible = view.viewRect() if view is not None else self._bounds
        transform = painter.transform()
        painter.save()
        painter.resetTransform()
        painter.setFont(self._font)
        metrics = QtGui.QFontMetrics(self._font)
        for span in self.spans:
            if span.end < visible.left() or span.start > visible.right():
                continue
            rect = transform.mapRect(QtCore.QRectF(span.start, span.row + 0.1, span.end - span.start, 0.8))
            if rect.width() < 1:
                rect.setWidth(1)
            fill = QtGui.QColor(span.colour)
            fill.setAlpha(200)
            painter.setPen(QtGui.QPen(span.colour.darker(130), 1))
            painter.setBrush(fill)
            painter.drawRect(rect)
            if span.open:
                painter.setBrush(QtGui.QBrush(span.colour.darker(150), QtCore.Qt.BrushStyle.BDiagPattern))
                tail = QtCore.QRectF(
                    rect.right() - min(12.0, rect.width()), rect.top(), min(12.0, rect.width()), rect.height()
                )
                painter.drawRect(tail)
            text_rect = rect.adjusted(4, 0, -4, 0)
            if text_rect.width() > 12:
                text = metrics.elidedText(span.label, QtCore.Qt.TextElideMode.ElideRight, int(text_rect.width()))
                painter.setPen(QtGui.QColor("#111111") if fill.lightness() > 110 else QtGui.QColor("white"))
                align = QtCore.Qt.AlignmentFlag.AlignVCenter | QtCore.Qt.AlignmentFlag.AlignLeft
                painter.drawText(text_rect, int(align), text)
        painter.restore()


def pressure_spans(times: np.ndarray, values: np.ndarray, row: int, end_t: float | None = None) -> list[Span]:
    """Runs of one pressure state as lane spans (0 normal, 1 warning, 2 critical)."""
    if len(times) == 0:
        return []
    states = values.astype(np.int64)
    change = np.flatnonzero(np.diff(states)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(states)]))
    last_t = float(times[-1]) if end_t is None else end_t
    spans = []
    for i0, i1 in zip(starts, ends):
        state = int(states[i0])
        t1 = float(times[i1]) if i1 < len(times) else last_t
        spans.append(
            Span(
                row,
                float(times[i0]),
                t1,
                QtGui.QColor(PRESSURE_COLOURS.get(state, "#999999")),
                PRESSURE_NAMES.get(state, str(state)),
                key=("pressure", state),
            )
        )
    return spans


def cut_gaps(spans: list[Span], gaps: list[tuple[float, float | None, str]]) -> list[Span]:
    """``spans`` with the time of each gap (start, end or None while open, reason) cut out.

    A pressure state read before a watched service's outage says nothing about the outage: drawn
    across it, the band would claim a state nobody read. Pieces left either side keep the span's
    colour and label.
    """
    if not gaps:
        return spans
    cuts = sorted((g0, math.inf if g1 is None else g1) for g0, g1, _reason in gaps)
    out = []
    for span in spans:
        start = span.start
        for g0, g1 in cuts:
            if g1 <= start or g0 >= span.end:
                continue
            if g0 > start:
                out.append(Span(span.row, start, g0, span.colour, span.label, False, span.key))
            start = max(start, g1)
        if start < span.end:
            out.append(Span(span.row, start, span.end, span.colour, span.label, span.open, span.key))
    return out
