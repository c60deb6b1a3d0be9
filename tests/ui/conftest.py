"""Fixtures for the desktop app's tests: a real main window on a fresh database, offscreen.

Every recording a test starts is stopped and closed in the store before the window goes away,
so no test leaves a child process or a ``running`` session behind.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _sound_qt_binding(request: pytest.FixtureRequest, qapp: object) -> None:
    """A broken binding aborts the interpreter mid-suite: skip the UI tests, fail one loudly."""
    from memview.ui.qt_check import binding_problem

    problem = binding_problem()
    if problem and request.node.name != "test_qt_binding_is_sound":
        pytest.skip(problem)


@pytest.fixture
def settings(tmp_path: Path):
    from memview.ui.settings import Settings

    return Settings.at(tmp_path / "settings.ini")


@pytest.fixture
def window(qtbot, tmp_path: Path, settings):
    from memview.ui.main_window import MainWindow

    win = MainWindow(tmp_path / "memview.db", settings)
    # not qtbot.addWidget: qtbot would close it before the cleanup below, and closing with a
    # recording still running asks (a modal box) — a failed test would hang there
    win.resize(1400, 860)
    win.show()
    qtbot.waitUntil(lambda: win.store is not None, timeout=10000)
    yield win
    for live in list(win.live):
        if live.running and live.session is not None:
            proc = getattr(live.session, "proc", None)
            if proc is not None and proc.returncode is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            else:
                live.recorder.stop("test teardown")
        live.wait(30)
    qtbot.waitUntil(lambda: not any(lv.running for lv in win.live), timeout=30000)
    if win.isVisible():
        win.close()
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=30000)
    win.deleteLater()
