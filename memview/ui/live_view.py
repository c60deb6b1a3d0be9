"""One session on screen, live or stored: the plot, the lane, the side panel, the controls.

A live view pulls from its session's bridge with a QTimer at most 30 times a second, appends the
new columns to numpy buffers and redraws only when something changed; a stored view is filled
once from :class:`~memview.ui.session_data.SessionData`. Both end up in the same state, so a
session looks the same while it records and when it is reopened a month later.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from memview.model import EXACT_SOURCES, RSS_SERIES, SOURCE_SAMPLED
from memview.ui import theme
from memview.ui.bridge import MAX_FPS, Update
from memview.ui.capture_panel import CapturePanel
from memview.ui.child_output import OutputPane
from memview.ui.live_session import LiveSession
from memview.ui.plot_area import PlotArea
from memview.ui.plot_items import Span, colour_for, format_clock, pressure_spans
from memview.ui.series_buffer import SeriesBuffer
from memview.ui.session_data import SessionData
from memview.ui.side_panel import Figures, SidePanel, exit_text, tree_peak_text
from memview.units import format_bytes

pg.setConfigOptions(antialias=True)  # colours follow the palette: memview.ui.theme

#: Events that are drawn elsewhere (lane, markers) or too frequent to list.
QUIET_EVENTS = {"phase_start", "process_start", "process_exit"}
MAX_LISTED_EVENTS = 500
#: points a live series keeps in memory (4 MiB); older ones are compacted to their min/max
LIVE_MAX_POINTS = 262_144
WINDOWS = [("All", None), ("Last 1 min", 60.0), ("Last 5 min", 300.0), ("Last 15 min", 900.0),
           ("Last hour", 3600.0)]


def time_decimals(span_s: float) -> int:
    """Decimals a time needs at a zoom: ms when a few seconds fill the plot, whole seconds at hours."""
    if span_s < 5:
        return 3
    if span_s < 60:
        return 2
    if span_s < 3600:
        return 1
    return 0


def _line_rule(rules: list[str]) -> Any:
    """The rule the threshold line shows (the first absolute RSS rule), from the rules' texts."""
    from memview.triggers import RuleError, ThresholdLine, parse_rule

    parsed = []
    for text in rules:
        try:
            parsed.append(parse_rule(str(text)))
        except (RuleError, ValueError):
            continue
    return ThresholdLine.pick(parsed)


