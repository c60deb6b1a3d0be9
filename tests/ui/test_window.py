"""The main window driven like a user would: run a real child from the dialog, watch it, stop it,
find it in the library, reopen it."""

from __future__ import annotations

import shlex

import numpy as np
from PySide6 import QtCore
from support import MiB, workload

from memview.store import Store
from memview.ui.dialogs import RunDialog
from memview.ui.live_view import SessionView


def _vm(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _run_from_dialog(qtbot, window, argv: list[str], name: str = "", interval: str = "20ms") -> SessionView:
    window.act_run.trigger()
    dialog = window.dialog
    assert isinstance(dialog, RunDialog) and dialog.isVisible()
    dialog.command.setCurrentText(shlex.join(argv))
    dialog.interval.setText(interval)
    dialog.name.setText(name)
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: isinstance(window.current_view(), SessionView) and window.current_view().live is not None, timeout=10000
    )
    return window.current_view()


def test_run_from_dialog_plots_phases_stops_and_reopens(qtbot, window):
    # a real child that announces its phases on MEMVIEW_FD (load +30 MiB, parse +90 MiB, render +40 MiB)
    view = _run_from_dialog(qtbot, window, workload("ui_phases.py", 60), name="ui-phases")
    live = view.live
    pid = live.session.proc.pid
    assert view.stop_button.isVisible() and view.stop_button.isEnabled()

    # samples arrive; phases appear in the lane as the child announces them (open, then closed)
    qtbot.waitUntil(lambda: (view.buffers.get("rss") and view.buffers["rss"].count or 0) > 5, timeout=10000)
    qtbot.waitUntil(lambda: any(s.label == "load" for s in view.plot.lane_item.spans), timeout=10000)
    qtbot.waitUntil(
        lambda: (
            [(s.label, s.open) for s in view.plot.lane_item.spans]
            == [("load", False), ("parse", False), ("render", False)]
        ),
        timeout=15000,
    )
    qtbot.waitUntil(lambda: view.side.phases.rowCount() == 3)
    assert [view.side.phases.item(i, 0).text().strip() for i in range(3)] == ["load", "parse", "render"]
    rows = {p["name"]: p for p in view.phases}
    # exact per-phase peaks (the tracker resets the kernel's high-water mark at each phase start)
    assert rows["parse"]["peak_source"] != "sampled"
    assert rows["parse"]["peak_rss_bytes"] - rows["load"]["peak_rss_bytes"] > 80 * MiB
    assert view.side.phases.item(1, 2).text().startswith(f"{rows['parse']['peak_rss_bytes'] / MiB:.1f} MiB")
    # the plotted curve reaches the child's real footprint: parse's exact (kernel) peak, within 2%
    exact = rows["parse"]["peak_rss_bytes"]
    assert exact > 120 * MiB
    qtbot.waitUntil(lambda: view.plot.total.yData is not None and view.plot.total.yData.max() > 0.9 * exact)
    plotted = float(view.plot.total.yData.max())
    assert abs(plotted - exact) / exact < 0.02, (plotted / MiB, exact / MiB)
    assert _vm(pid, "VmRSS") < exact - 80 * MiB  # parse's and render's data were freed: the plot remembers

    # the library shows it while it records
    qtbot.waitUntil(lambda: live.session_id in window.library.visible_ids())
    assert window.library.row_for(live.session_id)["status"] == "running"

    # Stop ends the command (SIGTERM) and the session is closed in the store
    qtbot.mouseClick(view.stop_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.summary is not None, timeout=15000)
    assert view.summary["status"] == "completed" and view.summary["signal"] == 15
    assert view.side.values["Exit status"].text() == "killed by SIGTERM"
    assert not view.stop_button.isEnabled()
    sid = live.session_id
    stored = Store(window.db_path).session(sid)
    assert stored["name"] == "ui-phases" and stored["status"] == "completed"
    assert [p["name"] for p in Store(window.db_path).phases(sid)] == ["load", "parse", "render"]

    peak_text, live_max = view.side.values["Peak"].text(), plotted_max(view)
    assert peak_text == f"{stored['peak_rss_bytes'] / MiB:.1f} MiB"

    # find it in the library with the filter box, reopen it after closing its tab
    qtbot.keyClicks(window.library.filter, "ui-phases")
    qtbot.waitUntil(lambda: window.library.visible_ids() == [sid])
    window.close_tab(window.tabs.indexOf(view))
    assert sid not in window.views
    lib = window.library.view
    index = window.library.proxy.index(0, 0)
    where = lib.visualRect(index).center()
    qtbot.mouseClick(lib.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=where)
    qtbot.mouseDClick(lib.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=where)
    qtbot.waitUntil(lambda: sid in window.views and window.views[sid].summary is not None, timeout=10000)
    reopened = window.views[sid]
    assert reopened.live is None and not reopened.stop_button.isVisible()
    assert plotted_max(reopened) == live_max  # every sample the live view drew was stored
    assert [s.label for s in reopened.plot.lane_item.spans] == ["load", "parse", "render"]
    assert reopened.side.values["Peak"].text() == peak_text


