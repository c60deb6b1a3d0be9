"""The session library: every stored session, newest first, filterable as you type.

A thin model over the rows ``Store.sessions()`` returns (read by the database worker, handed in
with :meth:`LibraryPanel.set_rows`); it never queries anything itself. Rows keep their identity
(the session id) across refreshes so the selection and scroll position survive a refresh.

Each session is drawn as a compact two-line card (name, exit status and peak; kind, id, start,
duration, command and tags) because eight table columns do not fit a side panel without hiding
the command line, which is the one thing people recognise a run by; two lines fit about twice
as many sessions on a screen as the first three-line design.
"""

from __future__ import annotations

import datetime as dt
import signal
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from memview.model import EXACT_SOURCES
from memview.ui import theme
from memview.ui.plot_items import command_title, format_span
from memview.units import format_bytes

ID_ROLE = QtCore.Qt.ItemDataRole.UserRole
SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
ROW_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2
SORTS = [
    ("Newest first", "newest"),
    ("Oldest first", "oldest"),
    ("Largest peak", "peak"),
    ("Longest", "duration"),
    ("Name", "name"),
]
KIND_COLOURS = {"run": "#4e79a7", "attach": "#59a14f", "watch": "#f28e2b"}


def _started(ts: float | None) -> str:
    if not ts:
        return "-"
    when = dt.datetime.fromtimestamp(ts)
    today = dt.date.today()
    if when.date() == today:
        return when.strftime("today %H:%M")
    if when.date() == today - dt.timedelta(days=1):
        return when.strftime("yesterday %H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def exit_cell(row: dict[str, Any], live_ids: set[int]) -> tuple[str, str]:
    """How a session ended, and its tone: "good", "bad" or "neutral"."""
    if row["id"] in live_ids:
        return "● recording", "bad"
    if row.get("signal"):
        try:
            return signal.Signals(row["signal"]).name, "bad"
        except ValueError:
            return f"signal {row['signal']}", "bad"
    if row.get("exit_code") is not None:
        return f"exit {row['exit_code']}", "good" if row["exit_code"] == 0 else "bad"
    status = row.get("status") or "-"
    if status == "interrupted":
        return status, "bad"
    return status, "good" if status == "completed" else "neutral"


#: the name's share of a card's first line before the exit status gives way (a narrow library)
NAME_KEEPS = 80


def narrow_exit_label(label: str, tone: str, room: int, label_w: int, name_w: int) -> str:
    """The exit cell as it fits beside the name: whole, or on a narrow card (the library at its
    least width beside a recording) "●" for a recording, "✗" for a failure, nothing for a success,
    so the name keeps ``NAME_KEEPS`` px instead of being elided to "…" behind the status."""
    if room - label_w - 10 >= min(NAME_KEEPS, name_w):
        return label
    if label.startswith("●"):
        return "●"
    return "✗" if tone == "bad" else ""


def display_name(row: dict[str, Any]) -> str:
    """The session's name, else a short form of what it recorded ("python extract.py")."""
    if row.get("name"):
        return str(row["name"])
    if row.get("kind") == "run" and row.get("command"):
        return command_title(row["command"], f"#{row['id']}")
    return (
        command_title(row.get("target"), f"#{row['id']}")
        if row.get("kind") == "attach"
        else (row.get("target") or f"#{row['id']}")
    )


class SessionsModel(QtCore.QAbstractTableModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []
        self.live_ids: set[int] = set()
        self.sort_mode = "newest"
        self._haystack: list[str] = []

    def rowCount(self, parent: QtCore.QModelIndex | QtCore.QPersistentModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QtCore.QModelIndex | QtCore.QPersistentModelIndex = QtCore.QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else 1

    def set_rows(self, rows: list[dict[str, Any]], live_ids: set[int]) -> None:
        if rows == self.rows and live_ids == self.live_ids:
            return
        self.beginResetModel()
        self.rows = rows
        self.live_ids = set(live_ids)
        self._haystack = [self._text(r) for r in rows]
        self.endResetModel()

    @staticmethod
    def _text(r: dict[str, Any]) -> str:
        tags = " ".join(r.get("tags") or [])
        return " ".join(
            str(x)
            for x in (
                display_name(r),
                r.get("kind"),
                r.get("target"),
                tags,
                r.get("notes"),
                r.get("status"),
                f"#{r['id']}",
            )
            if x
        ).lower()

    def matches(self, row: int, words: list[str]) -> bool:
        text = self._haystack[row]
        return all(w in text for w in words)

    def data(self, index: QtCore.QModelIndex | QtCore.QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        if role == ID_ROLE:
            return r["id"]
        if role == ROW_ROLE:
            return r
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return display_name(r)
        if role == SORT_ROLE:
            return self._sort_key(r)
        if role == QtCore.Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(r)
        return None

    def _sort_key(self, r: dict[str, Any]) -> Any:
        mode = self.sort_mode
        if mode in ("newest", "oldest"):
            return r.get("id") or 0
        if mode == "peak":
            return float(r.get("peak_rss_bytes") or 0)
        if mode == "duration":
            return float(r.get("wall_s") or 0)
        return display_name(r).lower()

    @staticmethod
    def _tooltip(r: dict[str, Any]) -> str:
        lines = [f"session #{r['id']} · {r.get('kind')} · {r.get('status')}", r.get("target") or ""]
        if r.get("peak_rss_bytes"):
            lines.append(f"peak {format_bytes(r['peak_rss_bytes'])} [{r.get('peak_source')}]")
        if r.get("notes"):
            lines.append(f"notes: {r['notes']}")
        return "\n".join(x for x in lines if x)


class _Filter(QtCore.QSortFilterProxyModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.words: list[str] = []
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_text(self, text: str) -> None:
        self.words = text.lower().split()
        self.invalidate()

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:  # noqa: N802
        model = self.sourceModel()
        return not self.words or model.matches(row, self.words)  # type: ignore[attr-defined]


class SessionCard(QtWidgets.QStyledItemDelegate):
    """Paints one session as a two-line card."""

    PAD = 5

    def sizeHint(self, option: QtWidgets.QStyleOptionViewItem, index: Any) -> QtCore.QSize:  # noqa: N802
        fm = option.fontMetrics  # type: ignore[attr-defined]
        return QtCore.QSize(200, 2 * fm.height() + 2 * self.PAD + 3)

    def paint(self, painter: QtGui.QPainter, option: QtWidgets.QStyleOptionViewItem, index: Any) -> None:
        r: dict[str, Any] = index.data(ROW_ROLE)
        model: SessionsModel = index.model().sourceModel()  # type: ignore[attr-defined]
        painter.save()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        rect = QtCore.QRect(option.rect)  # type: ignore[attr-defined]
        selected = bool(option.state & QtWidgets.QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        palette = option.palette  # type: ignore[attr-defined]
        th = theme.current(palette)
        if selected:
            painter.fillRect(rect, palette.highlight())
        elif index.row() % 2:
            painter.fillRect(rect, palette.alternateBase())
        else:
            painter.fillRect(rect, palette.base())
        painter.setPen(palette.mid().color())
        painter.drawLine(rect.bottomLeft(), rect.bottomRight())
        text = palette.highlightedText().color() if selected else palette.text().color()
        grey = text if selected else QtGui.QColor(th.muted)
        fm = option.fontMetrics  # type: ignore[attr-defined]
        lh = fm.height()
        x0, x1 = rect.left() + self.PAD + 2, rect.right() - self.PAD
        y = rect.top() + self.PAD

        # line 1: name ........ exit · peak
        bold = QtGui.QFont(option.font)  # type: ignore[attr-defined]
        bold.setBold(True)
        bfm = QtGui.QFontMetrics(bold)
        peak = r.get("peak_rss_bytes")
        peak_text = format_bytes(peak) if peak else "-"
        if peak and r.get("peak_source") in EXACT_SOURCES:
            peak_text += " ✓"
        painter.setFont(bold)
        peak_w = bfm.horizontalAdvance(peak_text)
        painter.setPen(text)
        painter.drawText(QtCore.QRect(x1 - peak_w, y, peak_w, lh), int(QtCore.Qt.AlignmentFlag.AlignRight), peak_text)
        exit_label, tone = exit_cell(r, model.live_ids)
        exit_label = narrow_exit_label(
            exit_label,
            tone,
            x1 - peak_w - 10 - x0,
            fm.horizontalAdvance(exit_label),
            bfm.horizontalAdvance(display_name(r)),
        )
        painter.setFont(option.font)  # type: ignore[attr-defined]
        exit_w = fm.horizontalAdvance(exit_label)
        ex = x1 - peak_w - (10 + exit_w if exit_label else 0)
        tones = {"bad": QtGui.QColor(th.bad), "good": QtGui.QColor(th.good), "neutral": grey}
        painter.setPen(text if selected else tones[tone])
        painter.drawText(QtCore.QRect(ex, y, exit_w, lh), 0, exit_label)
        painter.setFont(bold)
        painter.setPen(text)
        name = bfm.elidedText(display_name(r), QtCore.Qt.TextElideMode.ElideRight, max(20, ex - x0 - 10))
        painter.drawText(QtCore.QRect(x0, y, max(20, ex - x0 - 8), lh), 0, name)

        # line 2: kind badge · #id · started · duration · command ........ tags
        y += lh + 3
        kind = r.get("kind") or "?"
        small = QtGui.QFont(option.font)  # type: ignore[attr-defined]
        small.setPointSizeF(max(7.0, small.pointSizeF() * 0.82))
        sfm = QtGui.QFontMetrics(small)
        badge_w = sfm.horizontalAdvance(kind) + 10
        badge = QtCore.QRectF(x0, y + 1, badge_w, lh - 2)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.setBrush(QtGui.QColor(KIND_COLOURS.get(kind, "#888888")))
        painter.drawRoundedRect(badge, 4, 4)
        painter.setFont(small)
        painter.setPen(QtGui.QColor("white"))
        painter.drawText(badge, int(QtCore.Qt.AlignmentFlag.AlignCenter), kind)
        tx = x1
        tags_left = x1
        for tag in reversed(r.get("tags") or []):
            w = sfm.horizontalAdvance(tag) + 10
            if tx - w < x0 + badge_w + 120:
                break
            chip = QtCore.QRectF(tx - w, y + 1, w, lh - 2)
            painter.setPen(QtGui.QColor("#9aa5b1"))
            painter.setBrush(palette.alternateBase().color() if not selected else QtCore.Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(chip, 6, 6)
            painter.setPen(text)
            painter.drawText(chip, int(QtCore.Qt.AlignmentFlag.AlignCenter), tag)
            tx -= w + 4
            tags_left = int(tx)
        painter.setFont(option.font)  # type: ignore[attr-defined]
        painter.setPen(grey)
        live = r["id"] in model.live_ids
        duration = "recording" if live else format_span(r.get("wall_s"))
        cmd_x = int(x0 + badge_w + 6)
        line = f"#{r['id']} · {_started(r.get('started_at'))} · {duration} · {r.get('target') or ''}"
        line = fm.elidedText(line, QtCore.Qt.TextElideMode.ElideRight, tags_left - cmd_x - 4)
        painter.drawText(QtCore.QRect(cmd_x, y, tags_left - cmd_x, lh), 0, line)
        painter.restore()


class LibraryPanel(QtWidgets.QWidget):
    open_requested = QtCore.Signal(int)
    selection_changed = QtCore.Signal()

    sort_changed = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SessionsModel(self)
        self.proxy = _Filter(self)
        self.proxy.setSourceModel(self.model)

        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter: name, command, tag, kind…  (Ctrl+F)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_changed)
        self.filter.installEventFilter(self)
        self.filter.returnPressed.connect(self._filter_entered)
        self.sort = QtWidgets.QComboBox()
        for label, mode in SORTS:
            self.sort.addItem(label, mode)
        self.sort.currentIndexChanged.connect(self._sort_changed)

        self.view = QtWidgets.QListView()
        self.view.setModel(self.proxy)
        self.view.setItemDelegate(SessionCard(self.view))
        self.view.setUniformItemSizes(True)
        self.view.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.ActionsContextMenu)
        self.view.setMouseTracking(True)
        self.view.doubleClicked.connect(self._activated)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self.selection_changed.emit())
        self.proxy.sort(0, QtCore.Qt.SortOrder.DescendingOrder)

        self.count = QtWidgets.QLabel()
        self.count.setStyleSheet(f"color: {theme.current().muted};")
        self.empty = QtWidgets.QLabel(
            "No sessions yet.\nRun a command, attach to a process or watch an endpoint:\neach recording appears here."
        )
        self.empty.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet(f"color: {theme.current().muted}; padding: 20px;")
        self.empty.setWordWrap(True)

        title = QtWidgets.QLabel("Sessions")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        title.setFont(font)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.count)
        second = QtWidgets.QHBoxLayout()
        second.addWidget(self.filter, 1)
        second.addWidget(self.sort)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 2, 6)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty, 1)
        self.empty.hide()

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        """Down leaves the filter for the list (first row selected): Enter then opens it."""
        if obj is self.filter and event.type() == QtCore.QEvent.Type.KeyPress:
            if event.key() in (QtCore.Qt.Key.Key_Down, QtCore.Qt.Key.Key_PageDown):  # type: ignore[attr-defined]
                self.view.setFocus()
                if not self.selected_ids() and self.proxy.rowCount():
                    first = self.proxy.index(0, 0)
                    self.view.selectionModel().setCurrentIndex(
                        first, QtCore.QItemSelectionModel.SelectionFlag.ClearAndSelect
                    )
                return True
        return super().eventFilter(obj, event)

    def _filter_entered(self) -> None:
        """Enter in the filter opens the one session it leaves (or the selected one)."""
        if self.proxy.rowCount() == 1:
            self.open_requested.emit(int(self.proxy.index(0, 0).data(ID_ROLE)))
        elif len(self.selected_ids()) == 1:
            self.open_requested.emit(self.selected_ids()[0])

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _update_count(self) -> None:
        total = len(self.model.rows)
        shown = self.proxy.rowCount()
        noun = "session" if total == 1 else "sessions"
        self.count.setText(f"{total} {noun}" if shown == total else f"{shown} of {total} {noun}")

    def set_sort(self, mode: str | None) -> None:
        """Sort by ``mode`` (one of SORTS), e.g. the one remembered from the last run."""
        i = self.sort.findData(mode)
        if i >= 0:
            self.sort.setCurrentIndex(i)

    def _sort_changed(self, _index: int) -> None:
        mode = self.sort.currentData()
        self.sort_changed.emit(mode)
        self.model.sort_mode = mode
        order = QtCore.Qt.SortOrder
        order = order.AscendingOrder if mode in ("oldest", "name") else order.DescendingOrder
        self.proxy.invalidate()
        self.proxy.sort(0, order)

    def set_rows(self, rows: list[dict[str, Any]], live_ids: set[int] | None = None) -> None:
        selected = set(self.selected_ids())
        current = self.current_id()
        scroll = self.view.verticalScrollBar().value()
        self.model.set_rows(rows, live_ids or set())
        if selected:
            sel = self.view.selectionModel()
            flag = QtCore.QItemSelectionModel.SelectionFlag
            for i in range(self.proxy.rowCount()):
                idx = self.proxy.index(i, 0)
                if idx.data(ID_ROLE) in selected:
                    sel.select(idx, flag.Select)
                    if idx.data(ID_ROLE) == current:
                        sel.setCurrentIndex(idx, flag.NoUpdate)
        self.view.verticalScrollBar().setValue(scroll)
        n = len(rows)
        self._update_count()
        self.empty.setVisible(n == 0)
        self.view.setVisible(n > 0)

    def visible_ids(self) -> list[int]:
        return [self.proxy.index(i, 0).data(ID_ROLE) for i in range(self.proxy.rowCount())]

    def selected_ids(self) -> list[int]:
        sel = self.view.selectionModel()
        rows = sel.selectedIndexes() if sel is not None else []
        return [idx.data(ID_ROLE) for idx in sorted(rows, key=lambda i: i.row())]

    def current_id(self) -> int | None:
        ids = self.selected_ids()
        return ids[0] if ids else None

    def row_for(self, sid: int) -> dict[str, Any] | None:
        return next((r for r in self.model.rows if r["id"] == sid), None)

    def select(self, sid: int, add: bool = False) -> bool:
        flag = QtCore.QItemSelectionModel.SelectionFlag
        for i in range(self.proxy.rowCount()):
            idx = self.proxy.index(i, 0)
            if idx.data(ID_ROLE) == sid:
                mode = flag.Select if add else flag.ClearAndSelect
                self.view.selectionModel().select(idx, mode)
                self.view.selectionModel().setCurrentIndex(idx, flag.NoUpdate)
                self.view.scrollTo(idx)
                return True
        return False

    def _activated(self, index: QtCore.QModelIndex) -> None:
        sid = index.data(ID_ROLE)
        if sid is not None:
            self.open_requested.emit(int(sid))
