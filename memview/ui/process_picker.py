"""Attach to process…: a task-manager-like picker, largest RSS first, refreshed live.

Listing every process costs tens of milliseconds (one /proc read per process and field), so it
runs on a worker thread that hands a snapshot to the UI thread by signal; the UI thread only
merges the snapshot into the model row by row, so the selection and the scroll position stay
put while the numbers move.
"""

from __future__ import annotations

import getpass
import os
import threading
from dataclasses import dataclass
from typing import Any

import psutil
from PySide6 import QtCore, QtGui, QtWidgets

from memview.ui import theme
from memview.ui.dialogs import FormDialog, InputError, capture_box, check_threshold, format_interval, parse_interval
from memview.ui.live_session import AttachSpec
from memview.units import format_bytes

REFRESH_S = 1.5
COLUMNS = ["PID", "Name", "User", "RSS", "Command line"]
SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
PID_ROLE = QtCore.Qt.ItemDataRole.UserRole


@dataclass(slots=True)
class ProcRow:
    pid: int
    create_time: float
    name: str
    user: str
    rss: int | None  # None: access denied
    cmdline: str

    @property
    def key(self) -> tuple[int, float]:
        return (self.pid, self.create_time)


def list_processes() -> list[ProcRow]:
    """A snapshot of the machine's processes (not memview itself, not zombies)."""
    me = os.getpid()
    rows = []
    for p in psutil.process_iter(["pid", "name", "username", "memory_info", "cmdline", "create_time", "status"]):
        info = p.info
        if info["pid"] in (me, 0) or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        mem = info.get("memory_info")
        cmd = info.get("cmdline") or []
        rows.append(
            ProcRow(
                info["pid"],
                info.get("create_time") or 0.0,
                info.get("name") or "?",
                info.get("username") or "?",
                mem.rss if mem is not None else None,
                " ".join(cmd) if cmd else f"[{info.get('name') or '?'}]",
            )
        )
    return rows


class ProcessLister(QtCore.QObject):
    """Lists processes every REFRESH_S seconds on its own thread until stopped.

    Deliberately without a Qt parent: the dialog that shows the list may be deleted while a
    listing is under way, and a lister deleted with it would be emitted into after its death.
    Its thread holds the Python object until it ends; a check-and-emit under a lock, and a stop
    under the same lock, mean no emission starts after :meth:`stop` returns.
    """

    listed = QtCore.Signal(list)

    def __init__(self, parent: QtCore.QObject | None = None, interval: float = REFRESH_S) -> None:
        super().__init__(parent)
        self.interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="memview-ps", daemon=True)
        self.rounds = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rows = list_processes()
            except Exception:  # psutil hiccups (a /proc race) must not kill the picker
                rows = None
            with self._lock:
                if rows is not None and not self._stop.is_set():
                    self.rounds += 1
                    self.listed.emit(rows)
            self._stop.wait(self.interval)


