"""The figures beside the plot: current, peak (and where it came from), average, duration, rate,
exit status; each phase's own peak and growth; the Python heap sites a ``phase(...,
tracemalloc=True)`` grew (listed when the phase is selected, and in its tooltip); the session's
notable events.

Only displays what it is given; the session view decides when the figures change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from memview.model import EXACT_SOURCES
from memview.ui import theme
from memview.ui.plot_items import colour_for, format_clock, format_span
from memview.units import format_bytes


@dataclass(slots=True)
class Figures:
    current: float | None = None
    peak: float | None = None
    peak_source: str | None = None
    average: float | None = None
    duration: float | None = None
    samples: int = 0
    exit_text: str = "running"
    state: str = "recording"
    tree_peak: str | None = None  # a tree's peak framing (tree_peak_text); None hides the row


def tree_peak_text(summary: dict[str, Any]) -> str | None:
    """A tree's peak as exact, or as sampled floor and upper bound with the bound's source
    (docs/exactness.md): the sum of samples can miss a spike between them, the sum of each
    process's exact per-interval maxima cannot, but the maxima need not have been simultaneous."""
    if len(summary.get("processes") or []) < 2:
        return None
    sampled, bound = summary.get("peak_sampled_bytes"), summary.get("peak_bound_bytes")
    if sampled is None and bound is None:
        return None
    if summary.get("peak_exact"):
        return f"exact {format_bytes(summary.get('peak_rss_bytes'))}"
    text = f"sampled floor {format_bytes(sampled)}"
    if bound is not None:
        text += f" · upper bound {format_bytes(bound)} ({summary.get('peak_bound_source') or 'bound'})"
    return text


def peak_source_text(source: str | None) -> str:
    if not source:
        return ""
    if source in EXACT_SOURCES:
        return f"exact ({source.split(':', 1)[-1]})"
    return source


def exit_text(summary: dict[str, Any]) -> str:
    """How the session ended, in words: exit code, signal, still running, interrupted."""
    status = summary.get("status")
    if summary.get("signal"):
        import signal as _signal

        try:
            name = _signal.Signals(summary["signal"]).name
        except ValueError:
            name = f"signal {summary['signal']}"
        return f"killed by {name}"
    if summary.get("exit_code") is not None:
        return f"exit {summary['exit_code']}"
    if status == "running":
        return "running"
    return status or "-"


