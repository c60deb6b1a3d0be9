"""Regenerate the GUI screenshots in docs/screenshots/ from the real app (offscreen Qt).

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [OUT_DIR]

Everything shown is real: a fresh database in a temporary folder, real child processes
(tests/workloads/ui_phases.py announces its phases on MEMVIEW_FD), a real py-spy capture fired by
a phase-scoped threshold, and the process picker listing this machine's processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6 import QtCore, QtWidgets  # noqa: E402

from memview.ui.live_session import RunSpec  # noqa: E402
from memview.ui.main_window import MainWindow  # noqa: E402
from memview.ui.settings import Settings  # noqa: E402

WORKLOADS = ROOT / "tests" / "workloads"
SIZE = (1440, 880)


def wait(app: QtWidgets.QApplication, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)


def settle(app: QtWidgets.QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)


def phases_argv(hold: float) -> list[str]:
    return [sys.executable, str(WORKLOADS / "ui_phases.py"), str(hold)]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("memview")
    tmp = Path(tempfile.mkdtemp(prefix="memview-shots-"))
    win = MainWindow(tmp / "memview.db", Settings.at(tmp / "settings.ini"))
    win.resize(*SIZE)
    win.show()
    wait(app, lambda: win.store is not None)

    # 1. a stored session with phases and a capture: a threshold scoped to "parse" fires py-spy
    stored = win.start_session(RunSpec(argv=phases_argv(1.5), interval=0.02, name="extract big.pdf",
                                       threshold="parse:100MB", capture="py-spy-dump"))
    assert stored is not None
    wait(app, lambda: stored.state == "closed", 60)
    sid = stored.session_id
    win.edit_session(sid, tags=["pdf", "nightly"])
    # a second, smaller run so the library has more than one row
    small = win.start_session(RunSpec(argv=[sys.executable, str(WORKLOADS / "hold.py"), "40", "0.6"],
                                      interval=0.02, name="extract small.pdf"))
    assert small is not None
    wait(app, lambda: small.state == "closed", 30)
    for i in range(win.tabs.count() - 1, -1, -1):
        win.close_tab(i)
    view = win.open_session(sid)
    wait(app, lambda: view.summary is not None and bool(view.captures))
    settle(app, 0.5)
    win.refresh_library()
    win.library.select(sid)
    settle(app, 0.5)
    win.grab().save(str(out / "stored-session.png"))

    # 2. recording: a live child with phases, the threshold line drawn
    live = win.start_session(RunSpec(argv=phases_argv(30), interval=0.02, name="extract big.pdf (after fix)",
                                     threshold="110MiB", capture="none"))
    assert live is not None
    wait(app, lambda: live.session_id in win.views)
    lview = win.views[live.session_id]
    wait(app, lambda: len([p for p in lview.phases if p.get("end_s") is not None]) == 3, 30)
    settle(app, 1.5)
    win.grab().save(str(out / "recording.png"))
    live.stop()
    wait(app, lambda: live.state == "closed", 30)

    # 3. the process picker, filtered to a process started for the picture
    holder = subprocess.Popen([sys.executable, str(WORKLOADS / "hold.py"), "120", "60", "worker --queue=pdf"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        win.act_attach.trigger()
        picker = win.dialog
        picker.resize(980, 620)
        wait(app, lambda: holder.pid in picker.visible_pids(), 20)
        picker.select_pid(holder.pid)
        settle(app, 0.5)
        picker.grab().save(str(out / "process-picker.png"))
        picker.reject()
    finally:
        holder.kill()
        holder.wait()
    win.close()
    wait(app, lambda: not win.isVisible())
    print(f"wrote {', '.join(p.name for p in sorted(out.glob('*.png')))} to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
