"""The compare view: two or more sessions overlaid on one plot, with a difference table.

Opened from the main window as ``CompareView(store, [session ids])``. The sessions' figures and
RSS series are read on a worker thread (the UI thread never waits on SQLite) and handed back
through a queued signal, with a progress bar counting the sessions read (a long session's series
takes seconds); ``ready`` fires when the plot and table are filled. Curves are aligned
at the sessions' starts, or at the start of a phase chosen in "Align at" (matched across the
sessions by name and order, as in ``memview compare``); a session without that phase stays
aligned at its start, drawn dashed, and its legend entry says so. Each session keeps its own
colour in the plot, the legend and the table's column header.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from memview.compare import Comparable, CompareError, compare, letter, load_comparable, match_phases, table_rows
from memview.store import StoreError
from memview.ui import theme
from memview.ui.envelope import MIN_SAMPLES, OVERVIEW_COLUMNS, points

#: distinguishable on light and dark backgrounds and for the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000", "#8C564B", "#7F7F7F")
_MIB = float(2**20)


def colour(i: int) -> str:
    colour = PALETTE[i % len(PALETTE)]
    return "#e8eaed" if colour == "#000000" and theme.current().dark else colour  # black on a dark plot


@dataclass(slots=True)
class Loaded:
    """One session as the view needs it: its figures and its total RSS series (seconds, bytes)."""

    session_id: int
    record: Comparable
    times: np.ndarray
    values: np.ndarray


class _Loader(QObject):
    """Carries the worker thread's result to the UI thread (a queued connection: emitted off-thread)."""

    done = Signal(object)
    progress = Signal(int)  # sessions read so far


def load_sessions(store: Any, session_ids: list[int], progress: Callable[[int], None] | None = None) -> list[Loaded]:
    """Read the sessions' figures and RSS series (runs on the worker thread, with its own connection);
    ``progress(n)`` is called after each of them."""
    out = []
    try:
        for sid in session_ids:
            record = load_comparable(str(sid), store)
            figures = store.series_figures(sid, "rss")
            if figures is not None and figures["samples"] >= MIN_SAMPLES:  # a day at 1 kHz: its overview
                times, values = points(store.window(sid, "rss", -np.inf, np.inf, OVERVIEW_COLUMNS, whole_chunks=True))
            else:
                times, values = store.load_series(sid, "rss")
            out.append(Loaded(sid, record, np.asarray(times, dtype=float), np.asarray(values, dtype=float)))
            if progress is not None:
                progress(len(out))
    finally:
        store.close()  # this thread's connection
    return out


