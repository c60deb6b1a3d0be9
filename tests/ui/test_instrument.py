"""The session view as an instrument (issue 18): every figure it labels is the exact one, time is
navigated without losing the memory scale, the tooltip reads every series, marks and phase-scoped
thresholds are drawn where they belong, a watched service's outage is a gap.

The sessions are real: ``memview run`` records tests/ui/workloads/marked_phases.py (which writes
the kernel's own high-water mark of its peak phase), and a real HTTP service (memserver.py) is
watched from the GUI's dialog and made to fail.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from support import MiB, kill_and_reap, workload

from memview.ui import file_dialogs
from memview.ui.live_view import SessionView
from memview.units import format_bytes

HERE = Path(__file__).resolve().parent


@pytest.fixture
def recorded(tmp_path: Path) -> dict:
    """A real run (phases load/parse, two marks, a parse-scoped threshold) in the window's database."""
    out = tmp_path / "child.json"
    cmd = [
        sys.executable,
        "-m",
        "memview",
        "run",
        "--db",
        str(tmp_path / "memview.db"),
        "-q",
        "-i",
        "20ms",
        "--name",
        "marked",
        "--threshold",
        "parse:100MB",
        "--capture",
        "none",
        "--",
        sys.executable,
        str(HERE / "workloads" / "marked_phases.py"),
        str(out),
    ]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    return json.loads(out.read_text())


def _open(qtbot, window, sid: int = 1) -> SessionView:
    qtbot.waitUntil(lambda: sid in window.library.visible_ids(), timeout=10000)
    view = window.open_session(sid)
    qtbot.waitUntil(lambda: view.summary is not None and view.buffers.get("rss") is not None, timeout=20000)
    return view


def _inside(item_rect: QtCore.QRectF, box: QtCore.QRectF) -> bool:
    return box.adjusted(-1, -1, 1, 1).contains(item_rect)


