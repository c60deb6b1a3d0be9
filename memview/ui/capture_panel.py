"""A capture opened inside the session view: an icicle graph of its stacks and a table of its sites.

The panel shows what the capture's summary (``capture["data"]["summary"]``, built by the tool
modules in :mod:`memview.captures`) names: for memray and heaptrack the allocation sites live at
the high-water mark and what grew or leaked, for a node heap snapshot the constructors by
retained size and the growth since the previous snapshot, for py-spy where the samples fell.

- The **icicle graph** (root on top, width ∝ bytes or samples) zooms into a box on click (click the
  top box to step back out, or Reset) and highlights the frames a search matches.
- The **table** lists one of the summary's tables (peak, growth, leaked, …), sortable by any
  column (sizes sort as numbers) and filtered by the text typed above it.
- **Open in …** buttons run the tool made for the file's kind (:mod:`memview.captures.openers`),
  never the desktop's MIME guess.
"""

from __future__ import annotations

import zlib
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from memview.captures.openers import Opener, openers
from memview.captures.sites import DURING_CAPTURE, summary_of, where
from memview.units import format_bytes

ROW = 18


class _Node:
    __slots__ = ("children", "name", "parent", "value")

    def __init__(self, name: str, parent: _Node | None = None) -> None:
        self.name = name
        self.parent = parent
        self.value = 0
        self.children: dict[str, _Node] = {}


def build_tree(stacks: list[list[Any]]) -> _Node:
    """Stacks (frames root first, weight) merged into one tree under ``all``."""
    root = _Node("all")
    for frames, weight in stacks:
        node = root
        node.value += int(weight)
        for name in frames:
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(name, node)
            child.value += int(weight)
            node = child
    return root


def short_path(text: str) -> str:
    """``/long/path/file.py:12`` → ``file.py:12``; frame labels ``f (/a/b.py:3)`` → ``f (b.py:3)``."""
    if "(" in text and text.endswith(")"):
        name, _, inner = text[:-1].partition(" (")
        return f"{name} ({inner.rsplit('/', 1)[-1]})" if inner else text
    return text.rsplit("/", 1)[-1]


def _colour(name: str) -> QtGui.QColor:
    h = zlib.crc32(name.encode())
    return QtGui.QColor(205 + h % 50, (h >> 8) % 130 + 80, (h >> 16) % 55)