class ProcessModel(QtCore.QAbstractTableModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ProcRow] = []
        self.me = getpass.getuser()

    def rowCount(self, parent: Any = QtCore.QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Any = QtCore.QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: QtCore.Qt.Orientation, role: int = 0) -> Any:  # noqa: N802
        if orientation == QtCore.Qt.Orientation.Horizontal and role == QtCore.Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Any, role: int = 0) -> Any:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return [str(r.pid), r.name, r.user, format_bytes(r.rss) if r.rss is not None else "no access", r.cmdline][
                col
            ]
        if role == SORT_ROLE:
            # RSS as a float: PySide6 hands a Python int of 2 GiB or more to Qt as a type the proxy's
            # lessThan does not order numerically, so a 3 GiB process sorted below "no access"
            rss = float(r.rss) if r.rss is not None else -1.0
            return [r.pid, r.name.lower(), r.user, rss, r.cmdline.lower()][col]
        if role == PID_ROLE:
            return r.pid
        if role == QtCore.Qt.ItemDataRole.ToolTipRole and col == 4:
            return r.cmdline
        if role == QtCore.Qt.ItemDataRole.ForegroundRole and (r.rss is None or r.user != self.me):
            return QtGui.QColor(theme.current().muted)
        if role == QtCore.Qt.ItemDataRole.TextAlignmentRole and col in (0, 3):
            return int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
        return None

    def merge(self, rows: list[ProcRow]) -> None:
        """Apply a new snapshot in place: remove gone rows, update the rest, append new ones."""
        new = {r.key: r for r in rows}
        for i in range(len(self.rows) - 1, -1, -1):
            if self.rows[i].key not in new:
                self.beginRemoveRows(QtCore.QModelIndex(), i, i)
                del self.rows[i]
                self.endRemoveRows()
        known = {r.key for r in self.rows}
        for i, r in enumerate(self.rows):
            self.rows[i] = new[r.key]
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))
        added = [r for r in rows if r.key not in known]
        if added:
            self.beginInsertRows(QtCore.QModelIndex(), len(self.rows), len(self.rows) + len(added) - 1)
            self.rows.extend(added)
            self.endInsertRows()


class _Filter(QtCore.QSortFilterProxyModel):
    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.words: list[str] = []
        self.mine_only = False
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def _refilter(self) -> None:
        # Qt 6.10 replaced invalidateFilter() with begin/endFilterChange(); keep both working
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()
            self.endFilterChange()
        else:
            self.invalidateFilter()

    def set_text(self, text: str) -> None:
        self.words = text.lower().split()
        self._refilter()

    def set_mine_only(self, on: bool) -> None:
        self.mine_only = on
        self._refilter()

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:  # noqa: N802
        model: ProcessModel = self.sourceModel()  # type: ignore[assignment]
        r = model.rows[row]
        if self.mine_only and r.user != model.me:
            return False
        if not self.words:
            return True
        text = f"{r.pid} {r.name} {r.user} {r.cmdline}".lower()
        return all(w in text for w in self.words)


