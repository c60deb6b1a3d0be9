"""Regenerate the GUI screenshots in docs/screenshots/ from the real app (offscreen Qt).

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [OUT_DIR]

Everything shown is real: a fresh database in a temporary folder, a real kreuzberg extraction
with phases (tests/ui/workloads/kreuzberg_extract.py; tests/workloads/ui_phases.py when kreuzberg
is not installed), a real py-spy capture fired by a phase-scoped threshold, a real HTTP service
(tests/workloads/memserver.py) watched through an outage, a comparison of two runs, the process
picker listing this machine's processes, and the window at 1000x650 under a dark palette.
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

import json  # noqa: E402
import urllib.request  # noqa: E402

from PySide6 import QtCore, QtTest, QtWidgets  # noqa: E402

from memview.ui import theme  # noqa: E402
from memview.ui.live_session import RunSpec, WatchSpec  # noqa: E402
from memview.ui.main_window import MainWindow  # noqa: E402
from memview.ui.settings import Settings  # noqa: E402

WORKLOADS = ROOT / "tests" / "workloads"
UI_WORKLOADS = ROOT / "tests" / "ui" / "workloads"
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


def extraction_argv(pages: int) -> tuple[list[str], str]:
    """A kreuzberg extraction with phases, or the stand-in workload without kreuzberg."""
    try:
        import kreuzberg  # noqa: F401
    except ImportError:
        return phases_argv(1.5), "parse:100MB"
    return [sys.executable, str(UI_WORKLOADS / "kreuzberg_extract.py"), str(pages)], "extract:60MB"


def hover(app: QtWidgets.QApplication, view: object, t: float, y: float) -> None:
    """Move the real mouse over the plot at (t, y) so the crosshair tooltip shows."""
    plot = view.plot  # type: ignore[attr-defined]
    scene = plot.main.vb.mapViewToScene(QtCore.QPointF(t, y))
    QtTest.QTest.mouseMove(plot.viewport(), plot.mapFromScene(scene))
    wait(app, lambda: plot.tip.isVisible(), 10)


def close_tabs(win: MainWindow) -> None:
    for i in range(win.tabs.count() - 1, -1, -1):
        win.close_tab(i)


def post(port: int, path: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("memview")
    tmp = Path(tempfile.mkdtemp(prefix="memview-shots-"))
    win = MainWindow(tmp / "memview.db", Settings.at(tmp / "settings.ini"))
    win.resize(*SIZE)
    win.show()
    wait(app, lambda: win.store is not None)

    # 1. a stored session with phases and a capture: a threshold scoped to one phase fires py-spy
    argv, rule = extraction_argv(400)
    stored = win.start_session(
        RunSpec(argv=argv, interval=0.02, name="extract big.pdf", threshold=rule, capture="py-spy-dump")
    )
    assert stored is not None
    wait(app, lambda: stored.state == "closed", 120)
    sid = stored.session_id
    win.edit_session(sid, tags=["pdf", "nightly"])
    # a second, smaller run: the library has more than one row, and the comparison two curves
    argv_small, _ = extraction_argv(150)
    small = win.start_session(RunSpec(argv=argv_small, interval=0.02, name="extract small.pdf"))
    assert small is not None
    wait(app, lambda: small.state == "closed", 120)
    close_tabs(win)
    view = win.open_session(sid)
    wait(app, lambda: view.summary is not None and bool(view.captures))
    settle(app, 0.5)
    win.refresh_library()
    win.library.select(sid)
    settle(app, 0.5)
    inner = [p for p in view.phases if p.get("end_s") is not None]
    busiest = max(inner, key=lambda p: p.get("peak_rss_bytes") or 0)
    t = busiest["start_s"] + 0.6 * (busiest["end_s"] - busiest["start_s"])
    hover(app, view, t, (view.buffers["rss"].value_at(t) or 0) * 0.5)
    settle(app, 0.3)
    win.grab().save(str(out / "stored-session.png"))

    # 2. recording: a live child with phases, the threshold line drawn, its output below
    live = win.start_session(
        RunSpec(argv=phases_argv(30), interval=0.02, name="phases demo (live)", threshold="110MiB", capture="none")
    )
    assert live is not None
    wait(app, lambda: live.session_id in win.views)
    lview = win.views[live.session_id]
    wait(app, lambda: len([p for p in lview.phases if p.get("end_s") is not None]) == 3, 30)
    settle(app, 1.5)
    win.grab().save(str(out / "recording.png"))
    live.stop()
    wait(app, lambda: live.state == "closed", 30)

    # 3. a watched service through an outage: its gap is a gap, with the reason on it
    server = subprocess.Popen([sys.executable, str(WORKLOADS / "memserver.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        watch = win.start_session(
            WatchSpec(url=f"http://127.0.0.1:{port}/api/v1/memory/profile", interval=0.2, name="pdf-service")
        )
        assert watch is not None
        wait(app, lambda: watch.session_id in win.views)
        wview = win.views[watch.session_id]
        wait(app, lambda: wview.buffers.get("rss") is not None and wview.buffers["rss"].count > 8, 30)
        post(port, "/grow?mb=60")
        settle(app, 2.0)
        post(port, "/mode?fail=500")
        wait(app, lambda: bool(wview.gaps), 20)
        post(port, "/grow?mb=120")
        settle(app, 3.0)
        post(port, "/mode?fail=none")
        wait(app, lambda: wview.gaps[-1]["end_s"] is not None, 20)
        settle(app, 2.0)
        post(port, "/shrink?mb=100")
        settle(app, 2.0)
        watch.stop()
        wait(app, lambda: watch.state == "closed", 30)
        wait(app, lambda: wview.summary is not None, 30)
        gap = wview.gaps[-1]
        hover(app, wview, (gap["start_s"] + gap["end_s"]) / 2, (wview.buffers["rss"].max or 0) * 0.4)
        settle(app, 0.3)
        win.grab().save(str(out / "watch-outage.png"))
    finally:
        server.kill()
        server.wait()

    # 4. a comparison of the two extractions, aligned at the start
    close_tabs(win)
    win.library.select(sid)
    win.library.select(small.session_id, add=True)
    win.compare_selected()
    compare = win.tabs.currentWidget()
    wait(app, lambda: len(getattr(compare, "loaded", [])) == 2, 30)
    settle(app, 0.8)
    win.grab().save(str(out / "compare.png"))

    # 5. the process picker, filtered to a process started for the picture
    holder = subprocess.Popen(
        [sys.executable, str(WORKLOADS / "hold.py"), "120", "60", "worker --queue=pdf"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        win.act_attach.trigger()
        picker = win.dialog
        picker.resize(980, 620)
        wait(app, lambda: holder.pid in picker.visible_pids(), 20)
        picker.filter.setText("queue=pdf")
        wait(app, lambda: picker.selected_pid() == holder.pid, 20)
        settle(app, 0.5)
        picker.grab().save(str(out / "process-picker.png"))
        picker.reject()
    finally:
        holder.kill()
        holder.wait()
    win.close()
    wait(app, lambda: not win.isVisible())

    # 6. the smallest supported window, under a dark palette
    app.setPalette(theme.dark_palette())
    dark = MainWindow(tmp / "memview.db", Settings.at(tmp / "settings-dark.ini"))
    dark.resize(1000, 650)
    dark.show()
    wait(app, lambda: dark.store is not None)
    dview = dark.open_session(sid)
    wait(app, lambda: dview.summary is not None)
    wait(app, lambda: bool(dark.library.visible_ids()))
    dark.library.select(sid)
    settle(app, 0.8)
    dark.grab().save(str(out / "dark-1000x650.png"))
    dark.close()
    wait(app, lambda: not dark.isVisible())
    print(f"wrote {', '.join(p.name for p in sorted(out.glob('*.png')))} to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
