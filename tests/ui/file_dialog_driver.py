"""Drives the real desktop app for tests/ui/test_file_dialog_locks.py (run under xvfb-run and strace).

Usage: ``file_dialog_driver.py DB``. The process works in the database's folder. It opens every
file dialog of the app there, waits until the dialog has listed the folder, cancels it, and
reports on stdout; then obeys lines on stdin:

``refresh``  reload the library and print ``sessions <ids…>`` once it has more rows than before
``write``    rename the newest session through the app's own store, print ``wrote``
``quit``     close the window and exit
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from memview.ui.dialogs import RunDialog
from memview.ui.main_window import MainWindow
from memview.ui.settings import Settings

DB = Path(sys.argv[1]).resolve()
os.chdir(DB.parent)  # "" as a starting folder (Import bundle…) is the working folder: the database's

app = QtWidgets.QApplication(["memview-test"])
settings = Settings.at(DB.parent.parent / "settings.ini")
settings.last_cwd = str(DB.parent)
win = MainWindow(DB, settings)
win.resize(1000, 700)
win.show()


def say(*words: object) -> None:
    print(*words, flush=True)


def cancel_when_listed(name: str) -> None:
    """Cancel the next modal file dialog once its model has loaded the database's folder."""

    def poll() -> None:
        dialog = QtWidgets.QApplication.activeModalWidget()
        if not isinstance(dialog, QtWidgets.QFileDialog):
            QtCore.QTimer.singleShot(20, poll)
            return
        model = dialog.findChild(QtWidgets.QFileSystemModel)

        def listed() -> bool:
            if model is None or Path(dialog.directory().absolutePath()).resolve() != DB.parent:
                return False
            root = model.index(str(DB.parent))
            return model.rowCount(root) >= 1 and not model.canFetchMore(root)

        def wait() -> None:
            if listed():
                # let the gatherer thread finish the icons and types of what it listed
                QtCore.QTimer.singleShot(
                    500, lambda: (say("listed", name, model.rowCount(model.index(str(DB.parent)))), dialog.reject())
                )
            else:
                QtCore.QTimer.singleShot(20, wait)

        wait()

    QtCore.QTimer.singleShot(0, poll)


def run_dialogs() -> None:
    say("dialogs-start")
    cancel_when_listed("open-database")
    win.choose_database()
    cancel_when_listed("import")
    win.import_bundle()
    win.library.view.selectAll() if win.library.view.model().rowCount() == 1 else None
    cancel_when_listed("export")
    win.export_selected(None) if win.library.selected_ids() else say("listed", "export", "skipped")
    dialog = RunDialog(win, cwd=str(DB.parent))
    cancel_when_listed("working-directory")
    dialog._browse()
    dialog.reject()
    say("dialogs-done")


def ready() -> None:
    if win.store is None or win.library.view.model().rowCount() < 1:
        QtCore.QTimer.singleShot(50, ready)
        return
    QtCore.QTimer.singleShot(0, run_dialogs)


class Commands(QtCore.QObject):
    line = QtCore.Signal(str)


commands = Commands()
seen: list[int] = []


def refreshed() -> None:
    ids = [r["id"] for r in win.store.sessions()] if win.store is not None else []
    if len(win.library.visible_ids()) > len(seen) or len(ids) > len(seen):
        if len(win.library.visible_ids()) == len(ids):
            say("sessions", *sorted(win.library.visible_ids()))
            return
    win.refresh_library()
    QtCore.QTimer.singleShot(100, refreshed)


def on_line(text: str) -> None:
    if text == "refresh":
        seen[:] = win.library.visible_ids()
        refreshed()
    elif text == "write":
        sid = max(r["id"] for r in win.store.sessions())
        win.db.submit(
            lambda s: s.update_session(sid, name="renamed by the app"),
            lambda _r: say("wrote"),
            lambda msg: say("write-failed", msg),
        )
    elif text == "quit":
        win.close()
        app.quit()


commands.line.connect(on_line, QtCore.Qt.ConnectionType.QueuedConnection)


def read_stdin() -> None:
    for raw in sys.stdin:
        commands.line.emit(raw.strip())


threading.Thread(target=read_stdin, daemon=True).start()
QtCore.QTimer.singleShot(0, ready)
app.exec()
say("exited")