class CompareView(QWidget):
    """Overlay plot and difference table of ``session_ids`` (two or more) from ``store``."""

    ready = Signal()
    failed = Signal(str)

    def __init__(self, store: Any, session_ids: list[int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.session_ids = list(session_ids)
        self.loaded: list[Loaded] = []
        self.result: dict[str, Any] | None = None
        self.curves: dict[int, pg.PlotDataItem] = {}
        self.offsets: dict[int, float] = {}
        self.setWindowTitle("Compare sessions " + ", ".join(f"#{s}" for s in self.session_ids))

        self.status = QLabel("Loading…")
        self.progress = QProgressBar()
        self.progress.setRange(0, max(len(session_ids), 1))
        self.progress.setValue(0)
        self.progress.setFormat("reading session %v of %m")
        self.progress.setMaximumWidth(220)
        self.progress.setToolTip("Reading the sessions' figures and series from the database")
        self.align = QComboBox()
        self.align.setToolTip("Line the curves up at the sessions' starts, or at the start of one phase")
        self.align.addItem("session start")
        self._align_keys: list[tuple[str, int] | None] = [None]  # per combo entry (Qt would mangle tuples)
        self.align.setEnabled(False)
        self.align.currentIndexChanged.connect(self._realign)
        top = QHBoxLayout()
        top.addWidget(QLabel("Align at:"))
        top.addWidget(self.align)
        top.addStretch(1)
        top.addWidget(self.progress)
        top.addWidget(self.status)

        self.plot = pg.PlotWidget()
        self.plot.setBackground(theme.current().background)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("left", "RSS (MiB)")
        self.plot.setLabel("bottom", "seconds since start")
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        self.legend = self.plot.addLegend(offset=(10, 10))
        self.zero_line = pg.InfiniteLine(0, angle=90, pen=pg.mkPen("#888", style=Qt.PenStyle.DashLine))
        self.zero_line.setVisible(False)
        self.plot.addItem(self.zero_line)

        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plot)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split)
        self.resize(900, 700)

        if len(self.session_ids) < 2:
            self._fail("select two or more sessions to compare")
            return
        self._loader = _Loader()
        self._loader.done.connect(self._on_loaded)
        self._loader.progress.connect(self._on_progress)
        threading.Thread(target=self._load, name="memview-compare-load", daemon=True).start()

    # -- loading (worker thread) --------------------------------------------------------------
    def _load(self) -> None:
        try:
            payload: Any = load_sessions(self.store, self.session_ids, self._emit_progress)
        except (CompareError, StoreError) as exc:
            payload = str(exc)
        except Exception as exc:  # the view must show something, never hang on "Loading…"
            payload = f"cannot load the sessions: {exc!r}"
        try:
            self._loader.done.emit(payload)
        except RuntimeError:  # the view was closed meanwhile
            pass

    def _emit_progress(self, n: int) -> None:
        try:
            self._loader.progress.emit(n)
        except RuntimeError:  # the view was closed meanwhile
            pass

    # -- UI thread ------------------------------------------------------------------------------
    def _on_progress(self, n: int) -> None:
        self.progress.setValue(n)
        if n < len(self.session_ids):
            self.status.setText(f"Loading… {n} of {len(self.session_ids)} read")

    def _fail(self, message: str) -> None:
        self.progress.hide()
        self.status.setText(message)
        self.status.setStyleSheet("color: #b00020")
        self.failed.emit(message)

    def _on_loaded(self, payload: Any) -> None:
        if isinstance(payload, str):
            self._fail(payload)
            return
        self.loaded = payload
        records = [item.record for item in self.loaded]
        for i, item in enumerate(self.loaded):
            item.record.label = f"{letter(i)}: {item.record.label}"
        self.result = compare(records)
        self._fill_align_choices(records)
        self._fill_table()
        self._draw()
        self.status.setText(f"{len(self.loaded)} sessions")
        self.progress.hide()
        self.align.setEnabled(True)
        self.ready.emit()

    def _fill_align_choices(self, records: list[Comparable]) -> None:
        self.align.blockSignals(True)
        for m in match_phases(*(r.phases for r in records)):
            have = sum(s is not None for s in m.stats)
            suffix = "" if have == len(records) else f"  ({have} of {len(records)})"
            self.align.addItem(f"phase {m.label}{suffix}")
            self._align_keys.append((m.name, m.occurrence))
        self.align.blockSignals(False)

    def _phase_start(self, record: Comparable, key: tuple[str, int]) -> float | None:
        for ph in record.phases:
            if ph.key == key:
                return ph.start_s
        return None

    def _draw(self) -> None:
        key = self._align_keys[max(self.align.currentIndex(), 0)]
        for i, item in enumerate(self.loaded):
            offset = 0.0
            note = ""
            if key is not None:
                start = self._phase_start(item.record, key)
                if start is None:
                    note = f" (no phase {key[0]}: at start)"
                else:
                    offset = start
            self.offsets[item.session_id] = offset
            style = Qt.PenStyle.DashLine if note else Qt.PenStyle.SolidLine
            pen = pg.mkPen(colour(i), width=2, style=style)
            name = item.record.label + note
            x, y = item.times - offset, item.values / _MIB
            curve = self.curves.get(item.session_id)
            if curve is None:
                curve = self.plot.plot(x, y, pen=pen, name=name)
                self.curves[item.session_id] = curve
            else:
                curve.setData(x, y)
                curve.setPen(pen)
                self.legend.getLabel(curve).setText(name)
        self.zero_line.setVisible(key is not None)
        label = (
            "seconds since start"
            if key is None
            else ("seconds since phase " + self.align.currentText().removeprefix("phase ").split("  (")[0] + " started")
        )
        self.plot.setLabel("bottom", label)
        self.plot.enableAutoRange()

    def _realign(self, _index: int) -> None:
        if self.loaded:
            self._draw()

    def align_at(self, phase: tuple[str, int] | None) -> None:
        """Align the curves at the sessions' starts (None) or at a phase's start: ``("parse", 1)`` is
        the second phase named "parse"."""
        if phase not in self._align_keys:
            raise ValueError(f"no phase {phase!r} in these sessions")
        self.align.setCurrentIndex(self._align_keys.index(phase))

    def _fill_table(self) -> None:
        assert self.result is not None
        headers, rows = table_rows(self.result)
        labels = [item.record.label for item in self.loaded]
        self.table.setColumnCount(len(headers))
        self.table.setRowCount(len(rows))
        col = 1
        for i, label in enumerate(labels):
            for text in [label] if i == 0 else [label, f"{letter(i)} vs A"]:
                head = QTableWidgetItem(text)
                head.setForeground(QBrush(QColor(colour(i))))
                self.table.setHorizontalHeaderItem(col, head)
                col += 1
        self.table.setHorizontalHeaderItem(0, QTableWidgetItem(""))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if c:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)

    # -- what tests and the main window read --------------------------------------------------
    def legend_labels(self) -> list[str]:
        return [label.text for _sample, label in self.legend.items]

    def cell(self, row_label: str, column: int) -> str:
        """The table's text in the row whose first cell is ``row_label``."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).text() == row_label:
                return self.table.item(r, column).text()
        raise KeyError(row_label)
