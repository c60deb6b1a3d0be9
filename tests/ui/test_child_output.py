"""A launched command's stdout and stderr: shown in the session's Output pane (bounded,
searchable), kept beside the session, and never written into memview's own output, even after
a detach."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6 import QtGui
from support import kill_and_reap
from test_window import _run_from_dialog

from memview.ui import theme
from memview.ui.child_output import MAX_LINES

HERE = Path(__file__).resolve().parent


def test_output_pane_shows_both_streams_searchable_and_after_reopening(qtbot, window, tmp_path):
    view = _run_from_dialog(
        qtbot, window, [sys.executable, str(HERE / "workloads" / "marked_phases.py"), str(tmp_path / "out.json")]
    )
    pane = view.output
    assert view.output_button.isVisible() and pane.isVisible()
    qtbot.waitUntil(lambda: "stderr line from the child" in pane.plain_text(), timeout=20000)
    assert "stdout line from the child" in pane.plain_text()
    # stderr in the error colour
    block = pane.text.document().find("stderr line from the child").block()
    colour = block.begin().fragment().charFormat().foreground().color().name()
    assert colour == QtGui.QColor(theme.current().bad).name()
    # search: the match is selected and counted
    pane.search.setText("stderr line")
    assert pane.text.textCursor().selectedText() == "stderr line"
    assert pane.matches.text() == "1 found"
    # kept beside the session, and shown again when the session is reopened
    qtbot.waitUntil(lambda: view.summary is not None, timeout=20000)
    sid = view.session_id
    folder = window.db_path.with_name(window.db_path.stem + ".artefacts") / f"session-{sid}"
    assert (folder / "child-stdout.log").read_text() == "stdout line from the child\n"
    window.close_tab(window.tabs.indexOf(view))
    again = window.open_session(sid)
    qtbot.waitUntil(lambda: "stderr line from the child" in again.output.plain_text(), timeout=20000)
    # folded in a stored session (the plot keeps the room); its long path never widens the window
    assert again.output_button.isVisible() and not again.output_button.isChecked()
    again.output_button.setChecked(True)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1000 and hint.height() <= 650, hint


def test_output_pane_is_bounded(qtbot, window):
    n = MAX_LINES * 3
    view = _run_from_dialog(qtbot, window, [sys.executable, "-c", f"for i in range({n}): print('line', i)"])
    qtbot.waitUntil(lambda: view.summary is not None, timeout=30000)
    qtbot.waitUntil(lambda: f"line {n - 1}" in view.output.plain_text(), timeout=20000)
    assert view.output.text.document().blockCount() <= MAX_LINES


def test_a_detached_child_writes_into_its_file_not_into_memview(qtbot, window):
    code = "import time\nfor i in range(100000):\n    print('tick', i, flush=True)\n    time.sleep(0.05)\n"
    view = _run_from_dialog(qtbot, window, [sys.executable, "-c", code])
    live = view.live
    pid = live.session.proc.pid
    qtbot.waitUntil(lambda: "tick 3" in view.output.plain_text(), timeout=20000)
    try:
        live.detach()
        qtbot.waitUntil(lambda: not live.running, timeout=20000)
        # the kernel says where the child's stdout and stderr go: its log files, not memview's fds
        ours = {os.readlink(f"/proc/self/fd/{fd}") for fd in (1, 2)}
        theirs = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (1, 2)}
        assert not ours & theirs
        out = Path(os.readlink(f"/proc/{pid}/fd/1"))
        assert out.name == "child-stdout.log"
        size = out.stat().st_size
        qtbot.waitUntil(lambda: out.stat().st_size > size + 100, timeout=20000)  # it writes on, unblocked
    finally:
        kill_and_reap(live.session.proc)  # detached: memview no longer waits for it