class FlameGraph(QtWidgets.QWidget):
    """An icicle graph: the zoomed node on the top row, its callees below, widths by weight."""

    zoomed = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.root = _Node("all")
        self.focus = self.root
        self.unit = "bytes"
        self.search = ""
        self.drawn: list[tuple[QtCore.QRectF, _Node]] = []  # the boxes of the last paint, for hit tests
        self.paints = 0
        self.setMouseTracking(True)
        self.setMinimumHeight(120)

    # -- state -----------------------------------------------------------------------------------
    def set_stacks(self, stacks: list[list[Any]], unit: str = "bytes") -> None:
        self.root = build_tree(stacks)
        self.focus = self.root
        self.unit = unit
        depth = self._depth(self.root)
        self.setMinimumHeight(max(120, min(depth, 40) * ROW + 4))
        self.update()

    def _depth(self, node: _Node) -> int:
        return 1 + max((self._depth(c) for c in node.children.values()), default=0)

    def zoom(self, node: _Node) -> None:
        self.focus = node
        self.zoomed.emit(node.name)
        self.update()

    def zoom_to(self, name: str) -> bool:
        """Zoom into the heaviest box called ``name`` (tests, the table's double click)."""
        best: _Node | None = None
        todo = [self.root]
        while todo:
            node = todo.pop()
            if node.name == name and (best is None or node.value > best.value):
                best = node
            todo.extend(node.children.values())
        if best is not None:
            self.zoom(best)
        return best is not None

    def reset(self) -> None:
        self.zoom(self.root)

    def set_search(self, text: str) -> int:
        """Highlight frames containing ``text``; returns how many boxes match (drawn or not)."""
        self.search = text.strip().lower()
        self.update()
        return len(self.matches())

    def matches(self) -> list[_Node]:
        if not self.search:
            return []
        out, todo = [], [self.focus]
        while todo:
            node = todo.pop()
            if self.search in node.name.lower():
                out.append(node)
            todo.extend(node.children.values())
        return out

    def label(self, node: _Node) -> str:
        total = self.focus.value or 1
        amount = format_bytes(node.value) if self.unit == "bytes" else f"{node.value} {self.unit}"
        return f"{node.name} — {amount} ({100.0 * node.value / total:.1f}%)"

    # -- drawing ---------------------------------------------------------------------------------
    def paintEvent(self, _event: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor("#fdfdf6"))
        self.drawn = []
        self.paints += 1
        if not self.focus.value:
            painter.setPen(QtGui.QColor("#888"))
            painter.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, "no stacks in this capture")
            painter.end()
            return
        scale = (self.width() - 2) / self.focus.value
        metrics = painter.fontMetrics()

        def draw(node: _Node, x: float, level: int) -> None:
            w = node.value * scale
            y = 1 + level * ROW
            if w < 1.0 or y > self.height():
                return
            rect = QtCore.QRectF(x, y, w, ROW - 1)
            colour = _colour(node.name)
            if self.search:
                colour = QtGui.QColor("#e040fb") if self.search in node.name.lower() else colour.lighter(150)
            painter.fillRect(rect, colour)
            if w > 30:
                text = metrics.elidedText(short_path(node.name), QtCore.Qt.TextElideMode.ElideRight, int(w - 6))
                painter.setPen(QtGui.QColor("#000"))
                painter.drawText(rect.adjusted(3, 0, -3, 0), QtCore.Qt.AlignmentFlag.AlignVCenter, text)
            self.drawn.append((rect, node))
            cx = x
            for child in sorted(node.children.values(), key=lambda c: -c.value):
                draw(child, cx, level + 1)
                cx += child.value * scale

        draw(self.focus, 1.0, 0)
        painter.end()

    def node_at(self, pos: QtCore.QPointF) -> _Node | None:
        for rect, node in self.drawn:
            if rect.contains(pos):
                return node
        return None

    def mouseMoveEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 - Qt's name
        node = self.node_at(event.position())
        self.setToolTip(self.label(node) if node else "")

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 - Qt's name
        node = self.node_at(event.position())
        if node is None:
            return
        if node is self.focus and node.parent is not None:
            self.zoom(node.parent)  # the top box steps back out
        else:
            self.zoom(node)


class _SizeItem(QtWidgets.QTableWidgetItem):
    """A cell shown formatted and sorted by its number."""

    def __init__(self, value: int, text: str) -> None:
        super().__init__(text)
        self.setData(QtCore.Qt.ItemDataRole.UserRole, value)
        self.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QtWidgets.QTableWidgetItem) -> bool:
        mine = self.data(QtCore.Qt.ItemDataRole.UserRole)
        theirs = other.data(QtCore.Qt.ItemDataRole.UserRole)
        if isinstance(mine, int) and isinstance(theirs, int):
            return mine < theirs
        return super().__lt__(other)


