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
