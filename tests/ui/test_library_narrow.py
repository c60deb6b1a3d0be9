"""Found by driving the real window at 1000 x 650 with a recording open: the library sat at its least
width and every card's name was elided to "…" behind "exit 0" / "completed" (and a long status
overlapped the card's left edge). On a narrow card the status now gives way to the name: "●" for a
recording, "✗" for a failure, nothing for a success."""

from __future__ import annotations

from PySide6 import QtGui

from memview.ui.library import NAME_KEEPS, exit_cell, narrow_exit_label


def test_a_narrow_card_keeps_the_name_and_shortens_the_status(qapp):
    fm = QtGui.QFontMetrics(qapp.font())
    bold = QtGui.QFont(qapp.font())
    bold.setBold(True)
    name_w = QtGui.QFontMetrics(bold).horizontalAdvance("marked phases")
    rows = {
        "ok": {"id": 1, "exit_code": 0},
        "failed": {"id": 2, "exit_code": 3},
        "watch": {"id": 3, "status": "completed"},
        "live": {"id": 4},
    }
    narrow = 60  # px left of the peak on a 150 px library
    shown = {}
    for key, row in rows.items():
        label, tone = exit_cell(row, {4})
        shown[key] = narrow_exit_label(label, tone, narrow, fm.horizontalAdvance(label), name_w)
    assert shown == {"ok": "", "failed": "✗", "watch": "", "live": "●"}
    # a wide card keeps the whole status, and the name still has its share
    label, tone = exit_cell(rows["watch"], set())
    wide = fm.horizontalAdvance(label) + 10 + NAME_KEEPS
    assert narrow_exit_label(label, tone, wide, fm.horizontalAdvance(label), name_w) == "completed"
    assert narrow_exit_label(label, tone, wide - 1, fm.horizontalAdvance(label), name_w) == ""


def test_the_library_paints_at_its_least_width(qtbot):
    from memview.ui.library import LibraryPanel

    panel = LibraryPanel()
    qtbot.addWidget(panel)
    panel.set_rows(
        [
            {
                "id": 1,
                "name": "marked phases",
                "kind": "run",
                "exit_code": 0,
                "peak_rss_bytes": 141_000_000,
                "peak_source": "vmhwm",
                "status": "completed",
            },
            {"id": 2, "name": "a service", "kind": "watch", "status": "completed", "peak_rss_bytes": 130_000_000},
        ],
        set(),
    )
    panel.resize(panel.minimumWidth() or 150, 400)
    panel.show()
    image = panel.view.viewport().grab().toImage()  # paints every card; a paint error fails under qt_log_level_fail
    assert image.width() > 0
