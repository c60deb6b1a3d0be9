"""One session on screen, live or stored: the plot, the lane, the side panel, the controls.

A live view pulls from its session's bridge with a QTimer at most 30 times a second, appends the
new columns to numpy buffers and redraws only when something changed; a stored view is filled
once from :class:`~memview.ui.session_data.SessionData`. Both end up in the same state, so a
session looks the same while it records and when it is reopened a month later.

This module owns the layout, the stored path and the redraw; the live path is ``live_feed``,
the cursor's readout ``hover_readout`` and the controls' handlers ``view_controls``.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from memview.model import EXACT_SOURCES, RSS_SERIES, SOURCE_SAMPLED
from memview.ui import theme
from memview.ui.bridge import MAX_FPS
from memview.ui.capture_panel import CapturePanel
from memview.ui.child_output import OutputPane
from memview.ui.hover_readout import HoverReadout, ReadoutLabel
from memview.ui.live_feed import LIVE_MAX_POINTS, MAX_LISTED_EVENTS, QUIET_EVENTS, LiveFeed
from memview.ui.live_session import LiveSession
from memview.ui.plot_area import PlotArea
from memview.ui.plot_items import Span, colour_for, pressure_spans
from memview.ui.series_buffer import SeriesBuffer
from memview.ui.session_data import SessionData
from memview.ui.side_panel import Figures, SidePanel, exit_text, tree_peak_text
from memview.ui.view_controls import ViewControls

pg.setConfigOptions(antialias=True)  # colours follow the palette: memview.ui.theme

__all__ = ["LIVE_MAX_POINTS", "WINDOWS", "SessionView"]

WINDOWS = [("All", None), ("Last 1 min", 60.0), ("Last 5 min", 300.0), ("Last 15 min", 900.0), ("Last hour", 3600.0)]


class SessionView(LiveFeed, HoverReadout, ViewControls, QtWidgets.QWidget):
    """The workspace tab for one session."""

    capture_activated = QtCore.Signal(object)  # a capture's dict (path, tool, …)
    changed = QtCore.Signal()  # figures changed (the tab title may follow)

    def __init__(self, title: str, kind: str, target: str = "", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.kind = kind
        self.target = target
        self.session_id: int | None = None
        self.live: LiveSession | None = None
        self.summary: dict[str, Any] | None = None
        self.buffers: dict[str, SeriesBuffer] = {}
        self.labels: dict[str, str] = {RSS_SERIES: "RSS"}
        self.phases: list[dict[str, Any]] = []
        self._starts_seen = 0  # phase starts seen live: an open phase's place among same-time starts
        self.captures: list[dict[str, Any]] = []
        self.end_t: float | None = None
        self.redraws = 0
        self._dirty = False
        self._lane_dirty = False
        self._side_due = 0.0
        self._side_shown: tuple[Any, Any] = (None, None)  # the figures and phase rows the side panel shows
        self.gaps: list[dict[str, Any]] = []  # {"start_s", "end_s" (None while open), "reason"}
        self.marks: list[tuple[float, str]] = []
        self.threshold_phase: str | None = None

        self.plot = PlotArea(self)
        self.side = SidePanel(self)
        self.output = OutputPane(self)
        self._build()
        self.plot.follow_changed.connect(self.follow_button.setChecked)
        self.plot.hovered.connect(self._hovered)
        self.plot.capture_clicked.connect(self.show_capture)  # opens in the capture panel below the plot
        self.plot.span_clicked.connect(self._span_clicked)
        self.plot.threshold_moved.connect(self._threshold_moved)
        self.side.phase_activated.connect(self.plot.zoom_to)

        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(int(1000 / MAX_FPS) + 1)
        self.timer.timeout.connect(self._tick)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.follow_button = self._tool("Follow", "Keep the newest data in view (F)", checkable=True, checked=True)
        self.follow_button.setShortcut(QtGui.QKeySequence("F"))
        self.follow_button.toggled.connect(self._follow_toggled)
        self.window_box = QtWidgets.QComboBox()
        for label, seconds in WINDOWS:
            self.window_box.addItem(label, seconds)
        self.window_box.setToolTip("How much of the session Follow shows")
        self.window_box.currentIndexChanged.connect(self._window_changed)
        self.per_process_button = self._tool(
            "Per process", "Show each process's own RSS instead of only the total", checkable=True
        )
        self.per_process_button.toggled.connect(self._per_process_toggled)
        self.components_button = self._tool(
            "Components", "Show the service's components as a stacked area", checkable=True, checked=True
        )
        self.components_button.toggled.connect(self._components_toggled)
        self.components_button.hide()
        self.threshold_button = self._tool(
            "Threshold", "Show a draggable threshold line; the trigger follows it", checkable=True
        )
        self.threshold_button.toggled.connect(self._threshold_toggled)
        self.output_button = self._tool(
            "Output", "Show or hide what the command prints (stdout and stderr)", checkable=True
        )
        self.output_button.toggled.connect(self._output_toggled)
        self.output_button.hide()
        self.details_button = self._tool(
            "Details", "Show or hide the figures, phases and events beside the plot", checkable=True, checked=True
        )
        self.details_button.toggled.connect(self._details_toggled)
        self.readout = ReadoutLabel()  # elides (full text as tooltip) rather than cut off in a narrow window
        self.capture_button = QtWidgets.QPushButton("Capture now")
        self.capture_button.setToolTip("Ask the capture engine for a stack/heap capture now (Ctrl+K)")
        self.capture_progress = QtWidgets.QProgressBar()
        self.capture_progress.setRange(0, 0)
        self.capture_progress.setMaximumWidth(80)
        self.capture_progress.setMaximumHeight(12)
        self.capture_progress.setTextVisible(False)
        self.capture_progress.hide()
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setToolTip("Stop recording; a launched command is ended (Ctrl+.)")
        self.stop_button.setStyleSheet(f"QPushButton:enabled {{ color: {theme.current().bad}; font-weight: 600; }}")
        for w in (
            self.follow_button,
            self.window_box,
            self.per_process_button,
            self.components_button,
            self.threshold_button,
        ):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.output_button)
        bar.addWidget(self.details_button)
        bar.addWidget(self.capture_progress)
        bar.addWidget(self.capture_button)
        bar.addWidget(self.stop_button)
        self.capture_button.hide()
        self.stop_button.hide()

        self.banner = QtWidgets.QLabel()
        self.banner.setWordWrap(True)
        self.banner.setProperty("level", "error")
        self.banner.hide()

        header = QtWidgets.QHBoxLayout()
        header.setContentsMargins(6, 4, 6, 0)
        self.title_label = QtWidgets.QLabel()
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_label.setMinimumWidth(10)  # a long command or name must not widen the window past the screen
        self.subtitle = QtWidgets.QLabel()
        self.subtitle.setStyleSheet(f"color: {theme.current().muted};")
        self.subtitle.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle.setMinimumWidth(10)
        self.subtitle.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        header.addWidget(self.title_label)
        header.addSpacing(10)
        header.addWidget(self.subtitle, 1)

        left = QtWidgets.QWidget()
        lv = QtWidgets.QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(2)
        lv.addLayout(bar)
        lv.addWidget(self.banner)
        self.capture_panel = CapturePanel()
        self.capture_panel.hide()
        self.vsplit = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.vsplit.addWidget(self.plot)
        self.vsplit.addWidget(self.capture_panel)
        self.vsplit.addWidget(self.output)
        self.vsplit.setStretchFactor(0, 1)
        self.vsplit.setCollapsible(0, False)
        self.vsplit.setCollapsible(1, False)
        self.output.hide()
        lv.addWidget(self.vsplit, 1)
        self.readout.setContentsMargins(8, 0, 8, 2)
        lv.addWidget(self.readout)

        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.side)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([900, 320])
        splitter.setChildrenCollapsible(False)
        splitter.setCollapsible(1, True)  # the figures fold away for a wider plot ("Details")
        self.splitter = splitter
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        outer.addLayout(header)
        outer.addWidget(splitter, 1)
        self._set_titles()
        self._hovered(math.nan)

    def show_capture(self, capture: dict[str, Any]) -> None:
        """A capture marker was clicked: its sites and stacks in the panel below the plot."""
        self.capture_panel.show_capture(capture)

    def _tool(self, text: str, tip: str, checkable: bool = False, checked: bool = False) -> QtWidgets.QToolButton:
        button = QtWidgets.QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setCheckable(checkable)
        button.setChecked(checked)
        button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setAutoRaise(False)
        return button

    def _apply_kind(self) -> None:
        """A watched service has no process of ours: no per-process curves, nothing to capture."""
        watch = self.kind == "watch"
        # a watched Prometheus query's label sets ("prom:…" series) are what Per process splits
        split = not watch or any(n.startswith("prom:") for n in self.buffers)
        self.per_process_button.setVisible(split)
        if not split:
            self.per_process_button.setChecked(False)
        if watch:
            self.side.no_phases.setText("No phases: a watched service does not announce them.")
            self.capture_button.setEnabled(False)
            self.capture_button.setToolTip("A watched service is not a process memview can profile")

    def _set_titles(self) -> None:
        sid = f"#{self.session_id}  " if self.session_id is not None else ""
        self.title_label.setText(f"{sid}{self.title}")
        self.subtitle.setText(f"{self.kind} · {self.target}" if self.target else self.kind)
        self.subtitle.setToolTip(self.target)

    # -- stored ----------------------------------------------------------------------------------
    def load(self, data: SessionData) -> None:
        """Show a stored session (not live)."""
        self.session_id = data.session_id
        summary = data.summary
        from memview.ui.library import display_name

        self.title = display_name({**summary, "id": data.session_id}) or self.title
        self.target = summary.get("target") or self.target
        self.kind = summary.get("kind") or self.kind
        self.buffers = {
            name: SeriesBuffer.from_arrays(t, v, data.stats.get(name)) for name, (t, v) in data.series.items()
        }
        self.plot.set_envelopes(data.envelopes)
        for name, unit in data.units.items():
            if unit.get("label"):
                self.labels[name] = unit["label"]
        for proc in summary.get("processes") or []:
            self.labels.setdefault(f"pid:{proc['pid']}", f"{proc['name']} ({proc['pid']})")
        for name in self.buffers:
            if name.startswith("component:"):
                self.labels.setdefault(name, name.split(":", 1)[1])
                self.components_button.show()
        self.side.clear_events()
        listed = [
            (e["t_s"], e["kind"], e["level"], e["message"])
            for e in data.events
            if e["kind"] not in QUIET_EVENTS or e["level"] in ("warning", "error")
        ]
        self.side.add_events(listed[-MAX_LISTED_EVENTS:])
        self.gaps, self.marks = [], []
        for e in data.events:
            if e["kind"] == "threshold":
                self._show_threshold((e.get("data") or {}).get("threshold_bytes"))
            else:
                self._note_event(e["t_s"], e["kind"], e["message"], e.get("data") or {})
        self.end_t = summary.get("wall_s")
        self._apply_kind()
        self.set_summary(summary)
        self.follow_button.setText("Fit")
        self.follow_button.setToolTip("Show the whole session (F)")
        self.plot.set_follow(True)
        self.redraw()

    def set_summary(self, summary: dict[str, Any]) -> None:
        """The stored summary is the last word: exact peaks, exit status, phases, captures."""
        self.summary = summary
        self.session_id = summary.get("session_id", self.session_id)
        if summary.get("name"):
            self.title = summary["name"]
        self.phases = [dict(p) for p in summary.get("phases") or []]
        self.captures = [dict(c) for c in summary.get("captures") or []]
        if summary.get("wall_s") is not None:
            self.end_t = summary["wall_s"]
        self.capture_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        self._set_titles()
        self._lane_dirty = True
        self._dirty = True
        self.redraw()

    # -- drawing ---------------------------------------------------------------------------------
    def redraw(self) -> None:
        self.redraws += 1
        last = self._last_t()
        if self._dirty:
            if self.gaps or self.plot.gaps:
                self.plot.set_gaps([(g["start_s"], g["end_s"], g["reason"]) for g in self.gaps], last)
            self.plot.draw_series(self.buffers, self.labels, self._labelled_peak(), last)
        if self._lane_dirty or any(p["end_s"] is None for p in self.phases) or self._dirty:
            self.plot.set_marks(self.marks)
            lane_last = self._lane_time(last)
            self.plot.set_lane(self._phase_spans(lane_last), self.captures, self._pressure_spans(lane_last))
        if self.plot.follow:
            self.plot.apply_follow(self.buffers, last if self.live is not None else self.end_t)
        now = QtCore.QDateTime.currentMSecsSinceEpoch() / 1000
        if now >= self._side_due or self._lane_dirty or self.summary is not None:
            self._update_side(last)
            self._side_due = now + 0.2  # figures at 5 Hz are plenty to read
        self._dirty = self._lane_dirty = False

    def _lane_time(self, last: float | None) -> float | None:
        """``last`` rounded up to the plot's next pixel column: an open phase's bar grows a pixel at
        a time, so the lane (set_lane skips unchanged input) repaints when its picture changes, not
        every frame."""
        if last is None:
            return None
        px = self.plot.main.vb.viewPixelSize()[0]
        if not math.isfinite(px) or px <= 0:
            return last
        return math.ceil(last / px) * px

    def _labelled_peak(self) -> tuple[float, str] | None:
        """The peak the plot labels: the same figure as the side panel (exact when the kernel's)."""
        s = self.summary
        if s is not None and s.get("peak_rss_bytes") is not None:
            source = s.get("peak_source") or ""
            return float(s["peak_rss_bytes"]), source if source in EXACT_SOURCES else ""
        exact = self._live_exact_peak()
        if exact is not None:
            return float(exact[0]), exact[1]
        return None

    def _phase_spans(self, last: float | None) -> list[Span]:
        spans = []
        for i, p in enumerate(self.phases):
            end = p["end_s"] if p["end_s"] is not None else (last if last is not None else p["start_s"])
            spans.append(
                Span(
                    int(p.get("depth") or 0),
                    float(p["start_s"]),
                    float(max(end, p["start_s"])),
                    colour_for(p["name"]),
                    p["name"],
                    p["end_s"] is None,
                    key=("phase", i),
                )
            )
        return spans

    def _pressure_spans(self, last: float | None) -> list[Span]:
        buf = self.buffers.get("pressure")
        if buf is None or not buf.count:
            return []
        return pressure_spans(buf.t, buf.v, 0, last)

    def _live_phase_rows(self, last: float | None) -> list[dict[str, Any]]:
        rows = []
        total = self.buffers.get(RSS_SERIES)
        for p in self.phases:
            if p["end_s"] is None and total is not None and last is not None:
                peak = total.max_between(p["start_s"], last)
                start_rss = p.get("start_rss_bytes")
                p = {
                    **p,
                    "peak_rss_bytes": peak,
                    "growth_bytes": None if start_rss is None or total.last is None else total.last - start_rss,
                }
            rows.append(p)
        return rows

    def _update_side(self, last: float | None) -> None:
        total = self.buffers.get(RSS_SERIES)
        s = self.summary
        if s is not None:
            fig = Figures(
                current=s.get("final_rss_bytes"),
                peak=s.get("peak_rss_bytes"),
                peak_source=s.get("peak_source"),
                average=s.get("avg_rss_bytes"),
                duration=s.get("wall_s"),
                samples=int(s.get("samples") or (total.count if total else 0)),
                exit_text=exit_text(s),
                state=s.get("status") or "stored",
                tree_peak=tree_peak_text(s),
            )
        else:
            peak, source = (total.max if total else None), SOURCE_SAMPLED
            exact = self._live_exact_peak()
            if exact is not None and (peak is None or exact[0] >= peak):
                peak, source = exact
            state = self.live.state if self.live is not None else "stored"
            fig = Figures(
                current=total.last if total else None,
                peak=peak,
                peak_source=source,
                average=total.mean if total else None,
                duration=last,
                samples=total.count if total else 0,
                exit_text="running" if self.is_live else state,
                state=state,
            )
        if fig != self._side_shown[0]:
            self.side.set_figures(fig)
        rows = self._live_phase_rows(last)
        # the table is refilled only when a row changed (an open phase's time runs while it is open)
        phases = ([dict(r) for r in rows], last if any(r["end_s"] is None for r in rows) else None)
        if phases != self._side_shown[1]:
            self.side.set_phases(rows, now=last)
        if (fig, phases) != self._side_shown:
            self._side_shown = (fig, phases)
            self.changed.emit()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.timer.stop()
        self.output.timer.stop()
        super().closeEvent(event)
