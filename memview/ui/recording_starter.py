"""Starting, stopping and ending recordings from the window: the run/attach/watch dialogs, the
pre-launch checks, and what the window does when a recording starts, fails or ends.

A mixin of :class:`~memview.ui.main_window.MainWindow`, apart from the library and the tabs so
the rules that protect a recording (the database is checked before a child is launched; a
running recording is stopped or detached, never dropped) are in one place.
"""

from __future__ import annotations

import logging
import shlex
import threading
from typing import Any

from PySide6 import QtCore, QtWidgets

from memview.analysis import session_summary
from memview.collectors.redact import redact_url
from memview.store import StoreError
from memview.ui.dialogs import FormDialog, RunDialog, WatchDialog
from memview.ui.live_session import LiveSession, RunSpec, Spec, WatchSpec
from memview.ui.live_view import SessionView
from memview.ui.process_picker import ProcessPicker

log = logging.getLogger(__name__)


class RecordingStarter:
    """Opens the start dialogs and follows each :class:`LiveSession` from start to finish."""

    def store_problem(self) -> str | None:
        """Why nothing can be recorded now (the CLI's check before launching), as one line, or None.

        Opening a database SQLite cannot write succeeds (read-only fallback) and a folder that
        refuses the journal only shows at the first write: a command launched then would run
        unrecorded, so the run, attach and watch paths ask first.
        """
        if self.store is None:
            return "The database is not open yet."
        store = self.store
        problem: list[str] = []

        def probe() -> None:  # a fresh connection, as the recording's writer thread will open
            try:
                store.check_writable()
            except StoreError as exc:
                problem.append(str(exc))
            finally:
                store.close()  # this thread's connection only

        thread = threading.Thread(target=probe, name="memview-gui-check-writable")
        thread.start()
        thread.join()
        return problem[0] if problem else None

    def _show_dialog(self, dialog: QtWidgets.QDialog, on_accept: Any) -> None:
        if isinstance(dialog, FormDialog):
            dialog.precheck = self.store_problem  # refused in the dialog's red line, the form kept
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
        problem = self.store_problem()
        if problem is not None:
            self.statusBar().showMessage(f"Not started: {problem}", 10000)
            self.show_message("Cannot record", problem, QtWidgets.QMessageBox.Icon.Warning)
            return None
        if isinstance(spec, RunSpec):
            self.settings.remember("command", shlex.join(spec.argv))
            if spec.cwd:
                self.settings.last_cwd = spec.cwd
            self.settings.interval = spec.interval
        elif isinstance(spec, WatchSpec):
            if redact_url(spec.url, spec.keep_query) == spec.url:  # a URL carrying a secret is not kept
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
        target = ""
        if isinstance(live.spec, WatchSpec):
            target = redact_url(live.spec.url, live.spec.keep_query)
        elif isinstance(live.spec, RunSpec):
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
            self.db.submit(
                lambda s: session_summary(s, sid),
                lambda summary: self._summary_loaded(view, summary),
                lambda msg: self.statusBar().showMessage(msg, 10000),
            )
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

    def stop_current(self) -> None:
        view = self.current_view()
        if view is not None and view.live is not None:
            view.live.stop()
            self._update_actions()

    def capture_current(self) -> None:
        view = self.current_view()
        if view is not None:
            view.capture_now()

    def _update_live_label(self) -> None:
        n = sum(1 for lv in self.live if lv.running)
        self.live_label.setText(f"● {n} recording{'s' if n != 1 else ''}" if n else "")

    def ask_stop_or_detach(self, sessions: list[LiveSession]) -> str | None:
        """ "stop", "detach" or None (cancel). Detach only matters for launched commands."""
        launched = [lv for lv in sessions if lv.kind == "run"]
        n = len(sessions)
        box = QtWidgets.QMessageBox(self)
        box.setIcon(QtWidgets.QMessageBox.Icon.Question)
        box.setWindowTitle("Recording in progress")
        box.setText(
            f"{n} recording{'s are' if n > 1 else ' is'} still running: "
            + ", ".join(lv.title for lv in sessions[:4])
            + ("…" if n > 4 else "")
        )
        stop = box.addButton("Stop", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        detach = None
        if launched:
            box.setInformativeText(
                "Stop ends the recording and the command. Detach ends the recording and leaves "
                "the command running. Either way the session is saved."
            )
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
