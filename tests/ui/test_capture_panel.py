"""The capture panel with real captures: memray, heaptrack, a node heap snapshot, py-spy.

One module fixture records four real sessions with the real tools into one database; each test
opens a session in the real main window, clicks the capture's marker (the lane's scatter item
emits the click), and checks what the panel draws (icicle boxes) and lists (table rows).
``MEMVIEW_SCREENSHOTS=DIR`` also saves each panel as a PNG (docs/screenshots/capture-*.png).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
PY = sys.executable
NODE = shutil.which("node")


def _run(db: Path, *args: str, stop: Path | None = None, cwd: Path | None = None) -> int:
    """``memview run ARGS``; with ``stop``: touch it once the session's captures are done. The session id."""
    from memview.store import Store

    env = {**os.environ, "MEMVIEW_DB": str(db)}
    store = Store(db)
    before = {s["id"] for s in store.sessions()} if db.exists() else set()
    proc = subprocess.Popen(
        [PY, "-m", "memview", "run", "-q", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    try:
        if stop is not None:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                new = [s["id"] for s in store.sessions() if s["id"] not in before]
                caps = store.captures(new[0]) if new else []
                if caps and all(c["status"] != "running" for c in caps):
                    break
                time.sleep(0.2)
    finally:
        if stop is not None:
            stop.touch()
        _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    (sid,) = [s["id"] for s in store.sessions() if s["id"] not in before]
    return sid


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("captures")
    db = folder / "memview.db"
    ids: dict[str, int] = {}
    ids["memray"] = _run(
        db,
        "--threshold",
        "70MB",
        "--capture",
        "memray",
        "--capture-duration",
        "2s",
        "--",
        PY,
        str(WORKLOADS / "leak_spike.py"),
        "512",
        "48",
        str(folder / "stop-memray"),
        stop=folder / "stop-memray",
    )
    if shutil.which("heaptrack") and shutil.which("gcc"):
        exe = folder / "leak_spike"
        subprocess.run(["gcc", "-O1", "-g", "-o", str(exe), str(WORKLOADS / "leak_spike.c")], check=True)
        ids["heaptrack"] = _run(db, "--heaptrack", "--", str(exe), "40", "256", "32")
    if NODE:
        ids["node"] = _run(
            db,
            "--threshold",
            "60MB",
            "--capture",
            "node-heap-snapshot",
            "--",
            NODE,
            str(WORKLOADS / "leak_classes.js"),
            "250000",
            str(folder / "stop-node"),
            stop=folder / "stop-node",
            cwd=folder,
        )
    ids["py-spy"] = _run(
        db,
        "--threshold",
        "30MB",
        "--capture",
        "py-spy-record",
        "--capture-duration",
        "1s",
        "--",
        PY,
        str(WORKLOADS / "grow.py"),
        "2.0",
        "4",
        "200",
    )
    return db, ids


@pytest.fixture
def window_on(recorded, tmp_path, request):
    """The real main window on a copy of the recorded database."""
    db, ids = recorded
    with sqlite3.connect(db) as src, sqlite3.connect(tmp_path / "memview.db") as dst:
        src.backup(dst)  # the WAL's pages too (a file copy would miss them)
    return request.getfixturevalue("window"), ids


def _open_capture(qtbot, win, sid: int):
    """Open the stored session and click its (first) capture marker; the panel shows."""
    view = win.open_session(sid)
    assert win.store.captures(sid), win.store.events(sid)
    qtbot.waitUntil(lambda: len(view.plot.capture_points.points()) > 0, timeout=20000)
    item = view.plot.capture_points
    item.sigClicked.emit(item, [item.points()[0]], None)
    panel = view.capture_panel
    qtbot.waitUntil(panel.isVisible, timeout=10000)
    return view, panel


def _boxes(qtbot, panel) -> list[str]:
    """The boxes of the icicle graph's next paint (what the user sees)."""
    before = panel.flame.paints
    panel.flame.update()
    qtbot.waitUntil(lambda: panel.flame.paints > before, timeout=10000)
    return [node.name for _rect, node in panel.flame.drawn]


def _shot(win, kind: str) -> None:
    folder = os.environ.get("MEMVIEW_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        win.grab().save(str(Path(folder) / f"capture-{kind}.png"))


def test_memray_capture_panel_names_the_leak_and_the_spike(qtbot, window_on):
    win, ids = window_on
    view, panel = _open_capture(qtbot, win, ids["memray"])
    src = str(WORKLOADS / "leak_spike.py")
    rows = panel.sites.visible_rows()
    assert panel.sites.choice.currentText() == "peak"
    by_site = {r[0]: r for r in rows}
    assert by_site["spike"][1] == f"{src}:28" and by_site["spike"][2] == "48.0 MiB" and by_site["spike"][3] == "1"
    assert by_site["leak"][1] == f"{src}:24"
    assert rows[0][0] == "spike"  # sorted by size, largest first
    boxes = _boxes(qtbot, panel)
    assert boxes[0] == "all" and any(b.startswith(f"spike ({src}:28)") for b in boxes), boxes
    # search highlights the leak's frame; zoom into the spike and back out
    panel.search.setText("leak (")
    assert panel.search_count.text() == "1 match"
    assert panel.flame.zoom_to(f"spike ({src}:28)")
    zoomed = _boxes(qtbot, panel)
    assert zoomed[0].startswith("spike (") and not any(b.startswith("leak (") for b in zoomed)
    panel.reset_button.click()
    assert _boxes(qtbot, panel)[0] == "all"
    # the table: filter, other tables, sort by count
    panel.sites.filter.setText("py:24")  # function or file:line
    assert [r[0] for r in panel.sites.visible_rows()] == ["leak"]
    panel.sites.filter.setText("MODULE")
    assert [r[0] for r in panel.sites.visible_rows()] == ["<module>"]
    panel.sites.filter.clear()
    panel.sites.choice.setCurrentText("growth")
    growth = {r[0]: r for r in panel.sites.visible_rows()}
    assert int(growth["leak"][3]) >= 3  # each round's buffer kept (a spike is there only if caught mid-round)
    panel.sites.table.sortByColumn(3, __import__("PySide6").QtCore.Qt.SortOrder.DescendingOrder)
    counts = [int(r[3]) for r in panel.sites.visible_rows()]
    assert counts == sorted(counts, reverse=True)
    assert "Open memray flame graph" in [b.text() for b in panel.open_buttons]
    panel.sites.choice.setCurrentText("peak")
    _shot(win, "memray")


@pytest.mark.skipif(not (shutil.which("heaptrack") and shutil.which("gcc")), reason="heaptrack/gcc missing")
def test_heaptrack_capture_panel_lists_peak_leaks_and_temporaries(qtbot, window_on):
    win, ids = window_on
    view, panel = _open_capture(qtbot, win, ids["heaptrack"])
    src = str(WORKLOADS / "leak_spike.c")
    rows = panel.sites.visible_rows()
    assert rows[0][:3] == ["spike_buffer", f"{src}:16", "32.0 MiB"], rows
    tables = [panel.sites.choice.itemText(i) for i in range(panel.sites.choice.count())]
    assert tables[:3] == ["peak", "leaked", "temporary"]
    panel.sites.choice.setCurrentText("leaked")
    assert panel.sites.visible_rows()[0][:4] == ["leak_buffer", f"{src}:10", "10.0 MiB", "40"]
    boxes = _boxes(qtbot, panel)
    assert any(b.startswith("spike_buffer") for b in boxes) and any(b.startswith("leak_buffer") for b in boxes)
    assert "Open in heaptrack_gui" in [b.text() for b in panel.open_buttons]
    panel.sites.choice.setCurrentText("peak")
    _shot(win, "heaptrack")


@pytest.mark.skipif(NODE is None, reason="node missing")
def test_node_snapshot_panel_lists_constructors(qtbot, window_on):
    win, ids = window_on
    view, panel = _open_capture(qtbot, win, ids["node"])
    assert panel.sites.choice.currentText() == "retained"
    names = [r[0] for r in panel.sites.visible_rows()]
    assert "LeakyRecord" in names[:15], names
    panel.sites.choice.setCurrentText("self")
    count = int(next(r[3] for r in panel.sites.visible_rows() if r[0] == "LeakyRecord"))
    assert count > 0 and count % 2000 == 0  # whole rounds of the workload
    assert "LeakyRecord" in _boxes(qtbot, panel)
    assert "distorts" in panel.title.text()  # a snapshot pauses and inflates node
    assert [b.text() for b in panel.open_buttons] == ["Open in Chrome DevTools"]
    panel.sites.choice.setCurrentText("retained")
    _shot(win, "node")


def test_pyspy_capture_panel_counts_samples(qtbot, window_on):
    win, ids = window_on
    view, panel = _open_capture(qtbot, win, ids["py-spy"])
    header = panel.sites.table.horizontalHeaderItem(2).text()
    rows = panel.sites.visible_rows()
    assert header == "samples" and rows[0][0] == "allocate_pages", rows
    total = sum(int(r[2]) for r in rows)
    assert panel.flame.root.value == total  # the icicle's root holds every sample with frames
    assert any(b.startswith("allocate_pages (") for b in _boxes(qtbot, panel))
    labels = [b.text() for b in panel.open_buttons]
    assert "Open in speedscope" in labels and "Open flame graph (browser)" in labels
    _shot(win, "py-spy")