class SessionView(QtWidgets.QWidget):
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
        self.captures: list[dict[str, Any]] = []
        self.end_t: float | None = None
        self.redraws = 0
        self._dirty = False
        self._lane_dirty = False
        self._side_due = 0.0
        self.gaps: list[dict[str, Any]] = []  # {"start_s", "end_s" (None while open), "reason"}
        self.marks: list[tuple[float, str]] = []
        self.threshold_phase: str | None = None
        self._hover: tuple[float, float] = (math.nan, math.nan)

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
        self.per_process_button = self._tool("Per process", "Show each process's own RSS instead of only the total",
                                             checkable=True)
        self.per_process_button.toggled.connect(self._per_process_toggled)
        self.components_button = self._tool("Components", "Show the service's components as a stacked area",
                                            checkable=True, checked=True)
        self.components_button.toggled.connect(self._components_toggled)
        self.components_button.hide()
        self.threshold_button = self._tool("Threshold", "Show a draggable threshold line; the trigger follows it",
                                           checkable=True)
        self.threshold_button.toggled.connect(self._threshold_toggled)
        self.output_button = self._tool("Output", "Show or hide what the command prints (stdout and stderr)",
                                        checkable=True)
        self.output_button.toggled.connect(self._output_toggled)
        self.output_button.hide()
        self.details_button = self._tool("Details", "Show or hide the figures, phases and events beside the plot",
                                         checkable=True, checked=True)
        self.details_button.toggled.connect(self._details_toggled)
        self.readout = QtWidgets.QLabel()
        self.readout.setMinimumWidth(200)
        self.readout.setTextFormat(QtCore.Qt.TextFormat.RichText)
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
        for w in (self.follow_button, self.window_box, self.per_process_button, self.components_button,
                  self.threshold_button):
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
        self.banner.setStyleSheet("background: #5c2320; color: #ffdad6; padding: 4px 8px; border-radius: 3px;"
                                  if theme.current().dark else
                                  "background: #fdecea; color: #8a1f11; padding: 4px 8px; border-radius: 3px;")
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

    # -- live ------------------------------------------------------------------------------------
    def attach_live(self, live: LiveSession) -> None:
        """Show ``live`` as it records; the timer pulls its bridge until the session ends."""
        self.live = live
        self.session_id = live.session_id
        self._set_titles()
        self.capture_button.show()
        self.stop_button.show()
        self._apply_kind()
        if live.output is not None:
            self.show_output(live.output.paths)
        self.capture_button.clicked.connect(self.capture_now)
        self.stop_button.clicked.connect(live.stop)
        live.bridge.ended.connect(self._tick)
        self.timer.start()
        self._tick()

    @property
    def is_live(self) -> bool:
        return self.live is not None and self.live.running

    def capture_now(self) -> None:
        if self.live is None or not self.capture_button.isEnabled():
            return
        if not self.live.capture_now():
            self.show_banner("No capture engine is attached to this session (it arrives with the trigger engine).",
                             timeout_ms=6000)
            return
        # progress until the capture reports back (or a minute passes: the engine may have declined)
        self._capture_known = {(c["tool"], c["started_s"], c["pid"]) for c in self.captures
                               if c.get("status") not in ("running", None)}
        self.capture_button.setEnabled(False)
        self.capture_button.setText("Capturing…")
        self.capture_progress.show()
        QtCore.QTimer.singleShot(60000, self._capture_finished)

    def _capture_finished(self) -> None:
        self.capture_progress.hide()
        self.capture_button.setText("Capture now")
        self.capture_button.setEnabled(self.is_live and self.kind != "watch")

    def _tick(self) -> None:
        live = self.live
        if live is None:
            return
        update = live.bridge.take()
        if update:
            self.apply_update(update)
        if update.ended:
            self.timer.stop()
            self.end_t = self._last_t()
            if not getattr(self.live, "detached", False):
                QtCore.QTimer.singleShot(500, self.output.stop_following)  # the last lines, then no more polling
        now = QtCore.QDateTime.currentMSecsSinceEpoch() / 1000
        if self._dirty or self._lane_dirty or now >= self._side_due:
            self.redraw()

    def apply_update(self, update: Update) -> None:
        """Fold what the bridge collected into the view's state (marks it for redraw)."""
        for name, (times, values) in update.series.items():
            buf = self.buffers.get(name)
            if buf is None:
                buf = self.buffers[name] = SeriesBuffer(max_points=LIVE_MAX_POINTS)  # bounded memory
                if name.startswith("component:"):
                    self.components_button.show()
                    self.labels[name] = name.split(":", 1)[1]
                elif name.startswith("prom:"):  # a Prometheus label set: its legend is the labels
                    self.labels[name] = name[5:]
            buf.extend(times, values)
            self._dirty = True
        listed = []
        if self.kind == "watch" and any(n.startswith("prom:") for n in update.series):
            self.per_process_button.show()  # a Prometheus query's label sets: Per process splits them
        for ev in update.events:
            if ev.kind == "phase_start":
                data = ev.data or {}
                self.phases.append({"name": data.get("name", ev.message), "depth": int(data.get("depth") or 0),
                                    "start_s": ev.t, "end_s": None, "peak_rss_bytes": None,
                                    "peak_source": SOURCE_SAMPLED, "growth_bytes": None,
                                    "start_rss_bytes": self._value_at(ev.t)})
                self._lane_dirty = True
            elif ev.kind == "process_start" and "pid" in (ev.data or {}):
                self.labels[f"pid:{ev.data['pid']}"] = ev.message.rsplit(" started", 1)[0]
            elif ev.kind == "threshold":
                value = (ev.data or {}).get("threshold_bytes")
                self._show_threshold(value)
            else:
                self._note_event(ev.t, ev.kind, ev.message, ev.data or {})
            if ev.kind not in QUIET_EVENTS or ev.level in ("warning", "error"):
                listed.append((ev.t, ev.kind, ev.level, ev.message))
        for phase in update.phases:
            self._close_phase(phase.to_row())
        for cap in update.captures:
            self._upsert_capture(cap.to_row())
        if update.store_error is not None:
            if update.store_error:
                self.show_banner(f"The database cannot be written ({update.store_error}); "
                                 "recording continues in memory and is retried.")
            else:
                self.banner.hide()
        if listed:
            self.side.add_events(listed[-MAX_LISTED_EVENTS:])

    def _note_event(self, t: float, kind: str, message: str, data: dict[str, Any]) -> None:
        """Events drawn on the plot: gaps, marks, and the rules (a phase-scoped threshold)."""
        if kind == "gap":
            self.gaps.append({"start_s": t, "end_s": None, "reason": data.get("reason", message)})
            self._dirty = self._lane_dirty = True
        elif kind == "gap_end":
            start = data.get("start_s")
            for gap in reversed(self.gaps):
                if gap["end_s"] is None and (start is None or abs(gap["start_s"] - start) < 1e-6):
                    gap["end_s"] = t
                    break
            self._dirty = self._lane_dirty = True
        elif kind == "mark":
            self.marks.append((t, message))
            self._lane_dirty = True
        elif kind == "triggers":
            rule = _line_rule(data.get("rules") or [])
            if rule is not None:
                # a session recorded by the CLI has no "threshold" event: its rule is the line
                self.threshold_phase = rule.phase
                self._show_threshold(int(rule.line))

    def _close_phase(self, row: dict[str, Any]) -> None:
        for i in range(len(self.phases) - 1, -1, -1):
            open_row = self.phases[i]
            if open_row["end_s"] is None and open_row["name"] == row["name"] and open_row["depth"] == row["depth"]:
                self.phases[i] = row
                break
        else:
            self.phases.append(row)
            self.phases.sort(key=lambda r: r["start_s"])
        self._lane_dirty = True

    def _upsert_capture(self, cap: dict[str, Any]) -> None:
        if self.capture_progress.isVisible() and cap.get("status") not in ("running", None) and (
                (cap["tool"], cap["started_s"], cap["pid"]) not in getattr(self, "_capture_known", set())):
            self._capture_finished()
            self.show_banner(f"{cap['tool']} capture {cap.get('status')}"
                             + (f": {cap['path']}" if cap.get("path") else ""), timeout_ms=8000)
        key = (cap["tool"], cap["started_s"], cap["pid"])
        for i, old in enumerate(self.captures):
            if (old["tool"], old["started_s"], old["pid"]) == key:
                self.captures[i] = cap
                break
        else:
            self.captures.append(cap)
        self._lane_dirty = True

    def _value_at(self, t: float) -> int | None:
        buf = self.buffers.get(RSS_SERIES)
        got = buf.value_at(t) if buf is not None else None
        return None if got is None else int(got)

    def _last_t(self) -> float | None:
        if self.live is not None and self.live.recorder is not None and self.live.running:
            return float(self.live.recorder.now())
        if self.end_t is not None:
            return self.end_t
        buf = self.buffers.get(RSS_SERIES)
        return buf.last_t if buf is not None else None

    # -- stored ----------------------------------------------------------------------------------
    def load(self, data: SessionData) -> None:
        """Show a stored session (not live)."""
        self.session_id = data.session_id
        summary = data.summary
        from memview.ui.library import display_name

        self.title = display_name({**summary, "id": data.session_id}) or self.title
        self.target = summary.get("target") or self.target
        self.kind = summary.get("kind") or self.kind
        self.buffers = {name: SeriesBuffer.from_arrays(t, v, data.stats.get(name))
                        for name, (t, v) in data.series.items()}
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
        listed = [(e["t_s"], e["kind"], e["level"], e["message"]) for e in data.events
                  if e["kind"] not in QUIET_EVENTS or e["level"] in ("warning", "error")]
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
            self.plot.set_lane(self._phase_spans(last), self.captures, self._pressure_spans(last))
        if self.plot.follow:
            self.plot.apply_follow(self.buffers, last if self.live is not None else self.end_t)
        now = QtCore.QDateTime.currentMSecsSinceEpoch() / 1000
        if now >= self._side_due or self._lane_dirty or self.summary is not None:
            self._update_side(last)
            self._side_due = now + 0.2  # figures at 5 Hz are plenty to read
        self._dirty = self._lane_dirty = False

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
            spans.append(Span(int(p.get("depth") or 0), float(p["start_s"]), float(max(end, p["start_s"])),
                              colour_for(p["name"]), p["name"], p["end_s"] is None, key=("phase", i)))
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
                p = {**p, "peak_rss_bytes": peak,
                     "growth_bytes": None if start_rss is None or total.last is None else total.last - start_rss}
            rows.append(p)
        return rows

    def _update_side(self, last: float | None) -> None:
        total = self.buffers.get(RSS_SERIES)
        s = self.summary
        if s is not None:
            fig = Figures(current=s.get("final_rss_bytes"), peak=s.get("peak_rss_bytes"),
                          peak_source=s.get("peak_source"), average=s.get("avg_rss_bytes"), duration=s.get("wall_s"),
                          samples=int(s.get("samples") or (total.count if total else 0)), exit_text=exit_text(s),
                          state=s.get("status") or "stored", tree_peak=tree_peak_text(s))
        else:
            peak, source = (total.max if total else None), SOURCE_SAMPLED
            exact = self._live_exact_peak()
            if exact is not None and (peak is None or exact[0] >= peak):
                peak, source = exact
            state = self.live.state if self.live is not None else "stored"
            fig = Figures(current=total.last if total else None, peak=peak, peak_source=source,
                          average=total.mean if total else None, duration=last,
                          samples=total.count if total else 0, exit_text="running" if self.is_live else state,
                          state=state)
        self.side.set_figures(fig)
        self.side.set_phases(self._live_phase_rows(last), now=last)
        self.changed.emit()

    def _live_exact_peak(self) -> tuple[int, str] | None:
        """The kernel's high-water mark of a recorded process, read while it runs (no lock needed:
        an int attribute the sampler thread replaces)."""
        collector = getattr(getattr(self.live, "session", None), "collector", None)
        value = getattr(collector, "root_exact_peak", None)
        if value is None:
            return None
        return int(value), str(getattr(collector, "root_exact_source", "kernel"))

    # -- interaction -----------------------------------------------------------------------------
    def _hovered(self, t: float, y: float = math.nan) -> None:
        self._hover = (t, y)
        if math.isnan(t):
            self.readout.setText(f"<span style='color:{self.plot.theme.muted}'>hover the plot for every series' "
                                 "value at that time · wheel zooms time (Ctrl+wheel: memory) · drag pans</span>")
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

    def _span_clicked(self, span: Span) -> None:
        if span.key and span.key[0] == "phase":
            self.plot.zoom_to(span.start, span.end)

    def show_output(self, paths: dict[str, Any], open_pane: bool = True) -> None:
        """Show the command's output files in the pane (a live run, or a stored one that kept them:
        there the pane starts folded, the plot keeps the room)."""
        self.output.follow(paths)
        self.output_button.show()
        self.output_button.setChecked(open_pane)

    def _output_toggled(self, on: bool) -> None:
        self.output.setVisible(on)
        if on:
            sizes = self.vsplit.sizes()  # plot, capture panel, output
            total = max(sum(sizes), 300)
            panel = sizes[1] if self.capture_panel.isVisible() else 0
            self.vsplit.setSizes([max(total - panel - 140, 1), panel, 140])

    def _details_toggled(self, on: bool) -> None:
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if on and sizes[1] == 0:
            self.splitter.setSizes([max(total - 300, 1), 300])
        elif not on and sizes[1] > 0:
            self.splitter.setSizes([total, 0])

    def _follow_toggled(self, on: bool) -> None:
        self.plot.set_follow(on)
        if on:
            self.redraw()

    def _window_changed(self, _index: int) -> None:
        self.plot.window_s = self.window_box.currentData()
        self.plot.set_follow(True)
        self.redraw()

    def _per_process_toggled(self, on: bool) -> None:
        self.plot.per_process = on
        self._dirty = True
        self.redraw()

    def _components_toggled(self, on: bool) -> None:
        self.plot.show_components = on
        self._dirty = True
        self.redraw()

    def _threshold_toggled(self, on: bool) -> None:
        if on:
            line = self.plot.threshold
            if line is None or not line.isVisible():
                total = self.buffers.get(RSS_SERIES)
                value = (total.max * 1.1) if total is not None and total.max else 100 * 2**20
                self.plot.set_threshold(float(np.ceil(value / 2**20) * 2**20))
                self._threshold_moved(int(self.plot.threshold.value()))  # type: ignore[union-attr]
        else:
            self.plot.set_threshold(None)
            self._threshold_moved(None)

    def _show_threshold(self, value: int | None) -> None:
        self.plot.set_threshold(None if value is None else float(value), phase=self.threshold_phase)
        self.threshold_button.blockSignals(True)
        self.threshold_button.setChecked(value is not None)
        self.threshold_button.blockSignals(False)

    def _threshold_moved(self, value: int | None) -> None:
        if self.live is not None and self.live.running:
            current = self.live.recorder.threshold if self.live.recorder is not None else None
            if value != current:
                self.live.set_threshold(value)

    def show_banner(self, text: str, timeout_ms: int | None = None) -> None:
        self.banner.setText(text)
        self.banner.show()
        if timeout_ms:
            QtCore.QTimer.singleShot(timeout_ms, self.banner.hide)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.timer.stop()
        self.output.timer.stop()
        super().closeEvent(event)
