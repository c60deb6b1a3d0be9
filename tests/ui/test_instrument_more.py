"""Issue 18 leftovers, driven in the real window: phase names are not elided when there is room
(and the full name is in the tooltip when there is not), the compare view shows its progress
while it loads, the pressure band is not drawn across a gap, overlapping mark labels thin out.
"""

from __future__ import annotations

import subprocess
import sys

from PySide6 import QtCore, QtWidgets
from test_instrument import HERE, _open, recorded  # noqa: F401 - the fixture


def test_phase_names_are_whole_at_1000_px(qtbot, window, recorded):  # noqa: F811
    window.resize(1000, 650)
    qtbot.waitUntil(lambda: window.width() == 1000)
    view = _open(qtbot, window)
    side = view.side
    qtbot.waitUntil(lambda: side.phases.isVisible() and side.phases.rowCount() == 2, timeout=10000)
    qtbot.waitUntil(lambda: side.phases.columnWidth(0) >= side.name_width_needed(), timeout=10000)
    assert view.plot.width() >= 360  # the room came from the plot, which stays usable
    for r in range(side.phases.rowCount()):
        item = side.phases.item(r, 0)
        assert item.toolTip().startswith(item.text().strip() + ": from ")


def test_a_long_phase_name_is_elided_with_the_full_name_in_its_tooltip(qtbot):
    from memview.ui.side_panel import SidePanel

    split = QtWidgets.QSplitter()
    qtbot.addWidget(split)
    plot = QtWidgets.QWidget()
    side = SidePanel()
    split.addWidget(plot)
    split.addWidget(side)
    split.resize(760, 500)
    split.setSizes([510, 250])
    split.show()
    qtbot.waitExposed(split)
    long = "extract_tables_from_every_scanned_page_of_the_annual_report_" * 2
    side.set_phases(
        [
            {
                "name": long,
                "depth": 0,
                "start_s": 0.0,
                "end_s": 1.0,
                "peak_rss_bytes": 2**20,
                "peak_source": "sampled",
                "growth_bytes": 0,
            }
        ]
    )
    qtbot.waitUntil(lambda: split.sizes()[1] > 250, timeout=5000)  # it took what the plot could give
    assert split.sizes()[0] >= 360
    assert side.phases.columnWidth(0) < side.name_width_needed()  # still too long: elided...
    assert side.phases.item(0, 0).toolTip().startswith(long + ": from")  # ...and whole in the tooltip
    # the user drags the divider: the 5 Hz refresh and a resize no longer take the width back
    handle = split.handle(1)
    qtbot.mousePress(handle, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(2, 5))
    qtbot.mouseMove(handle, QtCore.QPoint(60, 5))
    qtbot.mouseRelease(handle, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(60, 5))
    dragged = split.sizes()
    side.set_phases(
        [
            {
                "name": long,
                "depth": 0,
                "start_s": 0.0,
                "end_s": 1.0,
                "peak_rss_bytes": 2**20,
                "peak_source": "sampled",
                "growth_bytes": 0,
            }
        ]
    )
    split.resize(761, 500)
    qtbot.waitUntil(lambda: split.width() == 761)
    for _ in range(3):  # the refits the resize queued (zero-delay timers) run here
        QtWidgets.QApplication.processEvents()
    assert split.sizes()[0] >= dragged[0]  # nothing moved the divider back


