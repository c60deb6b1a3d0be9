"""What the start dialogs check before anything runs, as the command line does.

- A database SQLite cannot write (here: its file made immutable under the open window) is
  refused in the dialog's red line before the command is launched; the form stays as
  typed and the command never runs (the CLI's ``store.check_writable()`` before launching).
- The watch dialog's **Keep query** field is the CLI's ``--keep-query``: every other query value
  is masked in the stored session, the tab and the recent-URL list.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from PySide6 import QtCore
from support import kill_and_reap, workload


@pytest.fixture
def immutable(tmp_path: Path):
    """Make a file immutable (chattr +i: even root cannot open it for writing); skipped where unsupported."""
    made: list[Path] = []

    def make(path: Path) -> None:
        res = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {res.stderr.strip()}")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_database_that_cannot_be_written_is_refused_before_the_command_starts(qtbot, tmp_path, settings, immutable):
    from memview.ui.dialogs import RunDialog
    from memview.ui.main_window import MainWindow

    win = MainWindow(tmp_path / "memview.db", settings)
    win.show()
    try:
        qtbot.waitUntil(lambda: win.store is not None, timeout=10000)
        immutable(tmp_path / "memview.db")  # SQLite now opens it read-only, as for a file of another user
        started = tmp_path / "started"
        command = f"{sys.executable} -c \"open('{started}', 'w')\""
        win.act_run.trigger()
        dialog = win.dialog
        assert isinstance(dialog, RunDialog)
        dialog.command.setCurrentText(command)
        qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
        # refused in the form: one line, the dialog still open with the command as typed
        assert dialog.isVisible() and dialog.error.isVisible()
        text = dialog.error.text()
        assert "cannot write to the database" in text and "\n" not in text and "Traceback" not in text
        assert dialog.command.currentText() == command
        assert win.live == [] and win.tabs.count() == 0
        # the programmatic path refuses too (and says so in the status bar)
        from memview.ui.live_session import RunSpec

        assert (
            win.start_session(RunSpec(argv=[sys.executable, "-c", f"open({str(started)!r}, 'w')"], interval=0.1))
            is None
        )
        assert "cannot write to the database" in win.statusBar().currentMessage()
        assert not started.exists()  # nothing was launched
        dialog.reject()
    finally:
        for live in list(win.live):  # only when the check failed: the short command ends by itself
            live.wait(60)
        qtbot.waitUntil(lambda: not any(lv.running for lv in win.live), timeout=60000)
        win.close()
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=30000)
        win.deleteLater()


def test_keep_query_names_the_only_query_values_stored_and_shown(qtbot, window, settings):
    from memview.ui.dialogs import WatchDialog
    from memview.ui.live_view import SessionView

    server = subprocess.Popen(workload("memserver.py"), stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(server.stdout.readline())["port"]
        url = f"http://127.0.0.1:{port}/api/v1/memory/profile?service=api&env=prod&api_token=SECRET42"
        window.act_watch.trigger()
        dialog = window.dialog
        assert isinstance(dialog, WatchDialog)
        dialog.url.setCurrentText(url)
        dialog.interval.setText("200ms")
        dialog.keep_query.setText("service, api_token")  # a credential-like name stays masked even so
        qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: isinstance(window.current_view(), SessionView) and window.current_view().live is not None,
            timeout=10000,
        )
        view = window.current_view()
        qtbot.waitUntil(lambda: view.buffers.get("rss") is not None and view.buffers["rss"].count > 1, timeout=15000)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/truth", timeout=10) as answer:
            truth = json.loads(answer.read())
        assert view.buffers["rss"].last > 0 and truth["rss_bytes"] > 0  # the full URL was polled
        sid = view.live.session_id
        row = next(r for r in window.store.sessions() if r["id"] == sid)
        assert "service=api" in row["target"] and "env=***" in row["target"] and "api_token=***" in row["target"]
        assert "SECRET42" not in row["target"] and "prod" not in row["target"]
        tab = window.tabs.tabText(window.tabs.currentIndex())
        assert "SECRET42" not in window.tabs.tabToolTip(window.tabs.currentIndex()) and "SECRET42" not in tab
        assert not any("SECRET42" in u for u in settings.recent("url"))  # not kept in the settings file
    finally:
        kill_and_reap(server)


def test_a_bad_keep_query_name_is_one_red_line(qtbot, window):
    from memview.ui.dialogs import WatchDialog

    window.act_watch.trigger()
    dialog = window.dialog
    assert isinstance(dialog, WatchDialog)
    dialog.url.setCurrentText("http://127.0.0.1:9/metrics?a=1")
    dialog.keep_query.setText("service a=b")
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert dialog.error.text() == "Keep query: 'a=b' is not a query parameter name (e.g. service)"
    assert window.live == []
    dialog.reject()
