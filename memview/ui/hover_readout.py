"""What the cursor reads: the line under the plot and the crosshair's tooltip at the cursor,
with every visible series' value at that time, the phase, a nearby mark and a gap's reason.

Times are shown with as many decimals as the zoom makes meaningful (ms when a few seconds fill
the plot). Without a cursor the line is a hint of how to navigate; it is elided to the width it
has (the full text is its tooltip), so a narrow window never cuts it mid-word.
"""

from __future__ import annotations

import html
import math
import re

from PySide6 import QtCore, QtGui, QtWidgets

from memview.model import RSS_SERIES
from memview.ui.plot_items import format_clock
from memview.units import format_bytes


def time_decimals(span_s: float) -> int:
    """Decimals a time needs at a zoom: ms when a few seconds fill the plot, whole seconds at hours."""
    if span_s < 5:
        return 3
    if span_s < 60:
        return 2
    if span_s < 3600:
        return 1
    return 0


class ReadoutLabel(QtWidgets.QLabel):
    """A one-line rich-text label that never cuts its text off: when the text is wider than the
    label, it shows the plain text elided ("…") and the whole text as its tooltip. It takes the
    width the layout gives it (it does not widen the window: a 1000 px screen must fit)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self._html = ""
        self._doc = QtGui.QTextDocument()
        self._doc.setDocumentMargin(0)

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel's own name: every caller gets the fitting
        self._html = text
        self._fit()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        self._doc.setDefaultFont(self.font())
        self._doc.setHtml(self._html)
        room = self.contentsRect().width()
        if self._doc.idealWidth() <= room:
            super().setText(self._html)
            self.setToolTip("")
            return
        plain = " ".join(self._doc.toPlainText().split())
        elided = html.escape(self.fontMetrics().elidedText(plain, QtCore.Qt.TextElideMode.ElideRight, max(room, 0)))
        colour = re.match(r"<span style='color:(#[0-9a-fA-F]{6})'>", self._html)  # the hint's muted colour
        super().setText(f"<span style='color:{colour.group(1)}'>{elided}</span>" if colour else elided)
        self.setToolTip(plain)


class HoverReadout:
    """SessionView's readout and tooltip (a mixin: it reads the view's state)."""

    def _hovered(self, t: float, y: float = math.nan) -> None:
        if math.isnan(t):
            self.readout.setText(
                f"<span style='color:{self.plot.theme.muted}'>hover the plot for every series' "
                "value at that time · wheel zooms time (Ctrl+wheel: memory) · drag pans</span>"
            )
            self.plot.hide_tip()
            return
        decimals = time_decimals(self.plot.visible_time_span())
        rows = self.values_at(t)
        phase = self.phase_at(t)
        gap = self.plot.gap_at(t)
        parts = [f"<b>{format_clock(t, decimals)}</b>"]
        parts += [f"{name} <b>{text}</b>" for name, text, _colour in rows[:3]]
        if phase:
            parts.append(f"phase <b>{phase}</b>")
        if gap is not None:
            parts.append(f"no reading: {gap[2]}")
        self.readout.setText("&nbsp;&nbsp;·&nbsp;&nbsp;".join(parts))
        lines = [f"<b>{format_clock(t, decimals)}</b>"]
        for name, text, colour in rows:
            lines.append(f"<span style='color:{colour}'>■</span> {name}: <b>{text}</b>")
        if phase:
            lines.append(f"phase: <b>{phase}</b>")
        near = self._mark_near(t)
        if near:
            lines.append(f"mark: {near}")
        if gap is not None:
            lines.append(f"<span style='color:{self.plot.theme.bad}'>no reading: {gap[2]}</span>")
        self.plot.show_tip(t, y, "<br>".join(lines))

    def values_at(self, t: float) -> list[tuple[str, str, str]]:
        """(name, value, colour) of every series drawn now, at time ``t`` (what the tooltip lists)."""
        plot = self.plot
        out: list[tuple[str, str, str]] = []
        gap = plot.gap_at(t)

        def value(name: str) -> str:
            buf = self.buffers.get(name)
            if buf is None or not buf.count or t < (buf.first_t or 0) or gap is not None:
                return "-"
            env = plot.envelopes.get(name)  # a long stored series: what the store answered for this view
            if env is not None:
                span = env.value_at(t)
                return "-" if span is None else "–".join(dict.fromkeys(map(format_bytes, span)))
            return format_bytes(buf.value_at(t))

        if plot.total.isVisible():
            out.append((self.labels.get(RSS_SERIES, "RSS"), value(RSS_SERIES), plot.theme.total))
        if plot.service_peak is not None and plot.service_peak.isVisible():
            out.append(("service's own peak", value("service_peak"), "#888888"))
        for curves in (plot.proc_curves, plot.comp_curves):
            for name, curve in curves.items():
                if curve.isVisible():
                    out.append((self.labels.get(name, name), value(name), curve.opts["pen"].color().name()))
        return out

    def _mark_near(self, t: float) -> str | None:
        """The mark within a few pixels of ``t``."""
        if not self.marks:
            return None
        tolerance = self.plot.main.vb.viewPixelSize()[0] * 6
        best = min(self.marks, key=lambda m: abs(m[0] - t))
        return best[1] if abs(best[0] - t) <= tolerance else None

    def phase_at(self, t: float) -> str | None:
        """The innermost phase running at ``t``."""
        best = None
        last = self._last_t()
        for p in self.phases:
            end = p["end_s"] if p["end_s"] is not None else last
            if end is not None and p["start_s"] <= t <= end and (best is None or p["depth"] >= best["depth"]):
                best = p
        return best["name"] if best else None