def test_the_compare_view_shows_its_progress_while_it_loads(qtbot, window, recorded):  # noqa: F811
    from memview.ui.compare_view import CompareView

    for name in ("second", "third"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "memview",
                "run",
                "--db",
                str(window.db_path),
                "-q",
                "-i",
                "20ms",
                "--name",
                name,
                "--",
                sys.executable,
                str(HERE / "workloads" / "marked_phases.py"),
                str(window.db_path.parent / f"{name}.json"),
            ],
            check=True,
            timeout=120,
            capture_output=True,
        )
    window.refresh_library()
    qtbot.waitUntil(lambda: len(window.library.visible_ids()) == 3, timeout=10000)
    window.library.select(1)
    window.library.select(2, add=True)
    window.library.select(3, add=True)
    window.compare_selected()
    view = window.tabs.currentWidget()
    assert isinstance(view, CompareView)
    seen: list[int] = []
    view.progress.valueChanged.connect(seen.append)
    # the worker's answers arrive through the event loop, which has not run yet: the view is loading
    assert view.progress.isVisible() and view.progress.value() == 0 and view.progress.maximum() == 3
    assert view.status.text().startswith("Loading")
    with qtbot.waitSignal(view.ready, timeout=30000):
        pass
    assert seen == [1, 2, 3]  # one step per session read, in order
    assert not view.progress.isVisible() and view.status.text() == "3 sessions"


def _no_overlap(labels) -> bool:
    rects = [label.sceneBoundingRect() for label in labels]
    return not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])


def test_overlapping_mark_labels_thin_out(qtbot, window, tmp_path):
    code = (
        "import time\nfrom memview.probe import mark\ntime.sleep(0.3)\n"
        "for i in range(30):\n    mark(f'step {i:02d}')\n    time.sleep(0.005)\ntime.sleep(0.6)\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "memview",
            "run",
            "--db",
            str(window.db_path),
            "-q",
            "-i",
            "20ms",
            "--",
            sys.executable,
            "-c",
            code,
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    window.refresh_library()
    view = _open(qtbot, window)
    plot = view.plot
    qtbot.waitUntil(lambda: len(plot.mark_lines) == 30, timeout=10000)
    plot.main.vb.autoRange()
    qtbot.waitUntil(lambda: bool(plot.visible_mark_labels()), timeout=10000)
    whole = plot.visible_mark_labels()
    assert 0 < len(whole) < 30 and _no_overlap(whole)  # thinned: no name drawn over another
    times = sorted(line.value() for line in plot.mark_lines)
    plot.main.vb.setXRange(times[0] - 0.01, times[-1] + 0.2, padding=0)  # zoom in: room for more names
    qtbot.waitUntil(lambda: len(plot.visible_mark_labels()) > len(whole), timeout=10000)
    assert _no_overlap(plot.visible_mark_labels())
    assert all(line.toolTip().startswith("mark: step ") for line in plot.mark_lines)  # hidden names still read


def test_the_pressure_band_is_not_drawn_across_a_gap(qtbot, window):
    from test_instrument import _Server

    from memview.ui.dialogs import WatchDialog
    from memview.ui.live_view import SessionView

    server = _Server()
    try:
        window.act_watch.trigger()
        dialog = window.dialog
        assert isinstance(dialog, WatchDialog)
        dialog.url.setCurrentText(f"http://127.0.0.1:{server.port}/api/v1/memory/profile")
        dialog.interval.setText("200ms")
        dialog.ok_button.click()
        qtbot.waitUntil(
            lambda: isinstance(window.current_view(), SessionView) and window.current_view().live is not None,
            timeout=10000,
        )
        view = window.current_view()
        qtbot.waitUntil(
            lambda: view.buffers.get("pressure") is not None and view.buffers["pressure"].count > 2, timeout=15000
        )
        server.post("/mode?fail=500")
        qtbot.waitUntil(lambda: any("500" in g["reason"] for g in view.gaps), timeout=15000)
        server.post("/mode?fail=none")
        gap = next(g for g in view.gaps if "500" in g["reason"])
        qtbot.waitUntil(lambda: gap["end_s"] is not None, timeout=15000)
        qtbot.waitUntil(lambda: view.buffers["pressure"].last_t > gap["end_s"], timeout=15000)
        view.redraw()
        band = [s for s in view.plot.lane_item.spans if s.key and s.key[0] == "pressure"]
        assert any(s.end <= gap["start_s"] for s in band) and any(s.start >= gap["end_s"] for s in band)
        assert not [s for s in band if s.start < gap["end_s"] and s.end > gap["start_s"]], band
    finally:
        server.stop()
