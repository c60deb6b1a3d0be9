"""A live session into its view: the timer that pulls the bridge, and folding what arrived
(samples, events, phases, captures, store errors) into the view's state.

The recorder's threads never touch a widget (see ``bridge``): the view pulls at most ``MAX_FPS``
times a second and redraws only when something changed. Phases, captures and gaps arrive here
as they happen; the stored summary has the last word when the session ends.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore

from memview.model import RSS_SERIES, SOURCE_SAMPLED
from memview.ui.bridge import Update
from memview.ui.live_session import LiveSession
from memview.ui.series_buffer import SeriesBuffer

#: Events that are drawn elsewhere (lane, markers) or too frequent to list.
QUIET_EVENTS = {"phase_start", "process_start", "process_exit"}
MAX_LISTED_EVENTS = 500
#: points a live series keeps in memory (4 MiB); older ones are compacted to their min/max
LIVE_MAX_POINTS = 262_144


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


def phase_order(row: dict[str, Any]) -> tuple[float, int, int]:
    """Phases in the order they started, as the stored summary lists them: by start, depth, and
    the order they were announced in (``data["announced"]``, the recorder's count of phase
    starts), so phases that started at the same time (a log's millisecond clock) keep their order
    rather than the order their ends arrived in. A row still open has no ``data`` yet: its
    ``announced`` is the view's own count of the phase starts it saw, the same sequence."""
    announced = (row.get("data") or {}).get("announced", row.get("announced"))
    return float(row["start_s"]), int(row.get("depth") or 0), int(announced) if announced is not None else 1 << 62


class LiveFeed:
    """SessionView's live side (a mixin: it fills the view's own state)."""

    live: LiveSession | None
    buffers: dict[str, SeriesBuffer]
    labels: dict[str, str]
    phases: list[dict[str, Any]]
    captures: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    marks: list[tuple[float, str]]
    end_t: float | None
    timer: QtCore.QTimer
    _dirty: bool
    _lane_dirty: bool
    _side_due: float
    _starts_seen: int

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
            self.show_banner(
                "No capture engine is attached to this session (it arrives with the trigger engine).", timeout_ms=6000
            )
            return
        # progress until the capture reports back (or a minute passes: the engine may have declined)
        self._capture_known = {
            (c["tool"], c["started_s"], c["pid"]) for c in self.captures if c.get("status") not in ("running", None)
        }
        self.capture_button.setEnabled(False)
        self.capture_button.setText("Capturing…")
        self.capture_progress.show()
        QtCore.QTimer.singleShot(60000, self, self._capture_finished)

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
                # the last lines, then no more polling
                QtCore.QTimer.singleShot(500, self.output, self.output.stop_following)
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
                self._starts_seen += 1
                self.phases.append(
                    {
                        "name": data.get("name", ev.message),
                        "depth": int(data.get("depth") or 0),
                        "start_s": ev.t,
                        "end_s": None,
                        "peak_rss_bytes": None,
                        "peak_source": SOURCE_SAMPLED,
                        "growth_bytes": None,
                        "start_rss_bytes": self._value_at(ev.t),
                        "announced": data.get("announced", self._starts_seen),
                    }
                )
                self.phases.sort(key=phase_order)  # a phase read late (a log line) may have started earlier
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
                self.show_banner(
                    f"The database cannot be written ({update.store_error}); "
                    "recording continues in memory and is retried."
                )
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
        self.phases.sort(key=phase_order)
        self._lane_dirty = True

    def _upsert_capture(self, cap: dict[str, Any]) -> None:
        if (
            self.capture_progress.isVisible()
            and cap.get("status") not in ("running", None)
            and ((cap["tool"], cap["started_s"], cap["pid"]) not in getattr(self, "_capture_known", set()))
        ):
            self._capture_finished()
            self.show_banner(
                f"{cap['tool']} capture {cap.get('status')}" + (f": {cap['path']}" if cap.get("path") else ""),
                timeout_ms=8000,
                level="info" if cap.get("status") == "ok" else "error",
            )
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

    def _live_exact_peak(self) -> tuple[int, str] | None:
        """The kernel's high-water mark of a recorded process, read while it runs (no lock needed:
        an int attribute the sampler thread replaces)."""
        collector = getattr(getattr(self.live, "session", None), "collector", None)
        value = getattr(collector, "root_exact_peak", None)
        if value is None:
            return None
        return int(value), str(getattr(collector, "root_exact_source", "kernel"))
