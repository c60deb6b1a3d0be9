"""Attach through the process picker; the draggable threshold line moves the live trigger."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from support import MiB, kill_and_reap, workload

from memview.store import Store
from memview.ui.live_session import RunSpec
from memview.ui.live_view import SessionView
from memview.ui.process_picker import ProcessPicker


@pytest.fixture
def holder():
    marker = f"memview-picker-{uuid.uuid4().hex[:8]}"
    child = subprocess.Popen(workload("hold.py", 60, 60, marker), stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    yield child, marker
    kill_and_reap(child)


def test_picker_lists_the_process_sorted_by_rss_and_attaches(qtbot, window, holder):
    child, marker = holder
    window.act_attach.trigger()
    picker = window.dialog
    assert isinstance(picker, ProcessPicker)
    qtbot.waitUntil(lambda: child.pid in picker.visible_pids(), timeout=10000)
    # largest RSS first, like a task manager
    rss = [
        r.rss or -1
        for r in (
            picker.model.rows[picker.proxy.mapToSource(picker.proxy.index(i, 0)).row()]
            for i in range(picker.proxy.rowCount())
        )
    ]
    assert rss == sorted(rss, reverse=True)
    qtbot.keyClicks(picker.filter, marker)
    qtbot.waitUntil(lambda: picker.visible_pids() == [child.pid])
    row = next(r for r in picker.model.rows if r.pid == child.pid)
    assert row.rss is not None and row.rss > 60 * MiB and marker in row.cmdline
    assert picker.proxy.index(0, 3).data() == f"{row.rss / MiB:.1f} MiB"
    # refreshed live: another listing round arrives while the dialog is open
    rounds = picker.lister.rounds
    qtbot.waitUntil(lambda: picker.lister.rounds > rounds, timeout=10000)
    assert picker.visible_pids() == [child.pid]

    # the one match is selected, the count counts what is shown, and the keyboard alone attaches
    assert picker.selected_pid() == child.pid and picker.ok_button.isEnabled()
    assert picker.status.text().startswith(f"1 of {len(picker.model.rows)} processes shown")
    picker.interval.setText("20ms")
    picker.filter.setFocus()
    qtbot.keyClick(picker.filter, QtCore.Qt.Key.Key_Down)
    assert picker.table.hasFocus() or QtWidgets.QApplication.focusWidget() is picker.table
    qtbot.keyClick(picker.table, QtCore.Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: isinstance(window.current_view(), SessionView) and window.current_view().live is not None, timeout=10000
    )
    view = window.current_view()
    assert view.kind == "attach" and view.live.session_id is not None
    qtbot.waitUntil(lambda: view.buffers.get("rss") is not None and view.buffers["rss"].count >= 10, timeout=10000)
    assert view.buffers["rss"].max > 60 * MiB
    qtbot.mouseClick(view.stop_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.summary is not None, timeout=15000)
    assert view.summary["kind"] == "attach" and view.summary["status"] == "completed"
    assert view.summary["peak_source"] == "kernel:VmHWM"
    assert child.poll() is None  # stopping an attach leaves the process alone
    assert not picker.lister._thread.is_alive() or picker.lister._stop.is_set()


def _drag(widget: QtWidgets.QWidget, start: QtCore.QPointF, end: QtCore.QPointF, steps: int = 8) -> None:
    """A real mouse drag with the button held (QTest's mouseMove does not hold buttons in Qt 6)."""
    app = QtWidgets.QApplication.instance()
    left = QtCore.Qt.MouseButton.LeftButton
    none = QtCore.Qt.KeyboardModifier.NoModifier

    def send(
        kind: QtCore.QEvent.Type, pos: QtCore.QPointF, button: QtCore.Qt.MouseButton, buttons: QtCore.Qt.MouseButton
    ) -> None:
        glob = QtCore.QPointF(widget.mapToGlobal(pos.toPoint()))
        app.sendEvent(widget, QtGui.QMouseEvent(kind, pos, glob, button, buttons, none))

    send(QtCore.QEvent.Type.MouseMove, start, QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.NoButton)
    send(QtCore.QEvent.Type.MouseButtonPress, start, left, left)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        send(QtCore.QEvent.Type.MouseMove, p, QtCore.Qt.MouseButton.NoButton, left)
        app.processEvents()
    send(QtCore.QEvent.Type.MouseButtonRelease, end, left, QtCore.Qt.MouseButton.NoButton)
    app.processEvents()


def test_picker_keyboard_down_selects_the_first_row_and_a_closed_picker_is_never_emitted_into(qtbot, window):
    import shiboken6

    picker = ProcessPicker(window, refresh_s=0.02)
    picker.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
    picker.show()
    qtbot.waitUntil(lambda: picker.proxy.rowCount() > 1, timeout=10000)
    assert picker.selected_pid() is None
    qtbot.keyClick(picker.filter, QtCore.Qt.Key.Key_Down)
    assert picker.selected_pid() == picker.visible_pids()[0]
    assert picker.status.text().startswith(f"{picker.proxy.rowCount()} processes")
    lister = picker.lister
    rounds = lister.rounds
    qtbot.waitUntil(lambda: lister.rounds > rounds + 2, timeout=10000)  # listing all the time
    picker.reject()
    qtbot.waitUntil(lambda: not shiboken6.isValid(picker), timeout=10000)
    # the lister outlives the dialog until its thread has ended: nothing emits into a dead object
    assert shiboken6.isValid(lister)
    qtbot.waitUntil(lambda: not lister.alive, timeout=10000)


def test_dragging_the_threshold_line_moves_the_trigger(qtbot, window):
    # the child holds ~50 MiB: the rule at 120 MiB never fires; dragged to 30 MiB, it fires there
    live = window.start_session(
        RunSpec(argv=workload("hold.py", 40, 60), interval=0.02, threshold="120MiB", capture="none")
    )
    qtbot.waitUntil(lambda: live.session_id in window.views, timeout=10000)
    view = window.views[live.session_id]
    qtbot.waitUntil(lambda: view.plot.threshold is not None and view.plot.threshold.isVisible(), timeout=10000)
    assert live.recorder.threshold == 120 * MiB and view.threshold_button.isChecked()
    engine = live.setup.engine
    assert [(r.kind, r.line) for r in engine.rules] == [("size", 120 * MiB)]  # the CLI's own rule object
    assert view.plot.threshold.label.textItem.toPlainText() == "threshold 120.0 MiB"
    qtbot.waitUntil(lambda: (view.buffers.get("rss") and view.buffers["rss"].max or 0) > 40 * MiB, timeout=10000)
    assert engine.firings == []
    view.follow_button.setChecked(False)  # hold the view still while dragging
    vb = view.plot.main.vb
    vb.setYRange(0, 130 * MiB, padding=0)
    x_mid = sum(vb.viewRange()[0]) / 2
    start = view.plot.mapFromScene(vb.mapViewToScene(QtCore.QPointF(x_mid, 120 * MiB)))
    end = view.plot.mapFromScene(vb.mapViewToScene(QtCore.QPointF(x_mid, 30 * MiB)))
    _drag(view.plot.viewport(), QtCore.QPointF(start), QtCore.QPointF(end))
    moved = view.plot.threshold.value()
    assert abs(moved - 30 * MiB) < 3 * MiB, moved / MiB  # it followed the mouse
    assert live.recorder.threshold == int(round(moved))  # the recorder's threshold followed the line
    assert [r.line for r in engine.rules] == [int(round(moved))]  # and so did the trigger rule
    assert view.plot.threshold.label.textItem.toPlainText() == f"threshold {moved / MiB:.1f} MiB"
    # the rule fires at the new line, on a real sample above it
    qtbot.waitUntil(lambda: len(engine.firings) == 1, timeout=5000)
    firing = engine.firings[0]
    assert firing.rule.line == int(round(moved)) and firing.value >= moved
    qtbot.mouseClick(view.stop_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.summary is not None, timeout=15000)
    events = Store(window.db_path).events(live.session_id)
    # the moves are part of the record, and so is the one firing (at the new line, not the old)
    assert [e["data"]["threshold_bytes"] for e in events if e["kind"] == "threshold"] == [120 * MiB, int(round(moved))]
    triggers = [e["data"] for e in events if e["kind"] == "trigger"]
    assert [t["line"] for t in triggers] == [int(round(moved))]


def test_threshold_button_adds_a_line_above_the_peak(qtbot, window):
    live = window.start_session(RunSpec(argv=workload("hold.py", 30, 60), interval=0.02, capture="none"))
    qtbot.waitUntil(lambda: live.session_id in window.views, timeout=10000)
    view = window.views[live.session_id]
    qtbot.waitUntil(lambda: (view.buffers.get("rss") and view.buffers["rss"].max or 0) > 30 * MiB, timeout=10000)
    assert live.recorder.threshold is None
    view.threshold_button.click()
    line = view.plot.threshold.value()
    assert line > view.buffers["rss"].max and live.recorder.threshold == int(line)
    assert [r.line for r in live.setup.engine.rules] == [int(line)]  # a rule the engine evaluates
    view.threshold_button.click()
    assert live.recorder.threshold is None and not view.plot.threshold.isVisible()
    assert live.setup.engine.rules == []


@pytest.mark.parametrize("choice", ["Stop", "Detach"])
def test_closing_while_recording_asks_and_closes_the_session(qtbot, window, choice):
    live = window.start_session(RunSpec(argv=workload("hold.py", 20, 60), interval=0.02, capture="none"))
    qtbot.waitUntil(lambda: live.state == "recording" and live.session_id in window.views, timeout=10000)
    proc = live.session.proc
    asked = []

    def answer() -> None:
        box = window.dialog
        asked.append(box.text())
        next(b for b in box.buttons() if b.text() == choice).click()

    QtCore.QTimer.singleShot(100, answer)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15000)
    assert asked and "still running" in asked[0]
    row = Store(window.db_path).session(live.session_id)
    try:
        if choice == "Stop":
            assert row["status"] == "completed" and row["signal"] == 15
            assert proc.returncode == -15  # reaped: no child left behind
        else:
            assert row["status"] == "detached" and row["ended_at"] is not None
            assert proc.returncode is None and os.waitpid(proc.pid, os.WNOHANG) == (0, 0)  # still running
    finally:
        if proc.returncode is None:
            kill_and_reap(proc)  # the detached child: reaped here, or its Popen warns in a later test


def test_capture_now_shows_progress_until_the_capture_reports(qtbot, window):
    from memview.ui.dialogs import RunDialog

    window.act_run.trigger()
    dialog = window.dialog
    assert isinstance(dialog, RunDialog)
    dialog.command.setCurrentText(" ".join(workload("ui_phases.py", 60)))
    dialog.interval.setText("50ms")
    dialog.capture.setCurrentText("py-spy-dump")
    qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: isinstance(window.current_view(), SessionView) and window.current_view().live is not None, timeout=10000
    )
    view = window.current_view()
    qtbot.waitUntil(lambda: view.buffers.get("rss") is not None and view.buffers["rss"].count > 3, timeout=10000)
    view.capture_now()
    assert view.capture_button.text() == "Capturing…" and not view.capture_button.isEnabled()
    assert view.capture_progress.isVisibleTo(view)
    qtbot.waitUntil(lambda: any(c.get("status") not in ("running", None) for c in view.captures), timeout=60000)
    qtbot.waitUntil(lambda: view.capture_button.text() == "Capture now" and view.capture_button.isEnabled())
    assert not view.capture_progress.isVisibleTo(view)
    assert "py-spy" in view.banner.text()
