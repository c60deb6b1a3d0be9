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

from memview.model import RSS_SERIES, SOURCE_SAMPLED, Capture, Phase
from memview.ui.bridge import MAX_FPS, Update
from memview.ui.capture_panel import CapturePanel
from memview.ui.live_session import LiveSession
from memview.ui.plot_area import PlotArea
from memview.ui.plot_items import Span, colour_for, format_clock, pressure_spans
from memview.ui.series_buffer import SeriesBuffer
from memview.ui.session_data import SessionData
from memview.ui.side_panel import Figures, SidePanel, exit_text
from memview.units import format_bytes

pg.setConfigOptions(background="w", foreground="#444444", antialias=True)

#: Events that are drawn elsewhere (lane, markers) or too frequent to list.
QUIET_EVENTS = {"phase_start", "process_start", "process_exit"}
MAX_LISTED_EVENTS = 500
WINDOWS = [("All", None), ("Last 1 min", 60.0), ("Last 5 min", 300.0), ("Last 15 min", 900.0),
           ("Last hour", 3600.0)]


def _capture_dict(c: Capture) -> dict[str, Any]:
    return {"tool": c.tool, "pid": c.pid, "trigger": c.trigger, "started_s": c.started_t, "ended_s": c.ended_t,
            "path": c.path, "size_bytes": c.size_bytes, "exit_status": c.exit_status, "status": c.status,
            "stderr_tail": c.stderr_tail, "data": c.data}


def _phase_dict(p: Phase) -> dict[str, Any]:
    return {"name": p.name, "depth": p.depth, "start_s": p.start_t, "end_s": p.end_t,
            "start_rss_bytes": p.start_rss_bytes, "end_rss_bytes": p.end_rss_bytes,
            "peak_rss_bytes": p.peak_rss_bytes, "peak_source": p.peak_source, "growth_bytes": p.growth_bytes,
            "flags": list(p.flags)}


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

        self.plot = PlotArea(self)
        self.side = SidePanel(self)
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
        self.readout = QtWidgets.QLabel()
        self.readout.setMinimumWidth(200)
        self.readout.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.capture_button = QtWidgets.QPushButton("Capture now")
        self.capture_button.setToolTip("Ask the capture engine for a stack/heap capture now (Ctrl+K)")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setToolTip("Stop recording; a launched command is ended (Ctrl+.)")
        self.stop_button.setStyleSheet("QPushButton:enabled { color: #c0392b; font-weight: 600; }")
        for w in (self.follow_button, self.window_box, self.per_process_button, self.components_button,
                  self.threshold_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.capture_button)
        bar.addWidget(self.stop_button)
        self.capture_button.hide()
        self.stop_button.hide()

        self.banner = QtWidgets.QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fdecea; color: #8a1f11; padding: 4px 8px; border-radius: 3px;")
        self.banner.hide()

        header = QtWidgets.QHBoxLayout()
        header.setContentsMargins(6, 4, 6, 0)
        self.title_label = QtWidgets.QLabel()
        font = self.title_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title_label.setFont(font)
        self.subtitle = QtWidgets.QLabel()
        self.subtitle.setStyleSheet("color: #666;")
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
        plot_split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        plot_split.addWidget(self.plot)
        plot_split.addWidget(self.capture_panel)
        plot_split.setSizes([500, 350])
        plot_split.setChildrenCollapsible(False)
        lv.addWidget(plot_split, 1)
        self.readout.setContentsMargins(8, 0, 8, 2)
        lv.addWidget(self.readout)

        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.side)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([900, 300])
        splitter.setChildrenCollapsible(False)
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
        self.capture_button.clicked.connect(self.capture_now)
        self.stop_button.clicked.connect(live.stop)
        live.bridge.ended.connect(self._tick)
        self.timer.start()
        self._tick()

    @property
    def is_live(self) -> bool:
        return self.live is not None and self.live.running

    def capture_now(self) -> None:
        if self.live is None:
            return
        if not self.live.capture_now():
            self.show_banner("No capture engine is attached to this session (it arrives with the trigger engine).",
                             timeout_ms=6000)

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
        now = QtCore.QDateTime.currentMSecsSinceEpoch() / 1000
        if self._dirty or self._lane_dirty or now >= self._side_due:
            self.redraw()

    def apply_update(self, update: Update) -> None:
        """Fold what the bridge collected into the view's state (marks it for redraw)."""
        for name, (times, values) in update.series.items():
            buf = self.buffers.get(name)
            if buf is None:
                buf = self.buffers[name] = SeriesBuffer()
                if name.startswith("component:"):
                    self.components_button.show()
                    self.labels[name] = name.split(":", 1)[1]
            buf.extend(times, values)
            self._dirty = True
        listed = []
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
            if ev.kind not in QUIET_EVENTS or ev.level in ("warning", "error"):
                listed.append((ev.t, ev.kind, ev.level, ev.message))
        for phase in update.phases:
            self._close_phase(_phase_dict(phase))
        for cap in update.captures:
            self._upsert_capture(_capture_dict(cap))
        if update.store_error is not None:
            if update.store_error:
                self.show_banner(f"The database cannot be written ({update.store_error}); "
                                 "recording continues in memory and is retried.")
            else:
                self.banner.hide()
        if listed:
            self.side.add_events(listed[-MAX_LISTED_EVENTS:])

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
        self.title = summary.get("name") or self.title
        self.target = summary.get("target") or self.target
        self.kind = summary.get("kind") or self.kind
        self.buffers = {name: SeriesBuffer.from_arrays(t, v) for name, (t, v) in data.series.items()}
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
        for e in data.events:
            if e["kind"] == "threshold":
                self._show_threshold((e.get("data") or {}).get("threshold_bytes"))
        self.end_t = summary.get("wall_s")
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
            self.plot.draw_series(self.buffers, self.labels)
        if self._lane_dirty or any(p["end_s"] is None for p in self.phases) or self._dirty:
            self.plot.set_lane(self._phase_spans(last), self.captures, self._pressure_spans(last))
        if self.plot.follow:
            self.plot.apply_follow(self.buffers, last if self.live is not None else self.end_t)
        now = QtCore.QDateTime.currentMSecsSinceEpoch() / 1000
        if now >= self._side_due or self._lane_dirty or self.summary is not None:
            self._update_side(last)
            self._side_due = now + 0.2  # figures at 5 Hz are plenty to read
        self._dirty = self._lane_dirty = False

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
                          state=s.get("status") or "stored")
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
    def _hovered(self, t: float) -> None:
        if math.isnan(t):
            self.readout.setText("<span style='color:#888'>hover the plot for time · RSS · phase</span>")
            return
        total = self.buffers.get(RSS_SERIES)
        value = total.value_at(t) if total is not None and total.count and t >= (total.first_t or 0) else None
        phase = self.phase_at(t)
        parts = [f"<b>{format_clock(t, 1)}</b>", f"RSS <b>{format_bytes(value)}</b>"]
        if phase:
            parts.append(f"phase <b>{phase}</b>")
        self.readout.setText("&nbsp;&nbsp;·&nbsp;&nbsp;".join(parts))

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
        self.plot.set_threshold(None if value is None else float(value))
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
        super().closeEvent(event)
