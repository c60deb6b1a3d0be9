"""The main window: the session library on the left, the workspace (one tab per open session)
on the right, and the actions that start, stop and manage recordings.

The window owns no data: stored sessions come from the database worker, live ones from their
:class:`~memview.ui.live_session.LiveSession`. It decides what opens where, asks before anything
is destroyed, and makes sure every recording is closed in the store before the app quits. Its
actions and menus (:mod:`~memview.ui.window_actions`), the starting of recordings
(:mod:`~memview.ui.recording_starter`) and the edits of stored sessions
(:mod:`~memview.ui.library_actions`) are mixins in their own modules.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from memview.bundle import ExportResult, ImportResult
from memview.ui import file_dialogs, theme
from memview.ui.db import DbWorker
from memview.ui.library import LibraryPanel, display_name
from memview.ui.library_actions import LibraryActions
from memview.ui.library_actions import export_file_name as export_file_name
from memview.ui.live_session import LiveSession
from memview.ui.live_view import SessionView
from memview.ui.recording_starter import RecordingStarter
from memview.ui.session_data import SessionData, load_session
from memview.ui.settings import Settings
from memview.ui.welcome_page import WelcomePage
from memview.ui.window_actions import WindowActions

log = logging.getLogger(__name__)

LIBRARY_REFRESH_MS = 5000
CLOSE_TIMEOUT_MS = 20000


class MainWindow(WindowActions, RecordingStarter, LibraryActions, QtWidgets.QMainWindow):
    """The app's one window; see the module docstring."""

    library_loaded = QtCore.Signal()  # after each library refresh (tests wait on it)

    def __init__(self, db_path: Path, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.db: DbWorker | None = None
        self.db_path = Path(db_path)
        self.store: Any = None
        self.live: list[LiveSession] = []
        self.views: dict[int, SessionView] = {}
        self.dialog: QtWidgets.QDialog | None = None  # the dialog open right now
        self.last_export: ExportResult | None = None  # what the last export wrote (tests, status)
        self.last_import: ImportResult | None = None
        self._closing = False
        self.setWindowTitle("memview")
        self.resize(1500, 900)
        self._build_actions()
        self._build_ui()
        self._build_menus()
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.fit_screen()
        splitter_state = self.settings.state("splitter")
        self._library_sized = splitter_state is not None and self.splitter.restoreState(splitter_state)
        self.library_timer = QtCore.QTimer(self)
        self.library_timer.setInterval(LIBRARY_REFRESH_MS)
        self.library_timer.timeout.connect(self.refresh_library)
        self.library_timer.start()
        self.open_database(self.db_path)

    def _build_ui(self) -> None:
        self.library = LibraryPanel()
        self.library.open_requested.connect(self.open_session)
        self.library.selection_changed.connect(self._update_actions)
        for act in (
            self.act_open,
            self.act_rename,
            self.act_tags,
            self.act_notes,
            self.act_export,
            self.act_compare,
            self.act_delete,
        ):
            self.library.view.addAction(act)
        self.library.setMinimumWidth(150)  # with a live view and the side panel the window fits 1000 px
        self.library.set_sort(self.settings.library_sort)
        self.library.sort_changed.connect(lambda mode: setattr(self.settings, "library_sort", mode))

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(lambda *_: self._update_actions())
        self.welcome = WelcomePage([self.act_run, self.act_attach, self.act_watch])
        self.workspace = QtWidgets.QStackedWidget()
        self.workspace.addWidget(self.welcome)
        self.workspace.addWidget(self.tabs)

        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.library)
        self.splitter.addWidget(self.workspace)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([330, 1100])
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setCollapsible(0, True)  # the library folds away on a small screen (Ctrl+L)
        self.setCentralWidget(self.splitter)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for act in (self.act_run, self.act_attach, self.act_watch):
            toolbar.addAction(act)
        toolbar.addSeparator()
        toolbar.addAction(self.act_stop)
        toolbar.addAction(self.act_capture)
        toolbar.addSeparator()
        toolbar.addAction(self.act_compare)
        toolbar.addAction(self.act_export)

        self.db_label = QtWidgets.QLabel()
        self.db_label.setStyleSheet(f"color: {theme.current().muted}; padding: 0 6px;")
        self.live_label = QtWidgets.QLabel()
        self.live_label.setStyleSheet(f"color: {theme.current().bad}; font-weight: 600; padding: 0 6px;")
        self.busy_jobs: dict[int, str] = {}
        self.busy_label = QtWidgets.QLabel()
        self.busy_bar = QtWidgets.QProgressBar()
        self.busy_bar.setRange(0, 0)  # indeterminate: these actions do not know their length
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setTextVisible(False)
        self.statusBar().addPermanentWidget(self.busy_label)
        self.statusBar().addPermanentWidget(self.busy_bar)
        self.busy_bar.hide()
        self.busy_label.hide()
        self.statusBar().addPermanentWidget(self.live_label)
        self.statusBar().addPermanentWidget(self.db_label)

    def fit_screen(self) -> None:
        """No larger than the screen's free area: the 1500 x 900 default (or a size saved on a
        bigger monitor) would put the right-hand panel and the status bar off a 1024 px screen."""
        screen = self.screen() or QtGui.QGuiApplication.primaryScreen()
        if screen is None:
            return
        free = screen.availableGeometry()
        least = self.minimumSizeHint()
        width = min(self.width(), max(free.width(), least.width()))
        height = min(self.height(), max(free.height(), least.height()))
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        if not free.contains(self.frameGeometry().topLeft()):
            self.move(free.topLeft())

    def open_database(self, path: Path) -> None:
        """Switch to the database at ``path`` (opened on the worker thread)."""
        if self.db is not None:
            self.db.close()
        self.store = None
        self.db_path = Path(path)
        self.db_label.setText(str(self.db_path))
        self.db_label.setToolTip("The memview database this window reads and records into")
        self.setWindowTitle(f"memview — {self.db_path.name}")
        self.db = DbWorker(self.db_path, self)
        self.db.opened.connect(self._db_opened)
        self.db.open_failed.connect(self._db_failed)
        self.db.start()
        self._update_actions()

    def _db_opened(self, store: Any) -> None:
        self.store = store
        self.settings.last_db = str(self.db_path)
        self._update_actions()
        self.refresh_library()

    def _db_failed(self, message: str) -> None:
        self.library.set_rows([])
        self.library.empty.setText(f"Cannot open the database:\n{message}\n\nFile ▸ Open database… to pick another.")
        self.show_message("Cannot open the database", message, QtWidgets.QMessageBox.Icon.Critical)
        self._update_actions()

    def choose_database(self) -> None:
        path = file_dialogs.save_file_name(  # never sniffs files: that would drop SQLite's locks
            self,
            "Open or create a memview database",
            str(self.db_path),
            "memview database (*.db);;All files (*)",
            options=QtWidgets.QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.open_database(Path(path))

    def refresh_library(self) -> None:
        if self.db is None or self.store is None:
            return
        self.db.submit(lambda s: s.sessions(), self._library_rows)

    def _library_rows(self, rows: list[dict[str, Any]]) -> None:
        self.library.set_rows(rows, self.live_ids())
        self._update_actions()
        self.library_loaded.emit()

    def live_ids(self) -> set[int]:
        return {lv.session_id for lv in self.live if lv.running and lv.session_id is not None}

    def _add_tab(self, widget: QtWidgets.QWidget, title: str, live: bool = False) -> None:
        index = self.tabs.addTab(widget, title)
        if live:
            self.tabs.setTabIcon(index, self._record_icon())
        self.tabs.setTabToolTip(index, title)
        self.tabs.setCurrentIndex(index)
        self.workspace.setCurrentWidget(self.tabs)

    @staticmethod
    def _record_icon() -> QtGui.QIcon:
        pix = QtGui.QPixmap(12, 12)
        pix.fill(QtCore.Qt.GlobalColor.transparent)
        p = QtGui.QPainter(pix)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setBrush(QtGui.QColor("#c0392b"))
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.drawEllipse(1, 1, 10, 10)
        p.end()
        return QtGui.QIcon(pix)

    def _update_tab_titles(self) -> None:
        for i in range(self.tabs.count()):
            view = self.tabs.widget(i)
            if isinstance(view, SessionView):
                title = view.title if len(view.title) <= 28 else view.title[:26] + "…"
                if self.tabs.tabText(i) != title:
                    self.tabs.setTabText(i, title)
                if not view.is_live and not self.tabs.tabIcon(i).isNull():
                    self.tabs.setTabIcon(i, QtGui.QIcon())

    def current_view(self) -> SessionView | None:
        widget = self.tabs.currentWidget() if self.workspace.currentWidget() is self.tabs else None
        return widget if isinstance(widget, SessionView) else None

    def open_selected(self) -> None:
        for sid in self.library.selected_ids()[:8]:
            self.open_session(sid)

    def open_session(self, sid: int) -> SessionView:
        """Show stored session ``sid`` (or focus its tab if it is already open)."""
        view = self.views.get(sid)
        if view is not None:
            self.tabs.setCurrentWidget(view)
            self.workspace.setCurrentWidget(self.tabs)
            return view
        row = self.library.row_for(sid) or {"id": sid}
        view = SessionView(display_name(row), row.get("kind") or "", row.get("target") or "")
        view.session_id = sid
        view.capture_activated.connect(self.open_capture)
        view.changed.connect(self._update_tab_titles)
        view.show_banner("Loading…", level="info")
        self.views[sid] = view
        self._add_tab(view, display_name(row))
        if self.db is not None:
            token = self.busy(f"Opening session #{sid}…")

            def loaded(data: SessionData) -> None:
                self.idle(token)
                self._session_loaded(view, data)

            def failed(msg: str) -> None:
                self.idle(token)
                view.show_banner(f"Cannot load session {sid}: {msg}")

            self.db.submit(lambda s: load_session(s, sid), loaded, failed)
        return view

    def _session_loaded(self, view: SessionView, data: SessionData) -> None:
        if view.banner.text() == "Loading…":
            view.banner.hide()
        view.load(data)
        folder = self.db_path.with_name(self.db_path.stem + ".artefacts") / f"session-{data.session_id}"
        paths = {s: folder / f"child-{s}.log" for s in ("stdout", "stderr")}
        if any(p.is_file() for p in paths.values()):
            view.show_output(paths, open_pane=False)
            view.output.stop_following()
        self._update_tab_titles()

    def close_current_tab(self) -> None:
        if self.tabs.count() and self.workspace.currentWidget() is self.tabs:
            self.close_tab(self.tabs.currentIndex())

    def close_tab(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if isinstance(widget, SessionView) and widget.is_live:
            assert widget.live is not None
            choice = self.ask_stop_or_detach([widget.live])
            if choice is None:
                return
            widget.live.stop() if choice == "stop" or widget.live.kind != "run" else widget.live.detach()
        self.tabs.removeTab(index)
        if isinstance(widget, SessionView) and widget.session_id is not None:
            self.views.pop(widget.session_id, None)
        if widget is not None:
            widget.deleteLater()
        if self.tabs.count() == 0:
            self.workspace.setCurrentWidget(self.welcome)

    def open_capture(self, capture: dict[str, Any]) -> None:
        """A capture marker was clicked: offer to open the artefact or its folder."""
        path = capture.get("path")
        if not path:
            self.statusBar().showMessage(
                f"{capture.get('tool')} capture has no artefact yet ({capture.get('status')})", 8000
            )
            return
        target = Path(path)
        menu = QtWidgets.QMenu(self)
        menu.addSection(f"{capture.get('tool')} · {capture.get('status')}")
        open_file = menu.addAction("Open artefact")
        open_file.triggered.connect(lambda: self.open_path(target))
        open_file.setEnabled(target.exists())
        open_dir = menu.addAction("Open containing folder")
        open_dir.triggered.connect(lambda: self.open_path(target if target.is_dir() else target.parent))
        copy = menu.addAction("Copy path")
        copy.triggered.connect(lambda: QtWidgets.QApplication.clipboard().setText(str(target)))
        menu.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)  # one menu per click, gone once closed
        menu.popup(QtGui.QCursor.pos())

    def open_path(self, path: Path) -> bool:
        ok = QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(path)))
        if not ok:
            self.statusBar().showMessage(f"No application to open {path}", 8000)
        return bool(ok)

    def busy(self, text: str) -> int:
        """Show that a long action runs (export, import, open, capture); returns its token."""
        self._busy_seq = getattr(self, "_busy_seq", 0) + 1
        self.busy_jobs[self._busy_seq] = text
        self._show_busy()
        return self._busy_seq

    def idle(self, token: int) -> None:
        self.busy_jobs.pop(token, None)
        self._show_busy()

    def _show_busy(self) -> None:
        if self.busy_jobs:
            self.busy_label.setText(list(self.busy_jobs.values())[-1])
            self.busy_bar.show()
            self.busy_label.show()
        else:
            self.busy_bar.hide()
            self.busy_label.hide()

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802
        """The first time, without a saved layout: the library takes a quarter of the width (at
        most 330 px), so at 1000 px the plot and the phase names keep their room."""
        super().showEvent(event)
        if not self._library_sized:
            self._library_sized = True
            total = sum(self.splitter.sizes()) or self.width()
            width = max(self.library.minimumWidth(), min(330, total // 4))
            self.splitter.setSizes([width, max(total - width, 1)])

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802
        running = [lv for lv in self.live if lv.running]
        if running:
            if not self._closing:
                choice = self.ask_stop_or_detach(running)
                if choice is None:
                    event.ignore()
                    return
                self._closing = True
                for lv in running:
                    if choice == "detach" and lv.kind == "run":
                        lv.detach()
                    else:
                        lv.stop()
                self.statusBar().showMessage("Saving the recordings before closing…")
                QtCore.QTimer.singleShot(CLOSE_TIMEOUT_MS, self._force_close)
            event.ignore()  # closes for real when the last session has finished (_live_finished)
            return
        self.library_timer.stop()
        for i in range(self.tabs.count()):
            widget = self.tabs.widget(i)
            if isinstance(widget, SessionView):
                widget.timer.stop()
        self.settings.save_window(self.saveGeometry(), splitter=self.splitter.saveState())
        self.settings.sync()
        if self.db is not None:
            self.db.close()
        event.accept()

    def _force_close(self) -> None:
        if any(lv.running for lv in self.live):
            log.warning("closing with %d recording(s) still finishing", sum(lv.running for lv in self.live))
            self.live = [lv for lv in self.live if not lv.running]
            self.close()