class ProcessPicker(FormDialog):
    """The Attach dialog: pick a process, then interval/threshold/capture like Run."""

    def __init__(
        self, parent: QtWidgets.QWidget | None = None, interval: float = 0.05, refresh_s: float = REFRESH_S
    ) -> None:
        super().__init__("Attach to process", "Attach", parent)
        self.setMinimumSize(860, 560)
        self.model = ProcessModel(self)
        self.proxy = _Filter(self)
        self.proxy.setSourceModel(self.model)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter by name, command line, user or PID")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_changed)
        self.filter.returnPressed.connect(self._enter)
        self.filter.installEventFilter(self)
        self.mine = QtWidgets.QCheckBox("Only my processes")
        self.mine.toggled.connect(self._mine_toggled)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(3, QtCore.Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for col, width in enumerate((70, 150, 90, 90)):
            self.table.setColumnWidth(col, width)
        self.table.doubleClicked.connect(lambda *_: self.accept())
        self.table.activated.connect(lambda *_: self._enter())  # Enter on a row
        self.table.installEventFilter(self)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.status = QtWidgets.QLabel("Listing processes…")
        self.status.setStyleSheet(f"color: {theme.current().muted};")

        self.interval = QtWidgets.QLineEdit(format_interval(interval))
        self.name = QtWidgets.QLineEdit()
        self.name.setPlaceholderText("optional")
        self.children = QtWidgets.QCheckBox("Record its child processes too")
        self.children.setChecked(True)
        self.threshold = QtWidgets.QLineEdit()
        self.threshold.setPlaceholderText("e.g. 2GB, 80%, +100MB/s")
        self.capture = capture_box()

        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.mine)
        self.form.addRow(top)
        self.form.addRow(self.table)
        self.form.addRow(self.status)
        options = QtWidgets.QGridLayout()
        options.addWidget(QtWidgets.QLabel("Interval"), 0, 0)
        options.addWidget(self.interval, 0, 1)
        options.addWidget(QtWidgets.QLabel("Name"), 0, 2)
        options.addWidget(self.name, 0, 3)
        options.addWidget(QtWidgets.QLabel("Threshold"), 1, 0)
        options.addWidget(self.threshold, 1, 1)
        options.addWidget(QtWidgets.QLabel("Capture"), 1, 2)
        options.addWidget(self.capture, 1, 3)
        options.addWidget(self.children, 2, 1, 1, 3)
        options.setColumnStretch(1, 1)
        options.setColumnStretch(3, 2)
        self.form.addRow(options)
        self.ok_button.setEnabled(False)

        self.lister = ProcessLister(None, refresh_s)  # no parent: see ProcessLister
        self.lister.listed.connect(self._listed)
        self.lister.start()
        self.filter.setFocus()

    # -- keyboard: type, Down into the list, Enter attaches --------------------------------------------
    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        if event.type() == QtCore.QEvent.Type.KeyPress:
            key = event.key()  # type: ignore[attr-defined]
            keys = QtCore.Qt.Key
            if obj is self.filter and key in (keys.Key_Down, keys.Key_PageDown):
                self.table.setFocus()
                if self.selected_pid() is None and self.proxy.rowCount():
                    self.table.selectRow(0)
                return True
            if obj is self.table and key in (keys.Key_Return, keys.Key_Enter):
                self._enter()
                return True
            if obj is self.table and key == keys.Key_Up and self.table.currentIndex().row() <= 0:
                self.filter.setFocus()
                return True
        return super().eventFilter(obj, event)

    def _enter(self) -> None:
        """Enter attaches to the selected process (a single match is selected already)."""
        if self.selected_pid() is not None:
            self.accept()

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._after_filter()

    def _mine_toggled(self, on: bool) -> None:
        self.proxy.set_mine_only(on)
        self._after_filter()

    def _after_filter(self) -> None:
        shown = self.proxy.rowCount()
        if shown == 1:
            self.table.selectRow(0)  # the one match: Enter attaches
        elif self.selected_pid() is None and shown:
            self.table.clearSelection()
        self._update_status()

    def _update_status(self) -> None:
        total = len(self.model.rows)
        shown = self.proxy.rowCount()
        what = f"{total} processes" if shown == total else f"{shown} of {total} processes shown"
        self.status.setText(
            f"{what} · refreshed every {self.lister.interval:g}s · "
            "greyed: another user's or not readable (attaching needs the same user or root)"
        )

    def _listed(self, rows: list[ProcRow]) -> None:
        self.model.merge(rows)
        if self.proxy.rowCount() == 1 and self.selected_pid() is None:
            self.table.selectRow(0)
        self._update_status()

    def _selection_changed(self, *_: Any) -> None:
        self.ok_button.setEnabled(self.selected_pid() is not None)

    def selected_pid(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return int(rows[0].data(PID_ROLE)) if rows else None

    def visible_pids(self) -> list[int]:
        return [self.proxy.index(i, 0).data(PID_ROLE) for i in range(self.proxy.rowCount())]

    def build_spec(self) -> AttachSpec:
        pid = self.selected_pid()
        if pid is None:
            raise InputError("pick a process to attach to")
        name = next((r.name for r in self.model.rows if r.pid == pid), "")
        capture = self.capture.currentText()
        return AttachSpec(
            pid=pid,
            interval=parse_interval(self.interval.text()),
            name=self.name.text().strip() or None,
            process_name=name,
            threshold=check_threshold(self.threshold.text(), capture),
            capture=capture,
            children=self.children.isChecked(),
        )

    def done(self, result: int) -> None:
        self.lister.stop()
        try:
            self.lister.listed.disconnect(self._listed)
        except (RuntimeError, TypeError):
            pass
        super().done(result)