def plotted_max(view: SessionView) -> float:
    return float(np.max(view.buffers["rss"].v))


def test_a_command_that_does_not_exist_is_one_clear_message(qtbot, window):
    window.act_run.trigger()
    dialog = window.dialog
    dialog.command.setCurrentText("no-such-command-xyz --flag")
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.dialog is not dialog and window.dialog is not None, timeout=10000)
    assert window.dialog.text() == "command not found: no-such-command-xyz"
    assert not window.live and window.tabs.count() == 0


def test_run_dialog_rejects_bad_input_and_keeps_it(qtbot, window, tmp_path):
    window.act_run.trigger()
    dialog = window.dialog
    dialog.command.setCurrentText('python -c "unterminated')
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "cannot split the command line" in dialog.error.text()
    assert dialog.command.currentText() == 'python -c "unterminated'
    dialog.command.setCurrentText("true")
    dialog.interval.setText("fast")
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.error.text().startswith("interval:")
    dialog.interval.setText("50ms")
    dialog.cwd.setText(str(tmp_path / "missing"))
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    assert "working directory does not exist" in dialog.error.text()
    dialog.env.setPlainText("GOOD=1\nnot an assignment")
    dialog.cwd.setText(str(tmp_path))
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    assert dialog.error.text().startswith("environment line 2")
    dialog.reject()
    assert not window.live


def test_env_cwd_and_shell_splitting_reach_the_child(qtbot, window, tmp_path):
    out = tmp_path / "seen.txt"
    code = "import os, sys; open(sys.argv[1], 'w').write(os.getcwd() + '|' + os.environ['MV_TEST'] + '|' + sys.argv[2])"
    window.act_run.trigger()
    dialog = window.dialog
    # quoting is split like a shell would, and no shell runs it ($HOME stays literal)
    dialog.command.setCurrentText(shlex.join(["python3", "-c", code, str(out)]) + " 'two words $HOME'")
    dialog.cwd.setText(str(tmp_path))
    dialog.env.setPlainText("MV_TEST=hello world")
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: window.current_view() is not None and window.current_view().summary is not None, timeout=15000
    )
    assert out.read_text() == f"{tmp_path}|hello world|two words $HOME"
    assert window.current_view().summary["exit_code"] == 0


def test_settings_remember_interval_command_and_geometry(qtbot, tmp_path, settings, window):
    view = _run_from_dialog(qtbot, window, workload("hold.py", 10, 0.3), interval="30ms")
    qtbot.waitUntil(lambda: view.summary is not None, timeout=15000)
    window.resize(640, 560)  # inside the offscreen screen (restoreGeometry clamps to it)
    closed = (window.width(), window.height())  # what it really took: a session view's minimum width exceeds 640
    window.close()
    from memview.ui.main_window import MainWindow

    again = MainWindow(tmp_path / "memview.db", settings)
    qtbot.addWidget(again)
    assert abs(settings.interval - 0.03) < 1e-9
    assert settings.recent("command")[0] == shlex.join(workload("hold.py", 10, 0.3))
    assert settings.last_db == str(tmp_path / "memview.db")
    screen = again.screen().availableGeometry()
    # the size it was closed at, except that restoreGeometry fits a window wider than the screen onto it
    assert again.height() == closed[1] == 560
    assert again.width() == closed[0] or again.frameGeometry().width() <= screen.width() < closed[0]
    qtbot.waitUntil(lambda: again.store is not None)
    again.act_run.trigger()
    assert again.dialog.interval.text() == "30ms"
    assert again.dialog.command.currentText() == shlex.join(workload("hold.py", 10, 0.3))
    again.dialog.reject()
