"""Issue 19.6 in the GUI: the Python heap sites a ``phase(..., tracemalloc=True)`` grew are listed
in the side panel when the phase is selected (and in its tooltip), and lined up in the compare view.

The sessions are real ``memview run`` recordings of tests/ui/workloads/heap_phase.py, which writes
where it allocated and how many bytes the objects hold (``sys.getsizeof``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtCore

from memview.ui.live_view import SessionView
from memview.units import parse_size

HERE = Path(__file__).resolve().parent
SCREENSHOT = os.environ.get("MEMVIEW_SCREENSHOT_DIR")


def _record(db: Path, out: Path, name: str) -> dict:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "memview",
            "run",
            "--db",
            str(db),
            "-q",
            "-i",
            "20ms",
            "--name",
            name,
            "--capture",
            "none",
            "--",
            sys.executable,
            str(HERE / "workloads" / "heap_phase.py"),
            str(out),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    return json.loads(out.read_text())


def _open(qtbot, window, sid: int) -> SessionView:
    qtbot.waitUntil(lambda: sid in window.library.visible_ids(), timeout=10000)
    view = window.open_session(sid)
    qtbot.waitUntil(lambda: view.summary is not None and view.buffers.get("rss") is not None, timeout=20000)
    return view


def test_selecting_a_traced_phase_lists_its_top_allocators(qtbot, window, tmp_path):
    truth = _record(window.db_path, tmp_path / "child.json", "heap")
    window.refresh_library()
    view = _open(qtbot, window, 1)
    side = view.side
    assert not side.sites.isVisible()  # nothing to list until a traced phase is picked
    row = next(i for i in range(side.phases.rowCount()) if side.phases.item(i, 0).text().strip() == "parse")
    rect = side.phases.visualItemRect(side.phases.item(row, 0))
    qtbot.mouseClick(side.phases.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(side.sites.isVisible, timeout=5000)
    where, grown = side.site_rows()[0]  # the largest growth first
    assert where == f"{truth['file']}:{truth['line']}"
    assert grown == pytest.approx(truth["bytes"], rel=0.10)
    assert side.sites.item(0, 0).text() == f"heap_phase.py:{truth['line']}"
    # only the program's own sites: not the probe's (its first message imports socket, ~200 KiB)
    assert {w.rsplit(":", 1)[0] for w, _ in side.site_rows()} == {truth["file"]}, side.site_rows()
    assert side.sites_heading.text() == "Python heap grown in parse"
    assert f"heap_phase.py:{truth['line']}" in side.phases.item(row, 0).toolTip()
    if SCREENSHOT:
        window.resize(1280, 760)
        qtbot.waitUntil(lambda: window.width() == 1280 and side.phases.columnWidth(0) >= side.name_width_needed())
        view.grab().save(str(Path(SCREENSHOT) / "phase-heap.png"))


def test_the_compare_view_lines_up_the_phase_sites(qtbot, window, tmp_path):
    from memview.ui.compare_view import CompareView

    truth = _record(window.db_path, tmp_path / "a.json", "a")
    _record(window.db_path, tmp_path / "b.json", "b")
    window.refresh_library()
    qtbot.waitUntil(lambda: len(window.library.visible_ids()) == 2, timeout=10000)
    window.library.select(1)
    window.library.select(2, add=True)
    window.compare_selected()
    view = window.tabs.currentWidget()
    assert isinstance(view, CompareView)
    qtbot.waitUntil(lambda: len(view.loaded) == 2, timeout=20000)
    label = f"site tracemalloc parse: {truth['file']}:{truth['line']}"
    for column in (1, 2):
        assert parse_size(view.cell(label, column).replace(" ", "")) == pytest.approx(truth["bytes"], rel=0.10)


def test_a_live_session_lists_the_sites_once_the_phase_ends(qtbot, window, tmp_path):
    from test_window import _run_from_dialog

    out, stop = tmp_path / "child.json", tmp_path / "stop"
    view = _run_from_dialog(
        qtbot, window, [sys.executable, str(HERE / "workloads" / "heap_phase.py"), str(out), str(stop)]
    )
    try:
        qtbot.waitUntil(
            lambda: any(p["name"] == "parse" and p["end_s"] is not None for p in view.phases), timeout=30000
        )
        assert view.summary is None  # still recording: the figures came from the live update
        qtbot.waitUntil(out.exists, timeout=10000)
        truth = json.loads(out.read_text())
        side = view.side
        qtbot.waitUntil(lambda: side.phases.rowCount() == 1 and side.phases.item(0, 0) is not None, timeout=10000)
        side.phases.setCurrentCell(0, 0)
        qtbot.waitUntil(side.sites.isVisible, timeout=5000)
        where, grown = side.site_rows()[0]
        assert where == f"{truth['file']}:{truth['line']}"
        assert grown == pytest.approx(truth["bytes"], rel=0.10)
    finally:
        stop.touch()
    qtbot.waitUntil(lambda: view.summary is not None, timeout=30000)
