"""The compare view (pytest-qt) on two real recorded sessions: curves, legend, alignment, table."""

from __future__ import annotations

import os
import subprocess

import pytest
from PySide6.QtCore import Qt
from support import PY, workload

from memview.compare import format_change
from memview.model import Phase
from memview.recorder import phase_row
from memview.store import Store, StoreWriter
from memview.ui.compare_view import PALETTE, CompareView
from memview.units import format_bytes


def record(db, name: str, size_mib: int, tmp_path) -> int:
    env = {**os.environ, "MEMVIEW_DB": str(db)}
    res = subprocess.run(
        [
            PY,
            "-m",
            "memview",
            "run",
            "-q",
            "--interval",
            "0.01",
            "--name",
            name,
            "--",
            *workload("spikes.py", tmp_path / f"{name}.json", size_mib, 2),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    return Store(db).sessions(limit=1)[0]["id"]


def add_phases(store: Store, sid: int, phases: list[Phase]) -> None:
    writer = StoreWriter(store.path, sid)
    writer.start()
    for seq, ph in enumerate(phases):
        writer.insert("phases", phase_row(ph, seq))
    assert writer.close()


@pytest.fixture
def two_sessions(tmp_path):
    db = tmp_path / "v.db"
    a = record(db, "before", 50, tmp_path)
    b = record(db, "after", 100, tmp_path)
    store = Store(db)
    add_phases(
        store,
        a,
        [
            Phase("load", 0, 0.0, 0.1, peak_rss_bytes=30_000_000),
            Phase("parse", 0, 0.15, 0.3, peak_rss_bytes=60_000_000),
        ],
    )
    add_phases(
        store,
        b,
        [
            Phase("load", 0, 0.0, 0.2, peak_rss_bytes=30_000_000),
            Phase("render", 0, 0.2, 0.3, peak_rss_bytes=40_000_000),
            Phase("parse", 0, 0.35, 0.5, peak_rss_bytes=90_000_000),
        ],
    )
    return store, a, b


def open_view(qtbot, store, ids) -> CompareView:
    view = CompareView(store, ids)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.ready, timeout=15_000):
        view.show()
    return view


def test_overlay_legend_and_difference_table(qtbot, two_sessions, tmp_path):
    store, a, b = two_sessions
    view = open_view(qtbot, store, [a, b])
    assert set(view.curves) == {a, b}
    # each curve is its session's stored RSS series, in MiB, in its own colour
    for i, sid in enumerate((a, b)):
        times, values = store.load_series(sid)
        x, y = view.curves[sid].getOriginalDataset()
        assert len(x) == len(times) and x[0] == pytest.approx(times[0])
        assert max(y) == pytest.approx(max(values) / 2**20)
        assert view.curves[sid].opts["pen"].color().name().lower() == PALETTE[i].lower()
    assert view.legend_labels() == [f"A: #{a} before", f"B: #{b} after"]
    assert len(view.plot.getPlotItem().listDataItems()) == 2
    # the table: values side by side and the change against A
    sa, sb = store.session(a), store.session(b)
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert headers == ["", f"A: #{a} before", f"B: #{b} after", "B vs A"]
    assert view.table.horizontalHeaderItem(2).foreground().color().name().lower() == PALETTE[1].lower()
    assert view.cell("peak", 1) == format_bytes(sa["peak_rss_bytes"])
    assert view.cell("peak", 2) == format_bytes(sb["peak_rss_bytes"])
    delta = sb["peak_rss_bytes"] - sa["peak_rss_bytes"]
    assert view.cell("peak", 3) == format_change({"abs": delta, "rel": delta / sa["peak_rss_bytes"]}, "bytes")
    assert 35 * 2**20 < delta < 65 * 2**20  # the workloads differ by 50 MiB
    assert view.cell("phase parse: peak", 3) == "+28.6 MiB (+50.0%)"
    assert view.cell("phase render: peak", 1) == "(absent)"
    assert view.cell("phase render: peak", 3) == "only in B"
    view.resize(900, 700)
    view.grab().save(str(tmp_path / "compare_view.png"))
    assert (tmp_path / "compare_view.png").stat().st_size > 5000


def test_align_at_a_phase_start(qtbot, two_sessions):
    store, a, b = two_sessions
    view = open_view(qtbot, store, [a, b])
    choices = [view.align.itemText(i) for i in range(view.align.count())]
    assert choices == ["session start", "phase load", "phase render  (1 of 2)", "phase parse"]
    view.align_at(("parse", 0))
    times_a, _ = store.load_series(a)
    times_b, _ = store.load_series(b)
    xa, _ = view.curves[a].getOriginalDataset()
    xb, _ = view.curves[b].getOriginalDataset()
    assert xa[0] == pytest.approx(times_a[0] - 0.15) and xb[0] == pytest.approx(times_b[0] - 0.35)
    assert view.zero_line.isVisible()
    # a session without the chosen phase stays at its start, dashed, and says so
    view.align_at(("render", 0))
    xa, _ = view.curves[a].getOriginalDataset()
    assert xa[0] == pytest.approx(times_a[0])
    assert view.curves[a].opts["pen"].style() == Qt.PenStyle.DashLine
    assert view.legend_labels()[0] == f"A: #{a} before (no phase render: at start)"
    view.align_at(None)
    assert view.legend_labels() == [f"A: #{a} before", f"B: #{b} after"]
    assert not view.zero_line.isVisible()
    with pytest.raises(ValueError):
        view.align_at(("nope", 0))


def test_errors_are_shown_not_raised(qtbot, two_sessions):
    store, a, _ = two_sessions
    view = CompareView(store, [a, 999])
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.failed, timeout=15_000) as blocker:
        view.show()
    assert blocker.args[0].startswith("no session 999")
    qtbot.waitUntil(lambda: "no session 999" in view.status.text())
    one = CompareView(store, [a])
    qtbot.addWidget(one)
    assert one.status.text() == "select two or more sessions to compare"
    assert not one.curves


def test_qt_binding_keeps_reference_counts(qtbot):
    """PySide6 6.12.0 on Python 3.11 loses a reference to None and True on each call; a few thousand
    plot updates later the interpreter aborts ("deallocating None"). pyproject pins it out; this
    says so clearly instead of a random abort at the end of the test run."""
    import sys

    import pyqtgraph as pg

    curve = pg.PlotDataItem()
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        curve.setData([0.0, 1.0], [1.0, 2.0])
    after = sys.getrefcount(None), sys.getrefcount(True)
    import PySide6

    assert after[0] - before[0] > -50 and after[1] - before[1] > -50, (
        f"PySide6 {PySide6.__version__} leaks references to None/True ({before} -> {after}); "
        "install the version pyproject.toml asks for (pip install -e '.[test]')"
    )
