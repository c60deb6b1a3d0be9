"""Library actions on real stored sessions: rename, tag, note, export (a bundle), compare, delete."""

from __future__ import annotations

from support import MiB, workload

from memview import runner
from memview.bundle import read_manifest
from memview.store import Store
from memview.ui.compare_view import CompareView


def _record(db, mib: int, name: str) -> int:
    """A real child recorded into the window's database the way `memview run` does."""
    store = Store(db)
    session = runner.ProcessSession.launch(workload("hold.py", mib, 0.2), store, 0.02)
    session.reaped(runner.reap(session.proc))
    session.close()
    store.update_session(session.recorder.session_id, name=name)
    store.close()
    return session.recorder.session_id


def test_rename_tag_note_export_compare_delete(qtbot, window, tmp_path):
    small, big = _record(window.db_path, 20, "small"), _record(window.db_path, 60, "big")
    window.refresh_library()
    qtbot.waitUntil(lambda: set(window.library.visible_ids()) == {small, big}, timeout=10000)

    # rename, tag and note go to the store through the dialogs
    assert window.library.select(small)
    window.rename_selected()
    window.dialog.setTextValue("small input")
    window.dialog.accept()
    window.tag_selected()
    window.dialog.setTextValue("nightly, pdf")
    window.dialog.accept()
    window.note_selected()
    window.dialog.setTextValue("before the fix")
    window.dialog.accept()
    qtbot.waitUntil(lambda: (window.library.row_for(small) or {}).get("notes") == "before the fix", timeout=10000)
    row = Store(window.db_path).session(small)
    assert (row["name"], row["tags"], row["notes"]) == ("small input", ["nightly", "pdf"], "before the fix")

    # export writes a bundle that names the session
    out = tmp_path / "small.memview.zip"
    window.export_selected(str(out))
    qtbot.waitUntil(lambda: window.last_export is not None, timeout=15000)
    assert window.last_export.path == out and out.stat().st_size > 0
    assert read_manifest(out)["session"]["name"] == "small input"

    # two selected -> the compare view, with both sessions' real peaks
    window.library.select(big, add=True)
    assert sorted(window.library.selected_ids()) == sorted([small, big])
    window.compare_selected()
    view = window.tabs.currentWidget()
    assert isinstance(view, CompareView)
    qtbot.waitUntil(lambda: len(view.loaded) == 2, timeout=15000)
    peaks = {ld.session_id: ld.record.peak_rss_bytes for ld in view.loaded}
    assert peaks[big] - peaks[small] > 35 * MiB

    # delete asks first; Cancel keeps it, Delete removes it from the store
    window.library.select(big)
    window.delete_selected()
    window.dialog.reject()
    assert Store(window.db_path).session(big)["id"] == big
    window.delete_selected()
    next(b for b in window.dialog.buttons() if b.text() == "Delete").click()
    qtbot.waitUntil(lambda: window.library.visible_ids() == [small], timeout=10000)
    assert [s["id"] for s in Store(window.db_path).sessions()] == [small]


def test_library_keyboard_counts_sort_memory_and_compact_rows(qtbot, window, settings, tmp_path):
    from PySide6 import QtCore, QtGui

    from memview.ui.main_window import MainWindow

    ids = {name: _record(window.db_path, mib, name) for name, mib in (("alpha", 20), ("beta big", 50), ("gamma", 30))}
    window.refresh_library()
    lib = window.library
    qtbot.waitUntil(lambda: len(lib.visible_ids()) == 3, timeout=10000)
    assert lib.count.text() == "3 sessions"
    # the header counts what is shown
    qtbot.keyClicks(lib.filter, "big")
    assert lib.visible_ids() == [ids["beta big"]] and lib.count.text() == "1 of 3 sessions"
    # Enter in the filter opens the one match; Down goes to the list, Enter there opens too
    qtbot.keyClick(lib.filter, QtCore.Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: ids["beta big"] in window.views, timeout=10000)
    lib.filter.clear()
    lib.view.clearSelection()
    lib.filter.setFocus()
    qtbot.keyClick(lib.filter, QtCore.Qt.Key.Key_Down)
    assert lib.selected_ids() == [lib.visible_ids()[0]]
    qtbot.keyClick(lib.view, QtCore.Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: lib.visible_ids()[0] in window.views, timeout=10000)
    # the sort order is remembered
    lib.set_sort("peak")
    assert lib.visible_ids() == [ids["beta big"], ids["gamma"], ids["alpha"]]
    second = MainWindow(window.db_path, settings)
    try:
        assert second.library.sort.currentData() == "peak"
    finally:
        second.close()
        second.deleteLater()
    # two lines a card: about twice as many sessions on a screen as three-line cards
    fm = QtGui.QFontMetrics(lib.view.font())
    height = lib.view.sizeHintForRow(0)
    assert 0 < height <= 2 * fm.height() + 14, (height, fm.height())


def test_export_and_import_show_progress_and_a_bundle_already_present_says_so(qtbot, window, tmp_path):
    sid = _record(window.db_path, 20, "round trip")
    window.refresh_library()
    qtbot.waitUntil(lambda: sid in window.library.visible_ids(), timeout=10000)
    window.library.select(sid)
    out = tmp_path / "rt.memview.zip"
    window.export_selected(str(out))
    # the action shows it runs until it is done (the job is on the database thread)
    assert window.busy_bar.isVisibleTo(window) and window.busy_label.text() == f"Exporting session #{sid}…"
    qtbot.waitUntil(lambda: window.last_export is not None and not window.busy_bar.isVisibleTo(window), timeout=15000)
    window.import_bundle(str(out))
    assert window.busy_label.text() == "Importing rt.memview.zip…"
    qtbot.waitUntil(lambda: window.last_import is not None, timeout=15000)
    assert not window.last_import.created and window.last_import.session_id == sid
    view = window.views[sid]
    qtbot.waitUntil(lambda: view.summary is not None, timeout=15000)
    assert view.banner.isVisibleTo(window) and "already in this database as session" in view.banner.text()
    assert [s["id"] for s in Store(window.db_path).sessions()] == [sid]