class SidePanel(QtWidgets.QWidget):
    phase_activated = QtCore.Signal(float, float)  # start, end of the phase the user picked

    FIELDS = (
        "Current",
        "Peak",
        "Peak source",
        "Tree peak",
        "Average",
        "Duration",
        "Samples",
        "Sample rate",
        "Exit status",
    )

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(200)  # the phase table's four columns with a short name; it folds away
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 4, 4)
        layout.setSpacing(6)

        self.state_label = QtWidgets.QLabel()
        self.state_label.setObjectName("stateBadge")
        layout.addWidget(self.state_label)

        form = QtWidgets.QFormLayout()
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(3)
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignLeft)
        self.values: dict[str, QtWidgets.QLabel] = {}
        self.labels: dict[str, QtWidgets.QLabel] = {}
        for name in self.FIELDS:
            value = QtWidgets.QLabel("-")
            value.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            label = QtWidgets.QLabel(name)
            label.setStyleSheet(f"color: {theme.current().muted};")
            form.addRow(label, value)
            self.values[name] = value
            self.labels[name] = label
        big = self.values["Peak"].font()
        big.setBold(True)
        self.values["Peak"].setFont(big)
        self.values["Current"].setFont(big)
        layout.addLayout(form)

        layout.addWidget(self._heading("Phases"))
        self.phases = QtWidgets.QTableWidget(0, 4)
        self.phases.setHorizontalHeaderLabels(["Phase", "Time", "Own peak", "Growth"])
        self.phases.verticalHeader().hide()
        self.phases.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.phases.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.phases.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.phases.setWordWrap(False)
        header = self.phases.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.phases.verticalHeader().setDefaultSectionSize(22)
        self.phases.setIconSize(QtCore.QSize(10, 10))  # the swatch is 10 px: no room lost to a 16 px icon
        self.phases.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)  # "extract…tables" keeps both ends
        self.phases.cellClicked.connect(self._phase_clicked)
        self.phases.currentCellChanged.connect(lambda row, *_: self._show_sites(row))
        self.phases.setToolTip("Click a phase to zoom the plot to it")
        self.no_phases = QtWidgets.QLabel(
            "No phases yet. A program announces them by writing\n"
            '{"event": "phase_start", "name": "parse"} lines to $MEMVIEW_FD.'
        )
        self.no_phases.setStyleSheet(f"color: {theme.current().muted};")
        self.no_phases.setWordWrap(True)
        layout.addWidget(self.no_phases)
        layout.addWidget(self.phases, 3)

        # what a phase(..., tracemalloc=True) grew: the selected phase's top allocation sites
        self.sites_heading = self._heading("Python heap")
        layout.addWidget(self.sites_heading)
        self.sites = QtWidgets.QTableWidget(0, 3)
        self.sites.setHorizontalHeaderLabels(["Site (file:line)", "Grown", "Blocks"])
        self.sites.verticalHeader().hide()
        self.sites.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sites.setWordWrap(False)
        self.sites.verticalHeader().setDefaultSectionSize(22)
        self.sites.setTextElideMode(QtCore.Qt.TextElideMode.ElideLeft)  # "…phase.py:20": the line stays
        sites_header = self.sites.horizontalHeader()
        sites_header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            sites_header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.sites.setToolTip(
            "Allocation sites whose Python heap grew most during the selected phase "
            "(tracemalloc snapshot difference: bytes still allocated at the phase's end)"
        )
        layout.addWidget(self.sites, 2)
        self._phase_rows: list[dict[str, Any]] = []
        self._sites_phase: int | None = None
        self._fitted_names: tuple[str, ...] = ()
        self._user_sized = False  # the user dragged the divider: the width is theirs
        self._watched_splitter: QtWidgets.QSplitter | None = None

        layout.addWidget(self._heading("Events"))
        self.events = QtWidgets.QListWidget()
        self.events.setWordWrap(True)
        self.events.setUniformItemSizes(False)
        layout.addWidget(self.events, 2)
        self.events.setToolTip("Warnings, errors, thresholds and captures of this session")
        self._phase_ranges: list[tuple[float, float | None]] = []
        self._placeholder: QtWidgets.QListWidgetItem | None = None
        self.clear_events()
        self.phases.hide()
        self.sites_heading.hide()
        self.sites.hide()

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        QtCore.QTimer.singleShot(0, self, self.fit_phase_names)  # names set while hidden get their room now

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        return QtCore.QSize(330, 500)  # room for phase names; it may shrink to 250, or fold away

    @staticmethod
    def _heading(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        font = label.font()
        font.setBold(True)
        label.setFont(font)
        label.setContentsMargins(0, 6, 0, 0)
        return label

    # -- figures ---------------------------------------------------------------------------------
    def set_figures(self, f: Figures) -> None:
        source = peak_source_text(f.peak_source)
        v = self.values
        v["Current"].setText(format_bytes(f.current))
        v["Peak"].setText(format_bytes(f.peak))
        v["Peak source"].setText(source or "-")
        v["Peak source"].setToolTip(
            "exact: the kernel's own high-water mark, not a sample"
            if f.peak_source in EXACT_SOURCES
            else "the largest sampled value"
        )
        v["Tree peak"].setText(f.tree_peak or "-")
        v["Tree peak"].setToolTip(
            "sampled floor: the largest sum of the processes' RSS read at one instant; "
            "upper bound: the largest sum of each process's exact maximum over one "
            "interval (a spike between samples is inside it)"
        )
        v["Tree peak"].setVisible(f.tree_peak is not None)
        self.labels["Tree peak"].setVisible(f.tree_peak is not None)
        v["Average"].setText(format_bytes(f.average))
        v["Duration"].setText(format_span(f.duration))
        v["Samples"].setText(f"{f.samples:,}")
        rate = f.samples / f.duration if f.duration and f.samples > 1 else None
        v["Sample rate"].setText(f"{rate:.1f} /s" if rate is not None else "-")
        v["Exit status"].setText(f.exit_text)
        th = theme.current(self.palette())
        colours = {"recording": th.bad, "starting": th.muted, "stopping": th.warn}
        colour = colours.get(f.state, th.neutral_badge)
        dot = "● " if f.state == "recording" else ""
        self.state_label.setText(f"<span style='color:{colour}; font-weight:600'>{dot}{f.state}</span>")

    # -- phases ----------------------------------------------------------------------------------
    def set_phases(self, rows: list[dict[str, Any]], now: float | None = None) -> None:
        """rows: dicts with name, depth, start_s, end_s, peak_rss_bytes, peak_source, growth_bytes."""
        table = self.phases
        self.no_phases.setVisible(not rows)
        table.setVisible(bool(rows))
        if table.rowCount() != len(rows):
            table.setRowCount(len(rows))
        self._phase_ranges = []
        for i, row in enumerate(rows):
            end = row.get("end_s")
            duration = (end if end is not None else (now or row["start_s"])) - row["start_s"]
            name_item = QtWidgets.QTableWidgetItem("    " * int(row.get("depth") or 0) + row["name"])
            name_item.setIcon(_swatch(row["name"]))
            tip = f"{row['name']}: from {format_clock(row['start_s'], 1)}" + (
                f" to {format_clock(end, 1)}" if end is not None else " (running)"
            )
            top = phase_sites(row)
            if top:
                tip += "\nPython heap grown (select the phase for the list):\n" + "\n".join(
                    f"  +{format_bytes(s['size_diff'])}  {site_text(s)}" for s in top[:3]
                )
            elif (row.get("data") or {}).get("tracemalloc_error"):
                tip += f"\nno Python heap sites: {row['data']['tracemalloc_error']}"
            name_item.setToolTip(tip)
            peak = format_bytes(row.get("peak_rss_bytes"))
            if row.get("peak_source") in EXACT_SOURCES:
                peak += " ✓"
            growth = row.get("growth_bytes")
            cells = [
                name_item,
                QtWidgets.QTableWidgetItem(format_span(duration) + ("" if end is not None else " …")),
                QtWidgets.QTableWidgetItem(peak),
                QtWidgets.QTableWidgetItem(
                    ("+" if growth and growth > 0 else "") + format_bytes(growth) if growth is not None else "-"
                ),
            ]
            cells[2].setToolTip(
                "exact (kernel high-water mark reset at the phase start)"
                if row.get("peak_source") in EXACT_SOURCES
                else "sampled maximum inside the phase"
            )
            for col, item in enumerate(cells):
                if col:
                    item.setTextAlignment(RIGHT)
                table.setItem(i, col, item)
            self._phase_ranges.append((row["start_s"], end if end is not None else now))
        names = tuple(str(r["name"]) for r in rows)
        if names != self._fitted_names:  # new names: make room for them (until the user drags the divider)
            self._fitted_names = names
            self._user_sized = False
            QtCore.QTimer.singleShot(0, self, self.fit_phase_names)
        self._phase_rows = list(rows)
        selected = self.phases.currentRow()
        self._show_sites(selected if selected >= 0 else self._sites_phase)

    def name_width_needed(self) -> int:
        """Pixels the Phase column needs to show every phase name whole (indent, swatch, padding)."""
        metrics = self.phases.fontMetrics()
        widths = [
            metrics.horizontalAdvance(self.phases.item(r, 0).text())
            for r in range(self.phases.rowCount())
            if self.phases.item(r, 0) is not None
        ]
        return (max(widths) if widths else 0) + self.phases.iconSize().width() + 20

    def site_width_needed(self) -> int:
        """Pixels the Site column needs to show the largest site's file:line whole (the others elide
        at the left, keeping their line; a long ``<frozen importlib…>`` must not squeeze the plot)."""
        item = self.sites.item(0, 0) if self.sites.rowCount() else None
        return self.sites.fontMetrics().horizontalAdvance(item.text()) + 16 if item is not None else 0

    def fit_phase_names(self) -> None:
        """Widen the panel (taking from the plot beside it, which keeps ``PLOT_KEEPS`` px) until the
        Phase column shows the longest name whole (and the Site column its top file:line); names still
        too long keep their full text in the tooltip. Runs when names change, when the panel is
        shown and when the window is resized; once the user drags the divider, their width stays."""
        splitter = self.parentWidget()
        while splitter is not None and not isinstance(splitter, QtWidgets.QSplitter):
            splitter = splitter.parentWidget()
        if splitter is None or self._user_sized or not self.isVisible() or not self.phases.isVisible():
            return
        if self._watched_splitter is not splitter:
            self._watched_splitter = splitter
            splitter.splitterMoved.connect(self._divider_dragged)  # emitted for the user's drags only
        short = self.name_width_needed() - self.phases.columnWidth(0)
        if self.sites.isVisible():
            short = max(short, self.site_width_needed() - self.sites.columnWidth(0))
        short = min(short, MAX_NAME_GROW)
        index = splitter.indexOf(self) if splitter.indexOf(self) >= 0 else splitter.count() - 1
        sizes = splitter.sizes()
        if short <= 0 or index < 1 or sizes[index] == 0:
            return
        give = min(short, sizes[index - 1] - PLOT_KEEPS)
        if give > 0:
            sizes[index - 1] -= give
            sizes[index] += give
            splitter.setSizes(sizes)

    def _divider_dragged(self, *_: object) -> None:
        self._user_sized = True

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if not self._user_sized:
            QtCore.QTimer.singleShot(0, self, self.fit_phase_names)  # the window shrank or grew: names first

    def _show_sites(self, row: int | None) -> None:
        """List the allocation sites the phase in ``row`` grew (hidden when it has none to say)."""
        phase = self._phase_rows[row] if row is not None and 0 <= row < len(self._phase_rows) else None
        data = (phase or {}).get("data") or {}
        top = phase_sites(phase or {})
        if not top and not data.get("tracemalloc_error"):
            self.sites_heading.hide()
            self.sites.hide()
            self._sites_phase = None
            return
        self._sites_phase = row
        assert phase is not None
        self.sites_heading.setText(f"Python heap grown in {phase['name']}")
        self.sites_heading.setToolTip(phase["name"])
        rows = top or [{"error": data["tracemalloc_error"]}]
        self.sites.setRowCount(len(rows))
        for i, s in enumerate(rows):
            if "error" in s:
                cells = [
                    QtWidgets.QTableWidgetItem("(no sites)"),
                    QtWidgets.QTableWidgetItem(s["error"]),
                    QtWidgets.QTableWidgetItem(""),
                ]
                cells[1].setToolTip(s["error"])
            else:
                cells = [
                    QtWidgets.QTableWidgetItem(site_text(s)),
                    QtWidgets.QTableWidgetItem("+" + format_bytes(s["size_diff"])),
                    QtWidgets.QTableWidgetItem(f"{int(s.get('count_diff') or 0):+,d}"),
                ]
                cells[0].setToolTip(f"{s.get('file')}:{s.get('line')}")
                cells[0].setData(QtCore.Qt.ItemDataRole.UserRole, f"{s.get('file')}:{s.get('line')}")
                cells[1].setData(QtCore.Qt.ItemDataRole.UserRole, int(s["size_diff"]))
                cells[1].setToolTip(
                    f"{int(s['size_diff']):,} bytes grown; {format_bytes(s.get('size'))} "
                    "allocated there at the phase's end"
                )
                for item in cells[1:]:
                    item.setTextAlignment(RIGHT)
            for col, item in enumerate(cells):
                self.sites.setItem(i, col, item)
        self.sites_heading.show()
        self.sites.show()
        QtCore.QTimer.singleShot(0, self, self.fit_phase_names)  # room for the file:line too

    def site_rows(self) -> list[tuple[str, int]]:
        """(full file:line, grown bytes) of the listed sites, as shown (tests and callers read it)."""
        out = []
        for r in range(self.sites.rowCount() if self.sites.isVisible() else 0):
            where = self.sites.item(r, 0).data(QtCore.Qt.ItemDataRole.UserRole)
            if where:
                out.append((str(where), int(self.sites.item(r, 1).data(QtCore.Qt.ItemDataRole.UserRole))))
        return out

    def _phase_clicked(self, row: int, _col: int) -> None:
        self._show_sites(row)
        if 0 <= row < len(self._phase_ranges):
            start, end = self._phase_ranges[row]
            self.phase_activated.emit(start, end if end is not None else start)

    # -- events ----------------------------------------------------------------------------------
    def add_events(self, events: list[tuple[float, str, str, str]]) -> None:
        """(t, kind, level, message) items; warnings and errors are coloured."""
        if events and self._placeholder is not None:
            self.events.takeItem(self.events.row(self._placeholder))
            self._placeholder = None
        for t, kind, level, message in events:
            item = QtWidgets.QListWidgetItem(f"{format_clock(t, 1)}  {message}")
            item.setToolTip(f"{kind} ({level})")
            if level == "error":
                item.setForeground(QtGui.QColor(theme.current(self.palette()).bad))
            elif level == "warning":
                item.setForeground(QtGui.QColor(theme.current(self.palette()).warn))
            self.events.addItem(item)
        if events:
            self.events.scrollToBottom()

    def clear_events(self) -> None:
        self.events.clear()
        self._placeholder = QtWidgets.QListWidgetItem("No warnings or events so far.")
        self._placeholder.setForeground(QtGui.QColor(theme.current().muted))
        self._placeholder.setFlags(QtCore.Qt.ItemFlag.NoItemFlags)
        self.events.addItem(self._placeholder)


RIGHT = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
#: pixels the plot beside the panel keeps when the panel widens for phase names
PLOT_KEEPS = 360  # the plot width the 1000 x 650 layout promises
#: the most the panel widens by for phase names (longer ones elide in the middle, whole in the tooltip)
MAX_NAME_GROW = 220


def phase_sites(phase: dict[str, Any]) -> list[dict[str, Any]]:
    """The tracemalloc top of a phase row (``data.tracemalloc_top``), largest growth first."""
    top = ((phase.get("data") or {}).get("tracemalloc_top")) or []
    return sorted((s for s in top if isinstance(s, dict) and s.get("size_diff")), key=lambda s: -int(s["size_diff"]))


def site_text(site: dict[str, Any]) -> str:
    """``name.py:12``: the file's last component (the full path is in the cell's tooltip)."""
    import os

    return f"{os.path.basename(str(site.get('file')))}:{site.get('line')}"


def _swatch(name: str) -> QtGui.QIcon:
    pix = QtGui.QPixmap(10, 10)
    pix.fill(colour_for(name))
    return QtGui.QIcon(pix)