def _wheel(qtbot, view: SessionView, steps: int, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    """Real wheel events over the middle of the plot."""
    plot = view.plot
    centre = plot.main.vb.sceneBoundingRect().center()
    pos = QtCore.QPointF(plot.mapFromScene(centre))
    for _ in range(steps):
        event = QtGui.QWheelEvent(
            pos,
            QtCore.QPointF(plot.viewport().mapToGlobal(pos.toPoint())),
            QtCore.QPoint(0, 0),
            QtCore.QPoint(0, 120),
            QtCore.Qt.MouseButton.NoButton,
            modifiers,
            QtCore.Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QtWidgets.QApplication.sendEvent(plot.viewport(), event)


def test_the_peak_label_is_the_exact_figure_and_stays_inside_the_plot(qtbot, window, recorded):
    view = _open(qtbot, window)
    kernel = recorded["hwm_bytes"]
    exact = view.summary["peak_rss_bytes"]
    assert view.summary["peak_source"].startswith("kernel")
    assert abs(exact - kernel) <= 0.01 * kernel, (exact / MiB, kernel / MiB)
    # the label says the side panel's exact figure, not the highest sample
    assert view.plot.peak_label.toPlainText() == f"peak {format_bytes(exact)} ✓"
    assert view.side.values["Peak"].text() == format_bytes(exact)
    box = view.plot.main.vb.sceneBoundingRect()
    assert _inside(view.plot.peak_label.sceneBoundingRect(), box)
    # the peak at the right edge and at the top of the view: the label moves inside, not off the plot
    t = view.plot.peak_t
    view.plot.main.vb.setRange(xRange=(t - 0.5, t + 0.01), yRange=(0, view.buffers["rss"].max * 1.01), padding=0)
    qtbot.waitUntil(lambda: _inside(view.plot.peak_label.sceneBoundingRect(), box))
    view.plot.main.vb.setRange(xRange=(t - 0.01, t + 0.5), padding=0)
    qtbot.waitUntil(lambda: _inside(view.plot.peak_label.sceneBoundingRect(), box))


def test_wheel_zooms_time_only_and_ctrl_wheel_zooms_memory(qtbot, window, recorded):
    view = _open(qtbot, window)
    (x0, x1), (y0, y1) = view.plot.main.vb.viewRange()
    _wheel(qtbot, view, 10)
    (a0, a1), (b0, b1) = view.plot.main.vb.viewRange()
    assert a1 - a0 < 0.5 * (x1 - x0)  # time zoomed in
    assert (b0, b1) == (y0, y1)  # the memory scale stayed where it was
    assert not view.plot.follow and not view.follow_button.isChecked()
    _wheel(qtbot, view, 3, QtCore.Qt.KeyboardModifier.ControlModifier)
    (c0, c1), (d0, d1) = view.plot.main.vb.viewRange()
    assert (c0, c1) == (a0, a1)  # Ctrl: memory zoomed, time kept
    assert d1 - d0 < b1 - b0


def test_the_overview_shows_the_whole_session_and_the_visible_window(qtbot, window, recorded):
    view = _open(qtbot, window)
    plot = view.plot
    wall = view.summary["wall_s"]
    ox0, ox1 = plot.overview.vb.viewRange()[0]
    assert ox0 <= 0.0 and ox1 >= wall * 0.99
    assert len(plot.overview_curve.xData) >= view.buffers["rss"].count
    plot.zoom_to(0.7, 1.0)
    view_range = plot.main.vb.viewRange()[0]
    assert np.allclose(plot.window_region.getRegion(), view_range)
    # dragging the window in the overview moves the plot
    plot.window_region.setRegion((0.1, 0.4))
    assert np.allclose(plot.main.vb.viewRange()[0], (0.1, 0.4))
    assert not plot.follow


def test_crosshair_tooltip_lists_every_series_and_the_phase(qtbot, window, recorded):
    view = _open(qtbot, window)
    view.per_process_button.setChecked(True)
    parse = next(p for p in view.phases if p["name"] == "parse")
    t = (parse["start_s"] + parse["end_s"]) / 2
    plot = view.plot
    plot.zoom_to(parse["start_s"], parse["end_s"])
    scene = plot.main.vb.mapViewToScene(QtCore.QPointF(t, 50 * MiB))
    qtbot.mouseMove(plot.viewport(), plot.mapFromScene(scene))
    qtbot.waitUntil(lambda: plot.tip.isVisible(), timeout=5000)
    text = plot.tip.toPlainText()
    names = [n for n in view.buffers if n.startswith("pid:")]
    assert names
    assert f"{view.labels['rss']}: {format_bytes(view.buffers['rss'].value_at(plot.cross.value()))}" in text
    for name in names:
        assert f"{view.labels[name]}: " in text
    assert "phase: parse" in text
    # time to the millisecond when a second fills the plot
    assert text.splitlines()[0].count(".") == 1 and len(text.splitlines()[0].split(".")[1]) == 3


def test_marks_are_drawn_on_the_plot(qtbot, window, recorded):
    view = _open(qtbot, window)
    points = view.plot.mark_points.data
    assert sorted(p["data"] for p in points) == ["half parsed", "loaded"]
    from memview.store import Store

    times = sorted(e["t_s"] for e in Store(window.db_path).events(1) if e["kind"] == "mark")
    assert sorted(line.value() for line in view.plot.mark_lines) == pytest.approx(times)
    assert sorted(float(p["x"]) for p in points) == pytest.approx(times)


def test_a_phase_scoped_threshold_is_drawn_over_its_phase_only(qtbot, window, recorded):
    view = _open(qtbot, window)
    plot = view.plot
    parse = next(p for p in view.phases if p["name"] == "parse")
    qtbot.waitUntil(lambda: plot.threshold is not None and plot.threshold.isVisible())
    assert plot.threshold.label.toPlainText().startswith("parse: threshold")
    xs, ys = plot.threshold_segments.getData()
    finite = xs[np.isfinite(xs)]
    assert list(finite) == pytest.approx([parse["start_s"], parse["end_s"]])
    assert set(ys[np.isfinite(ys)]) == {plot.threshold.value()}


def test_texts(qtbot, window, recorded):
    from memview.ui.dialogs import RunDialog
    from memview.ui.main_window import export_file_name

    dialog = RunDialog(window)
    labels = [w.text() for w in dialog.findChildren(QtWidgets.QLabel)]
    assert "&Working directory" in labels  # a label with a buddy: & is the shortcut, not shown
    label = next(w for w in dialog.findChildren(QtWidgets.QLabel) if w.text() == "&Working directory")
    assert label.buddy() is dialog.cwd
    dialog.deleteLater()
    assert export_file_name({"id": 7, "name": "big pdf / before fix"}) == "big-pdf-before-fix-7.memview.zip"
    qtbot.waitUntil(lambda: 1 in window.library.visible_ids(), timeout=10000)
    window.library.select(1)
    seen = {}

    def fake_save(*args, **kw):
        seen["default"] = args[2]
        return ""

    original = file_dialogs.save_file_name
    file_dialogs.save_file_name = fake_save
    try:
        window.export_selected()
    finally:
        file_dialogs.save_file_name = original
    assert seen["default"] == "marked-1.memview.zip"


# -- a watched service's outage is a gap ------------------------------------------------------------
class _Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(workload("memserver.py"), stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self.proc.stdout.readline())["port"]

    def post(self, path: str) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        kill_and_reap(self.proc)


def test_an_outage_of_a_watched_service_is_drawn_as_a_gap(qtbot, window):
    from memview.ui.dialogs import WatchDialog

    server = _Server()
    try:
        window.act_watch.trigger()
        dialog = window.dialog
        assert isinstance(dialog, WatchDialog)
        dialog.url.setCurrentText(f"http://127.0.0.1:{server.port}/api/v1/memory/profile")
        dialog.interval.setText("200ms")
        qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: isinstance(window.current_view(), SessionView) and window.current_view().live is not None,
            timeout=10000,
        )
        view = window.current_view()
        # nothing to capture or split per process in a watched service
        assert not view.capture_button.isEnabled() and not view.per_process_button.isVisible()
        assert not window.act_capture.isEnabled()
        qtbot.waitUntil(lambda: view.buffers.get("rss") is not None and view.buffers["rss"].count > 3, timeout=15000)
        server.post("/mode?fail=500")
        qtbot.waitUntil(lambda: any("500" in g["reason"] for g in view.gaps), timeout=15000)
        grown = server.post("/grow?mb=100")  # memory moves while nobody can see it
        server.post("/mode?fail=none")
        gap = next(g for g in view.gaps if "500" in g["reason"])
        qtbot.waitUntil(lambda: gap["end_s"] is not None, timeout=15000)
        qtbot.waitUntil(
            lambda: (
                view.buffers["rss"].last_t > gap["end_s"] and view.buffers["rss"].last >= grown["rss_bytes"] - 4 * MiB
            ),
            timeout=15000,
        )
        view.redraw()
        x, y = view.plot.total.xData, view.plot.total.yData
        before = int(np.flatnonzero(np.isfinite(y) & (x < gap["start_s"]))[-1])
        after = int(np.flatnonzero(np.isfinite(y) & (x >= gap["end_s"]))[0])
        assert after > before + 1 and np.isnan(y[before + 1 : after]).all()  # no line across the gap
        assert view.plot.total.opts["connect"] == "finite"
        region = next(r for r in view.plot.gap_regions if r.getRegion()[0] == pytest.approx(gap["start_s"]))
        assert "500" in region.toolTip() and region.getRegion() == pytest.approx((gap["start_s"], gap["end_s"]))
        assert view.values_at(gap["start_s"] + 1e-3)[0][1] == "-"  # the tooltip reads no value in a gap
        assert not math.isnan(y[after])
    finally:
        server.stop()


def test_a_prometheus_series_picked_in_the_watch_dialog_is_the_one_plotted(qtbot, window):
    from memview.ui.dialogs import WatchDialog

    server = _Server()
    try:
        window.act_watch.trigger()
        dialog = window.dialog
        assert isinstance(dialog, WatchDialog)
        dialog.url.setCurrentText(f"http://127.0.0.1:{server.port}/metrics")
        qtbot.mouseClick(dialog.list_series, QtCore.Qt.MouseButton.LeftButton)
        want = 'memserver_held_bytes{kind="held"}'
        qtbot.waitUntil(lambda: dialog.series.count() > 3, timeout=15000)
        entries = [dialog.series.itemText(i) for i in range(dialog.series.count())]
        assert any(e.startswith("process_resident_memory_bytes") for e in entries)
        held = next(i for i, e in enumerate(entries) if e.startswith(want + "  ="))
        dialog.series.setCurrentIndex(held)
        dialog.interval.setText("200ms")
        truth = server.post("/grow?mb=48")
        qtbot.mouseClick(dialog.ok_button, QtCore.Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: isinstance(window.current_view(), SessionView) and window.current_view().live is not None,
            timeout=10000,
        )
        view = window.current_view()
        qtbot.waitUntil(lambda: view.buffers.get("rss") is not None and view.buffers["rss"].count > 2, timeout=15000)
        assert view.buffers["rss"].last == truth["held_bytes"] == 48 * MiB  # the held bytes, not the RSS
    finally:
        server.stop()


def test_the_compare_axis_names_the_phase_once(qtbot, window, recorded, tmp_path):
    from memview.ui.compare_view import CompareView

    out = tmp_path / "second.json"
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
            str(HERE / "workloads" / "marked_phases.py"),
            str(out),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    window.refresh_library()
    qtbot.waitUntil(lambda: len(window.library.visible_ids()) == 2, timeout=10000)
    window.library.select(1)
    window.library.select(2, add=True)
    window.compare_selected()
    view = window.tabs.currentWidget()
    assert isinstance(view, CompareView)
    qtbot.waitUntil(lambda: len(view.loaded) == 2 and view.align.count() > 1, timeout=20000)
    index = next(i for i in range(view.align.count()) if "parse" in view.align.itemText(i))
    view.align.setCurrentIndex(index)
    label = view.plot.getAxis("bottom").labelText
    assert label == "seconds since phase parse started", label