class SitesTable(QtWidgets.QWidget):
    """One of the summary's tables: a choice of table, a filter, and the sortable rows."""

    COLUMNS = ("site", "file:line", "size", "count")

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.unit = "bytes"
        self.choice = QtWidgets.QComboBox()
        self.choice.setToolTip("Which list of sites to show")
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter sites (function or file)")
        self.filter.setClearButtonEnabled(True)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setWordWrap(False)
        self.table.setMinimumWidth(420)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.choice)
        top.addWidget(self.filter, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.choice.currentTextChanged.connect(self.show_table)
        self.filter.textChanged.connect(self.apply_filter)

    def set_tables(self, tables: dict[str, list[dict[str, Any]]], headline: str, unit: str) -> None:
        self.tables = tables
        self.unit = unit
        self.table.setHorizontalHeaderLabels(["site", "file:line", "samples" if unit == "samples" else "size", "count"])
        self.choice.blockSignals(True)
        self.choice.clear()
        self.choice.addItems(list(tables))
        self.choice.setCurrentText(headline if headline in tables else next(iter(tables), ""))
        self.choice.blockSignals(False)
        self.show_table(self.choice.currentText())

    def show_table(self, name: str) -> None:
        rows = self.tables.get(name) or []
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for i, site in enumerate(rows):
            size = int(site.get("bytes") or 0)
            text = str(size) if self.unit == "samples" else format_bytes(size)
            self.table.setItem(i, 0, QtWidgets.QTableWidgetItem(str(site.get("function"))))
            full = where(site) if site.get("file") else ""
            cell = QtWidgets.QTableWidgetItem(short_path(full))
            cell.setToolTip(full)
            cell.setData(QtCore.Qt.ItemDataRole.UserRole + 1, full)  # the filter matches the full path
            self.table.setItem(i, 1, cell)
            self.table.setItem(i, 2, _SizeItem(size, text))
            self.table.setItem(i, 3, _SizeItem(int(site.get("count") or 0), str(site.get("count") or 0)))
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(2, QtCore.Qt.SortOrder.DescendingOrder)
        self.apply_filter(self.filter.text())

    def apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for row in range(self.table.rowCount()):
            cells = [
                self.table.item(row, 0).text().lower(),
                str(self.table.item(row, 1).data(QtCore.Qt.ItemDataRole.UserRole + 1) or "").lower(),
            ]
            self.table.setRowHidden(row, bool(needle) and not any(needle in c for c in cells))

    def visible_rows(self) -> list[list[str]]:
        """The rows the user sees, top to bottom, with the full file:line (its tooltip)."""
        return [
            [
                self.table.item(r, 0).text(),
                self.table.item(r, 1).toolTip(),
                self.table.item(r, 2).text(),
                self.table.item(r, 3).text(),
            ]
            for r in range(self.table.rowCount())
            if not self.table.isRowHidden(r)
        ]


class CapturePanel(QtWidgets.QWidget):
    """One capture: its header, the icicle graph with search, the sites table, the outside tools."""

    closed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.capture: dict[str, Any] = {}
        self.title = QtWidgets.QLabel()
        self.title.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("Search frames")
        self.search.setClearButtonEnabled(True)
        self.search_count = QtWidgets.QLabel()
        self.reset_button = QtWidgets.QToolButton()
        self.reset_button.setText("Reset zoom")
        self.close_button = QtWidgets.QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Close the capture panel")
        self.open_bar = QtWidgets.QHBoxLayout()
        self.open_buttons: list[QtWidgets.QPushButton] = []
        self.flame = FlameGraph()
        self.sites = SitesTable()
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #666;")

        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addLayout(self.open_bar)
        head.addWidget(self.close_button)
        tools = QtWidgets.QHBoxLayout()
        tools.addWidget(self.search, 1)
        tools.addWidget(self.search_count)
        tools.addWidget(self.reset_button)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.flame)
        flame_box = QtWidgets.QWidget()
        fv = QtWidgets.QVBoxLayout(flame_box)
        fv.setContentsMargins(0, 0, 0, 0)
        fv.addLayout(tools)
        fv.addWidget(scroll, 1)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        split.addWidget(flame_box)
        split.addWidget(self.sites)
        split.setSizes([560, 460])
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(head)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

        self.search.textChanged.connect(self._search)
        self.reset_button.clicked.connect(self.flame.reset)
        self.close_button.clicked.connect(self._close)

    def show_capture(self, capture: dict[str, Any]) -> None:
        """Draw and list ``capture`` (a captures row or a live capture's dict)."""
        self.capture = capture
        data = capture.get("data") or {}
        summary = summary_of(capture) or {}
        window = ""
        if isinstance(capture.get("started_s"), (int, float)):
            end = capture.get("ended_s")
            window = (
                f" · {capture['started_s']:.2f}s–{end:.2f}s"
                if isinstance(end, (int, float))
                else f" · from {capture['started_s']:.2f}s"
            )
        flag = (
            " · <span style='color:#c0392b'>the capture distorts the figures of this window</span>"
            if data.get("distorts") or summary.get("kind") in ("memray", "heaptrack", "node")
            else ""
        )
        self.title.setText(
            f"<b>{capture.get('tool')}</b> of PID {capture.get('pid')} · {capture.get('status')} · "
            f"{capture.get('trigger') or ''}{window}{flag}"
        )
        unit = summary.get("unit") or "bytes"
        self.flame.set_stacks(summary.get("stacks") or [], unit)
        self.sites.set_tables(summary.get("tables") or {}, summary.get("headline") or "", unit)
        notes = list(summary.get("notes") or []) + list(data.get("notes") or [])
        if not summary:
            notes.insert(0, "no summary for this capture (" + (capture.get("status") or "?") + ")")
        if capture.get("path"):
            notes.append(f"file: {capture['path']}")
        self.status.setText(" · ".join(notes))
        self._set_openers()
        self.search.clear()
        self.show()

    def _set_openers(self) -> None:
        for b in self.open_buttons:
            self.open_bar.removeWidget(b)
            b.deleteLater()
        self.open_buttons = []
        files = [f.get("path") for f in (self.capture.get("data") or {}).get("files") or [] if f.get("path")]
        if not files and self.capture.get("path"):
            files = [self.capture["path"]]
        seen = set()
        for path in files:
            for opener in openers(path):
                if opener.label in seen:
                    continue
                seen.add(opener.label)
                button = QtWidgets.QPushButton(opener.label)
                button.setToolTip(opener.reason or " ".join(opener.argv or []))
                button.setEnabled(opener.argv is not None or opener.url is not None)
                button.clicked.connect(lambda _=False, o=opener: self.run_opener(o))
                self.open_bar.insertWidget(0, button)
                self.open_buttons.append(button)

    def run_opener(self, opener: Opener) -> bool:
        """Start the outside tool (no shell, detached); the desktop opens a URL or a produced file."""
        if opener.argv:
            if opener.produces:
                proc = QtCore.QProcess(self)
                proc.start(opener.argv[0], opener.argv[1:])
                ok = proc.waitForFinished(120_000) and proc.exitCode() == 0
                if ok:
                    QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(opener.produces))
                self.status.setText(f"{opener.label}: {'opened ' + opener.produces if ok else 'failed'}")
                return ok
            ok, _pid = QtCore.QProcess.startDetached(opener.argv[0], opener.argv[1:])
            if opener.reason:
                self.status.setText(opener.reason)
            return bool(ok)
        if opener.url:
            if opener.reason:
                self.status.setText(opener.reason)
            return bool(QtGui.QDesktopServices.openUrl(QtCore.QUrl(opener.url)))
        self.status.setText(opener.reason)
        return False

    def _search(self, text: str) -> None:
        n = self.flame.set_search(text)
        self.search_count.setText(f"{n} match{'es' if n != 1 else ''}" if text.strip() else "")

    def _close(self) -> None:
        self.hide()
        self.closed.emit()


def phase_flag_text(phase: dict[str, Any]) -> str:
    """ "(during a capture)" for a phase a capture distorted, else ""."""
    return " (during a capture)" if DURING_CAPTURE in (phase.get("flags") or []) else ""


__all__ = ["CapturePanel", "FlameGraph", "SitesTable", "build_tree", "phase_flag_text"]
