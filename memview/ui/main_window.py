"""The main window: the session library on the left, the workspace (one tab per open session)
on the right, and the actions that start, stop and manage recordings.

The window owns no data: stored sessions come from the database worker, live ones from their
:class:`~memview.ui.live_session.LiveSession`. It decides what opens where, asks before anything
is destroyed, and makes sure every recording is closed in the store before the app quits.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from memview.analysis import session_summary
from memview.bundle import BundleError, ExportResult, ImportResult, export_session, import_bundle
from memview.ui import file_dialogs, theme
from memview.ui.compare_view import CompareView
from memview.ui.db import DbWorker
from memview.ui.dialogs import RunDialog, TextDialog, WatchDialog
from memview.ui.library import LibraryPanel, display_name
from memview.ui.live_session import LiveSession, RunSpec, Spec, WatchSpec
from memview.ui.live_view import SessionView
from memview.ui.process_picker import ProcessPicker
from memview.ui.session_data import SessionData, load_session
from memview.ui.settings import Settings

log = logging.getLogger(__name__)

LIBRARY_REFRESH_MS = 5000
CLOSE_TIMEOUT_MS = 20000

SHORTCUTS = [
    ("Run command…", "Ctrl+R"), ("Attach to process…", "Ctrl+Shift+A"), ("Watch endpoint…", "Ctrl+Shift+W"),
    ("Stop recording", "Ctrl+."), ("Capture now", "Ctrl+K"), ("Follow newest data", "F"),
    ("Filter the library", "Ctrl+F"), ("Show or hide the library", "Ctrl+L"),
    ("Open selected session", "Enter"), ("Rename session", "F2"),
    ("Delete session", "Delete"), ("Compare selected", "Ctrl+D"), ("Export session", "Ctrl+E"),
    ("Import bundle", "Ctrl+I"), ("Refresh library", "F5"),
    ("Close tab", "Ctrl+W"), ("Open database…", "Ctrl+O"), ("Quit", "Ctrl+Q"),
]


class WelcomePage(QtWidgets.QWidget):
    """The empty workspace: three big ways to start."""

    def __init__(self, actions: list[QtGui.QAction], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addStretch(2)
        title = QtWidgets.QLabel("What do you want to measure?")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(title)
        sub = QtWidgets.QLabel("memview records the memory of a command, a running process tree or a service, "
                               "with exact peaks, phases and captures.")
        sub.setStyleSheet(f"color: {theme.current().muted};")
        sub.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        sub.setWordWrap(True)
        layout.addWidget(sub)
        layout.addSpacing(24)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        blurbs = ["Launch a program and record it and its children until it exits.",
                  "Pick a running process, like in a task manager, and record its tree.",
                  "Poll an HTTP endpoint that reports a service's own memory."]
        self.buttons: list[QtWidgets.QToolButton] = []
        for action, blurb in zip(actions, blurbs):
            button = QtWidgets.QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QtCore.QSize(40, 40))
            button.setMinimumSize(170, 110)
            bfont = button.font()
            bfont.setPointSizeF(bfont.pointSizeF() * 1.2)
            bfont.setBold(True)
            button.setFont(bfont)
            if theme.current().dark:
                button.setStyleSheet("QToolButton { border: 1px solid #4a4d53; border-radius: 8px; padding: 10px;"
                                     " background: #33363b; } QToolButton:hover { background: #3b4048;"
                                     " border-color: #7fb3e6; }")
            else:
                button.setStyleSheet("QToolButton { border: 1px solid #c8ccd2; border-radius: 8px; padding: 10px;"
                                     " background: #f7f9fb; } QToolButton:hover { background: #e9f0f7;"
                                     " border-color: #4e79a7; }")
            col = QtWidgets.QVBoxLayout()
            col.addWidget(button, 0, QtCore.Qt.AlignmentFlag.AlignHCenter)
            keys = action.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText)
            text = QtWidgets.QLabel(f"{blurb}\n{keys}")
            text.setWordWrap(True)
            text.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop)
            text.setStyleSheet(f"color: {theme.current().muted};")
            text.setFixedWidth(180)
            col.addWidget(text, 0, QtCore.Qt.AlignmentFlag.AlignHCenter)
            row.addLayout(col)
            row.addSpacing(16)
            self.buttons.append(button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addSpacing(24)
        hint = QtWidgets.QLabel("Or double-click a session in the library to reopen it.")
        hint.setStyleSheet(f"color: {theme.current().muted};")
        hint.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint)
        layout.addStretch(3)


def export_file_name(row: dict[str, Any]) -> str:
    """A bundle's default file name from the session's name ("kreuzberg-big-pdf.memview.zip"), so
    a folder of exports reads like the library; the id keeps two sessions of one name apart."""
    import re

    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", display_name(row)).strip("-._")[:60] or "session"
    return f"{stem}-{row['id']}.memview.zip"


def _one_line(job: Any) -> Any:
    """A bundle job whose refusal (BundleError) reaches the user as its own one-line message."""

    def run(store: Any) -> Any:
        try:
            return job(store)
        except BundleError as exc:
            raise ValueError(str(exc)) from None

    return run


class MainWindow(QtWidgets.QMainWindow):
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
        self.capture_menu: QtWidgets.QMenu | None = None
        self._closing = False
        self.setWindowTitle("memview")
        self.resize(1500, 900)
        self._build_actions()
        self._build_ui()
        self._build_menus()
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter_state = self.settings.state("splitter")
        if splitter_state is not None:
            self.splitter.restoreState(splitter_state)
        self.library_timer = QtCore.QTimer(self)
        self.library_timer.setInterval(LIBRARY_REFRESH_MS)
        self.library_timer.timeout.connect(self.refresh_library)
        self.library_timer.start()
        self.open_database(self.db_path)

    # -- construction ----------------------------------------------------------------------------
    def _action(self, text: str, shortcut: str | None, slot: Any, tip: str = "",
                icon: QtWidgets.QStyle.StandardPixmap | None = None) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        if tip:
            action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
            action.setStatusTip(tip)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(lambda *_: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        sp = QtWidgets.QStyle.StandardPixmap
        self.act_run = self._action("Run command…", "Ctrl+R", self.open_run_dialog,
                                    "Launch a command and record its memory", sp.SP_MediaPlay)
        self.act_attach = self._action("Attach to process…", "Ctrl+Shift+A", self.open_attach_dialog,
                                       "Record a running process and its children", sp.SP_ComputerIcon)
        self.act_watch = self._action("Watch endpoint…", "Ctrl+Shift+W", self.open_watch_dialog,
                                      "Record a service's memory from its HTTP endpoint", sp.SP_DriveNetIcon)
        self.act_stop = self._action("Stop", "Ctrl+.", self.stop_current, "Stop the current recording",
                                     sp.SP_MediaStop)
        self.act_capture = self._action("Capture now", "Ctrl+K", self.capture_current,
                                        "Take a stack/heap capture of the current recording now")
        self.act_open = self._action("Open", "Return", self.open_selected, "Open the selected session")
        self.act_open.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetShortcut)
        self.act_rename = self._action("Rename…", "F2", self.rename_selected, "Rename the selected session")
        self.act_tags = self._action("Tags…", None, self.tag_selected, "Set the selected session's tags")
        self.act_notes = self._action("Notes…", None, self.note_selected, "Edit the selected session's notes")
        self.act_export = self._action("Export…", "Ctrl+E", self.export_selected,
                                       "Export the selected session as a bundle")
        self.act_import = self._action("Import bundle…", "Ctrl+I", self.import_bundle, "Import a session bundle")
        self.act_compare = self._action("Compare selected", "Ctrl+D", self.compare_selected,
                                        "Compare two or more selected sessions")
        self.act_delete = self._action("Delete…", "Delete", self.delete_selected, "Delete the selected sessions")
        self.act_delete.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.act_refresh = self._action("Refresh library", "F5", self.refresh_library)
        self.act_filter = self._action("Filter library", "Ctrl+F", self.focus_filter)
        self.act_close_tab = self._action("Close tab", "Ctrl+W", self.close_current_tab)
        self.act_open_db = self._action("Open database…", "Ctrl+O", self.choose_database,
                                        "Open or create another memview database")
        self.act_quit = self._action("Quit", "Ctrl+Q", self.close)
        self.act_library = self._action("Show library", "Ctrl+L", self.toggle_library,
                                        "Show or hide the session library")
        self.act_library.setCheckable(True)
        self.act_library.setChecked(True)
        self.act_shortcuts = self._action("Keyboard shortcuts", None, self.show_shortcuts)
        self.act_about = self._action("About memview", None, self.show_about)
        for act in (self.act_stop, self.act_capture):
            act.setEnabled(False)

    def _build_ui(self) -> None:
        self.library = LibraryPanel()
        self.library.open_requested.connect(self.open_session)
        self.library.selection_changed.connect(self._update_actions)
        for act in (self.act_open, self.act_rename, self.act_tags, self.act_notes, self.act_export,
                    self.act_compare, self.act_delete):
            self.library.view.addAction(act)
        self.library.setMinimumWidth(250)
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

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        for act in (self.act_open_db, None, self.act_import, self.act_export, None, self.act_quit):
            m.addSeparator() if act is None else m.addAction(act)
        m = bar.addMenu("&Session")
        for act in (self.act_run, self.act_attach, self.act_watch, None, self.act_stop, self.act_capture, None,
                    self.act_open, self.act_rename, self.act_tags, self.act_notes, self.act_compare, None,
                    self.act_delete):
            m.addSeparator() if act is None else m.addAction(act)
        m = bar.addMenu("&View")
        for act in (self.act_library, self.act_filter, self.act_refresh, self.act_close_tab):
            m.addAction(act)
        m = bar.addMenu("&Help")
        m.addAction(self.act_shortcuts)
        m.addAction(self.act_about)

    # -- database --------------------------------------------------------------------------------
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
            self, "Open or create a memview database", str(self.db_path), "memview database (*.db);;All files (*)",
            options=QtWidgets.QFileDialog.Option.DontConfirmOverwrite)
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

    # -- starting recordings ---------------------------------------------------------------------
    def _show_dialog(self, dialog: QtWidgets.QDialog, on_accept: Any) -> None:
        dialog.accepted.connect(lambda: on_accept(dialog))
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.open()

    def open_run_dialog(self) -> None:
        s = self.settings
        dialog = RunDialog(self, recent=s.recent("command"), cwd=s.last_cwd, interval=s.interval)
        self._show_dialog(dialog, lambda d: self.start_session(d.spec))

    def open_attach_dialog(self) -> None:
        dialog = ProcessPicker(self, interval=self.settings.interval)
        self._show_dialog(dialog, lambda d: self.start_session(d.spec))

    def open_watch_dialog(self) -> None:
        dialog = WatchDialog(self, recent=self.settings.recent("url"), interval=self.settings.watch_interval)
        self._show_dialog(dialog, lambda d: self.start_session(d.spec))

    def start_session(self, spec: Spec) -> LiveSession | None:
        """Start recording ``spec``; the tab appears once the session exists."""
        if self.store is None:
            self.show_message("No database", "The database is not open yet.", QtWidgets.QMessageBox.Icon.Warning)
            return None
        if isinstance(spec, RunSpec):
            import shlex

            self.settings.remember("command", shlex.join(spec.argv))
            if spec.cwd:
                self.settings.last_cwd = spec.cwd
            self.settings.interval = spec.interval
        elif isinstance(spec, WatchSpec):
            self.settings.remember("url", spec.url)
            self.settings.watch_interval = spec.interval
        else:
            self.settings.interval = spec.interval
        live = LiveSession(spec, self.store, self)
        live.started.connect(lambda: self._live_started(live))
        live.failed.connect(lambda msg: self._live_failed(live, msg))
        live.finished.connect(lambda: self._live_finished(live))
        live.notice.connect(lambda msg: self.statusBar().showMessage(msg, 10000))
        self.live.append(live)
        self.statusBar().showMessage(f"Starting {spec.title}…", 5000)
        live.start()
        return live

    def _live_started(self, live: LiveSession) -> None:
        target = getattr(live.spec, "url", None) or ""
        if isinstance(live.spec, RunSpec):
            import shlex

            target = shlex.join(live.spec.argv)
        elif live.kind == "attach":
            target = f"PID {live.spec.pid}"  # type: ignore[union-attr]
        view = SessionView(live.title, live.kind, target)
        view.attach_live(live)
        view.capture_activated.connect(self.open_capture)
        view.changed.connect(self._update_tab_titles)
        assert live.session_id is not None
        self.views[live.session_id] = view
        self._add_tab(view, live.title, live=True)
        self._update_live_label()
        self.refresh_library()
        if self._closing:
            live.stop()

    def _live_failed(self, live: LiveSession, message: str) -> None:
        if live in self.live:
            self.live.remove(live)
        self.statusBar().showMessage(f"Could not start: {message}", 10000)
        self.show_message("Could not start the recording", message, QtWidgets.QMessageBox.Icon.Warning)
        self._update_live_label()

    def _live_finished(self, live: LiveSession) -> None:
        if live in self.live:
            self.live.remove(live)
        sid = live.session_id
        view = self.views.get(sid) if sid is not None else None
        if sid is not None and self.db is not None:
            self.db.submit(lambda s: session_summary(s, sid), lambda summary: self._summary_loaded(view, summary),
                           lambda msg: self.statusBar().showMessage(msg, 10000))
        self._update_live_label()
        self._update_actions()
        self.refresh_library()
        self.statusBar().showMessage(f"{live.title}: recording ended", 5000)
        if self._closing and not any(lv.running for lv in self.live):
            QtCore.QTimer.singleShot(0, self.close)

    def _summary_loaded(self, view: SessionView | None, summary: dict[str, Any]) -> None:
        if view is not None:
            view.set_summary(summary)
            self._update_tab_titles()

    # -- the workspace ----------------------------------------------------------------------------
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
        view.show_banner("Loading…")
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

    # -- commands on the current recording -------------------------------------------------------
    def stop_current(self) -> None:
        view = self.current_view()
        if view is not None and view.live is not None:
            view.live.stop()
            self._update_actions()

    def capture_current(self) -> None:
        view = self.current_view()
        if view is not None:
            view.capture_now()

    def open_capture(self, capture: dict[str, Any]) -> None:
        """A capture marker was clicked: offer to open the artefact or its folder."""
        path = capture.get("path")
        if not path:
            self.statusBar().showMessage(f"{capture.get('tool')} capture has no artefact yet "
                                         f"({capture.get('status')})", 8000)
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
        self.capture_menu = menu
        menu.popup(QtGui.QCursor.pos())

    def open_path(self, path: Path) -> bool:
        ok = QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(path)))
        if not ok:
            self.statusBar().showMessage(f"No application to open {path}", 8000)
        return bool(ok)

    # -- library edits ---------------------------------------------------------------------------
    def _one_selected(self) -> int | None:
        ids = self.library.selected_ids()
        if len(ids) != 1:
            self.statusBar().showMessage("Select one session first", 4000)
            return None
        return ids[0]

    def rename_selected(self) -> None:
        sid = self._one_selected()
        if sid is None:
            return
        row = self.library.row_for(sid) or {}
        dialog = TextDialog(self, "Rename session", f"Name of session #{sid}:", row.get("name") or "")
        dialog.textValueSelected.connect(lambda text: self.edit_session(sid, name=text.strip() or None))
        self.dialog = dialog
        dialog.open()

    def tag_selected(self) -> None:
        sid = self._one_selected()
        if sid is None:
            return
        row = self.library.row_for(sid) or {}
        tags = ", ".join(row.get("tags") or [])
        dialog = TextDialog(self, "Tags", f"Tags of session #{sid} (comma-separated):", tags)
        dialog.textValueSelected.connect(
            lambda text: self.edit_session(sid, tags=[t.strip() for t in text.split(",") if t.strip()]))
        self.dialog = dialog
        dialog.open()

    def note_selected(self) -> None:
        sid = self._one_selected()
        if sid is None:
            return
        row = self.library.row_for(sid) or {}
        dialog = TextDialog(self, "Notes", f"Notes on session #{sid}:", row.get("notes") or "", multiline=True)
        dialog.textValueSelected.connect(lambda text: self.edit_session(sid, notes=text))
        self.dialog = dialog
        dialog.open()

    def edit_session(self, sid: int, **fields: Any) -> None:
        if self.db is None:
            return

        def done(_: Any) -> None:
            view = self.views.get(sid)
            if view is not None and "name" in fields:
                view.title = fields["name"] or f"#{sid}"
                view._set_titles()
                self._update_tab_titles()
            self.refresh_library()

        self.db.submit(lambda s: s.update_session(sid, **fields), done,
                       lambda msg: self.show_message("Cannot edit the session", msg))

    def delete_selected(self) -> None:
        ids = [sid for sid in self.library.selected_ids() if sid not in self.live_ids()]
        if not ids:
            self.statusBar().showMessage("Select stored sessions to delete (a recording must be stopped first)", 5000)
            return
        names = ", ".join(display_name(self.library.row_for(s) or {"id": s}) for s in ids[:5])
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, "Delete sessions",
                                    f"Delete {len(ids)} session{'s' if len(ids) > 1 else ''}: {names}{more}?",
                                    QtWidgets.QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Their samples, phases, events and capture records are removed from the database. "
                               "Capture files on disk are kept.")
        delete = box.addButton("Delete", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: self._delete(ids) if button is delete else None)
        self.dialog = box
        box.open()

    def _delete(self, ids: list[int]) -> None:
        if self.db is None:
            return

        def job(store: Any) -> None:
            for sid in ids:
                store.delete_session(sid)

        def done(_: Any) -> None:
            for sid in ids:
                view = self.views.get(sid)
                if view is not None:
                    self.close_tab(self.tabs.indexOf(view))
            self.refresh_library()
            self.statusBar().showMessage(f"Deleted {len(ids)} session(s)", 5000)

        self.db.submit(job, done, lambda msg: self.show_message("Cannot delete", msg))

    def export_selected(self, path: str | None = None) -> None:
        """Export the selected session as a bundle (memview.bundle); ``path`` skips the file dialog."""
        sid = self._one_selected()
        if sid is None or self.db is None:
            return
        if path is None:
            default_name = export_file_name(self.library.row_for(sid) or {"id": sid})
            path = file_dialogs.save_file_name(self, "Export session", default_name,
                                               "memview bundle (*.memview.zip *.zip)")
        if not path:
            return
        token = self.busy(f"Exporting session #{sid}…")

        def done(result: ExportResult) -> None:
            self.idle(token)
            self.last_export = result
            note = f" ({'; '.join(result.warnings)})" if result.warnings else ""
            self.statusBar().showMessage(f"Exported session #{sid} to {result.path}{note}", 8000)

        def failed(msg: str) -> None:
            self.idle(token)
            self.show_message("Export failed", msg)

        self.db.submit(_one_line(lambda s: export_session(s, sid, Path(path), overwrite=True)), done, failed)

    def import_bundle(self, path: str | None = None) -> None:
        """Import a bundle; ``path`` skips the file dialog. A bundle already present says so."""
        if path is None:
            path = file_dialogs.open_file_name(self, "Import bundle", "", "memview bundle (*.zip)")
        if not path or self.db is None:
            return
        token = self.busy(f"Importing {Path(path).name}…")

        def done(result: ImportResult) -> None:
            self.idle(token)
            self.last_import = result
            self.refresh_library()
            view = self.open_session(result.session_id)
            if not result.created:
                text = (f"{Path(path).name} is already in this database as session #{result.session_id}: "
                        "nothing was imported; the session is open.")
                self.statusBar().showMessage(text, 10000)
                view.show_banner(text, timeout_ms=10000)
            else:
                self.statusBar().showMessage(f"Imported {Path(path).name} as session #{result.session_id}", 8000)

        def failed(msg: str) -> None:
            self.idle(token)
            self.show_message("Import failed", msg)

        self.db.submit(_one_line(lambda s: import_bundle(s, Path(path))), done, failed)

    def compare_selected(self) -> None:
        ids = self.library.selected_ids()
        if len(ids) < 2:
            self.statusBar().showMessage("Select two or more sessions to compare (Ctrl+click)", 5000)
            return
        try:
            widget = CompareView(self.store, ids, self)
        except Exception as exc:  # the compare view is another module: keep the app alive
            log.exception("compare view failed")
            self.show_message("Cannot compare", str(exc))
            return
        self._add_tab(widget, "Compare " + ", ".join(f"#{i}" for i in ids))

    # -- progress ------------------------------------------------------------------------------------
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

    # -- small things ----------------------------------------------------------------------------------
    def toggle_library(self) -> None:
        """Fold the library away (more room for the plot) or bring it back."""
        sizes = self.splitter.sizes()
        if sizes[0] > 0:
            self._library_width = sizes[0]
            self.splitter.setSizes([0, sum(sizes)])
        else:
            width = getattr(self, "_library_width", 320)
            self.splitter.setSizes([width, max(sum(sizes) - width, 1)])
        self.act_library.setChecked(self.splitter.sizes()[0] > 0)

    def focus_filter(self) -> None:
        if self.splitter.sizes()[0] == 0:
            self.toggle_library()
        self.library.filter.setFocus()
        self.library.filter.selectAll()

    def show_message(self, title: str, text: str,
                     icon: QtWidgets.QMessageBox.Icon = QtWidgets.QMessageBox.Icon.Information) -> None:
        box = QtWidgets.QMessageBox(icon, title, text, QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = box
        box.open()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{name}</td><td style='padding-left:18px'><b>{keys}</b></td></tr>"
                       for name, keys in SHORTCUTS)
        self.show_message("Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        from memview import __version__

        self.show_message("About memview", f"memview {__version__}\nRecord, compare and investigate the memory "
                                           "of processes, process trees and services.")

    def _update_live_label(self) -> None:
        n = sum(1 for lv in self.live if lv.running)
        self.live_label.setText(f"● {n} recording{'s' if n != 1 else ''}" if n else "")

    def _update_actions(self) -> None:
        view = self.current_view()
        live = view is not None and view.is_live
        self.act_stop.setEnabled(live)
        self.act_capture.setEnabled(live and view is not None and view.kind != "watch")
        has_db = self.store is not None
        for act in (self.act_run, self.act_attach, self.act_watch, self.act_import):
            act.setEnabled(has_db)
        ids = self.library.selected_ids()
        for act in (self.act_rename, self.act_tags, self.act_notes, self.act_export):
            act.setEnabled(has_db and len(ids) == 1)
        self.act_open.setEnabled(bool(ids))
        self.act_delete.setEnabled(has_db and bool(ids))
        self.act_compare.setEnabled(has_db and len(ids) >= 2)

    # -- closing ---------------------------------------------------------------------------------
    def ask_stop_or_detach(self, sessions: list[LiveSession]) -> str | None:
        """"stop", "detach" or None (cancel). Detach only matters for launched commands."""
        launched = [lv for lv in sessions if lv.kind == "run"]
        n = len(sessions)
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Recording in progress")
        box.setText(f"{n} recording{'s are' if n > 1 else ' is'} still running: "
                    + ", ".join(lv.title for lv in sessions[:4]) + ("…" if n > 4 else ""))
        stop = box.addButton("Stop", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        detach = None
        if launched:
            box.setInformativeText("Stop ends the recording and the command. Detach ends the recording and leaves "
                                   "the command running. Either way the session is saved.")
            detach = box.addButton("Detach", QtWidgets.QMessageBox.ButtonRole.ActionRole)
        else:
            box.setInformativeText("Stop ends the recording; the session is saved.")
        box.addButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(stop)
        self.dialog = box
        box.exec()
        clicked = box.clickedButton()
        if clicked is stop:
            return "stop"
        if detach is not None and clicked is detach:
            return "detach"
        return None

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
