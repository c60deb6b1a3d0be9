"""The session view's controls: Follow and its window, per-process and component curves, the
threshold, the output pane, the details panel, the banner.

Each handler changes the plot's or the view's state and redraws; the threshold handlers are
the only ones that reach the recorder (a dragged line moves the live trigger).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6 import QtCore

from memview.model import RSS_SERIES
from memview.ui import theme
from memview.ui.plot_items import Span

#: (level, dark palette) -> (background, text) of the banner; each pair's contrast is above 7:1
BANNER_COLOURS = {
    ("error", False): ("#fdecea", "#8a1f11"),
    ("error", True): ("#5c2320", "#ffdad6"),
    ("info", False): ("#e8f0fe", "#1a3a5c"),
    ("info", True): ("#1f3347", "#dbe9f7"),
}


class ViewControls:
    """SessionView's control handlers (a mixin: they act on the view's state)."""

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

    def show_banner(self, text: str, timeout_ms: int | None = None, level: str = "error") -> None:
        """A line over the plot: red for what went wrong (``error``), neutral for news (``info``:
        loading, a capture that finished, a bundle already imported) — not every message is an alarm."""
        dark = theme.current().dark
        colours = BANNER_COLOURS[(level if level in ("error", "info") else "error", dark)]
        self.banner.setProperty("level", level)
        self.banner.setStyleSheet(
            f"background: {colours[0]}; color: {colours[1]}; padding: 4px 8px; border-radius: 3px;"
        )
        self.banner.setText(text)
        self.banner.show()
        if timeout_ms:
            QtCore.QTimer.singleShot(timeout_ms, self.banner, self.banner.hide)
