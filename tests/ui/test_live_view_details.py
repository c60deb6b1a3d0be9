"""Issue 18, two small defects of the session view, driven through the real widgets (offscreen).

- Phases that start at the same time (a log's millisecond clock) must keep the order they were
  announced in, as the stored summary keeps it; the live view sorted them by start alone, so
  they came out in the order their ends arrived.
- The hint line under the plot was cut off at narrow widths (a 1000x650 window): it must fit,
  elided with its full text as the tooltip when there is no room.
"""

from __future__ import annotations

import math

from PySide6 import QtGui, QtWidgets

from memview.model import Event, Phase
from memview.ui.bridge import Update


def _phase(name: str, start: float, end: float, announced: int, depth: int = 0) -> Phase:
    return Phase(
        name=name,
        depth=depth,
        start_s=start,
        end_s=end,
        start_rss_bytes=1,
        end_rss_bytes=2,
        peak_rss_bytes=3,
        data={"announced": announced},
    )


def test_phases_starting_together_keep_their_announcement_order(qtbot):
    from memview.ui.live_view import SessionView

    view = SessionView("order", "run")
    qtbot.addWidget(view)
    # "read" and "parse" both start at 1.000 s; "read" was announced first. Their ends arrive in
    # the other order, and no start event was seen for them (e.g. log-line phases read late).
    view.apply_update(
        Update(
            phases=[
                _phase("parse", 1.0, 1.5, announced=3),
                _phase("read", 1.0, 1.2, announced=2),
                _phase("setup", 0.2, 0.9, announced=1),
            ]
        )
    )
    assert [p["name"] for p in view.phases] == ["setup", "read", "parse"]
    # live: start events in announcement order, then the ends, the second one first
    view.apply_update(
        Update(
            events=[
                Event(t=2.0, kind="phase_start", message="a", data={"name": "a", "depth": 0}),
                Event(t=2.0, kind="phase_start", message="b", data={"name": "b", "depth": 0}),
                Event(t=2.0, kind="phase_start", message="b.1", data={"name": "b.1", "depth": 1}),
            ]
        )
    )
    view.apply_update(Update(phases=[_phase("b.1", 2.0, 2.1, announced=6, depth=1)]))
    view.apply_update(Update(phases=[_phase("b", 2.0, 2.2, announced=5), _phase("a", 2.0, 2.0, announced=4)]))
    names = [p["name"] for p in view.phases]
    assert names == ["setup", "read", "parse", "a", "b", "b.1"]
    assert all(p["end_s"] is not None for p in view.phases)
    # the side panel lists them in that order too
    view.redraw()
    table = view.side.phases
    listed = [table.item(r, 0).text().strip() for r in range(table.rowCount())]
    assert [n for n in listed if n] == names
    QtWidgets.QApplication.processEvents()  # the panel's queued relayout runs while the panel exists


def _shown_width(label) -> float:
    """Pixels the label's current (rich) text needs on one line."""
    doc = QtGui.QTextDocument()
    doc.setDocumentMargin(0)
    doc.setDefaultFont(label.font())
    doc.setHtml(label.text())
    return doc.idealWidth()


def test_the_hint_line_fits_a_1000x650_window(qtbot, window):
    from memview.ui.live_view import SessionView

    view = SessionView("a session with a long name", "run", "python extract.py")
    window._add_tab(view, view.title)
    window.resize(1000, 650)
    qtbot.waitUntil(lambda: window.width() <= 1000 and view.isVisible() and view.readout.width() > 0)
    view._hovered(math.nan)  # the hint shown without a cursor
    label = view.readout
    room = label.contentsRect().width()
    assert label.geometry().right() <= view.width()
    assert _shown_width(label) <= room + 1, f"the hint needs {_shown_width(label):.0f} px of {room}"
    if "…" in label.text():  # elided: the whole hint is its tooltip
        assert "wheel zooms time" in label.toolTip() and "drag pans" in label.toolTip()
    # a readout while hovering fits as well (three series and a phase at most)
    view._hovered(1.0, math.nan)
    assert _shown_width(label) <= label.contentsRect().width() + 1
    # and, with room again, the whole hint shows, with no tooltip
    window.resize(1600, 900)
    qtbot.waitUntil(lambda: label.contentsRect().width() > 900)
    view._hovered(math.nan)
    assert "drag pans" in label.text() and label.toolTip() == ""


def test_an_early_peak_label_is_not_painted_over_by_the_legend(qtbot):
    """The legend sits over the plot's top-left corner; a peak early in the session labelled
    above its dot went under it (unreadable). The label moves under or beside its dot."""
    import numpy as np

    from memview.model import ENVELOPE_SERIES
    from memview.ui.live_view import SessionView
    from memview.ui.series_buffer import SeriesBuffer

    view = SessionView("peak", "run")
    qtbot.addWidget(view)
    view.resize(1400, 860)
    view.show()
    qtbot.waitExposed(view)
    t = np.arange(0, 60, 0.01)
    v = np.full(len(t), 40.0 * 2**20)
    v[(t > 1.0) & (t < 1.5)] = 135.0 * 2**20  # the peak, early: under the legend's corner
    view.buffers = {"rss": SeriesBuffer.from_arrays(t, v), ENVELOPE_SERIES: SeriesBuffer.from_arrays(t, v + 2**20)}
    view.end_t = float(t[-1])
    view._dirty = True
    view.redraw()
    plot = view.plot
    qtbot.waitUntil(lambda: plot.legend.isVisible() and plot.peak_label.isVisible())
    plot.set_follow(False)  # the memory axis zoomed (Ctrl+wheel) so that the peak is near the top
    plot.main.vb.setRange(xRange=(0, 10), yRange=(0, 145 * 2**20), padding=0)
    label, legend = plot.peak_label.sceneBoundingRect(), plot.legend.sceneBoundingRect()
    assert not label.intersects(legend), f"label {label} under the legend {legend}"
    assert plot.main.vb.sceneBoundingRect().contains(label)
    QtWidgets.QApplication.processEvents()


def _banner_colour(view) -> QtGui.QColor:
    view.banner.ensurePolished()
    image = view.banner.grab().toImage()
    return image.pixelColor(2, image.height() // 2)


def test_a_capture_that_finished_well_is_news_not_an_alarm(qtbot):
    """Before: every banner was red ("py-spy capture ok", "Loading…", "already in this database")."""
    from memview.ui.live_view import SessionView
    from memview.ui.view_controls import BANNER_COLOURS

    view = SessionView("banner", "run")
    qtbot.addWidget(view)
    view.resize(1000, 650)
    view.show()
    qtbot.waitExposed(view)
    dark = view.palette().color(QtGui.QPalette.ColorRole.Window).lightness() < 128
    for status, level in (("ok", "info"), ("failed", "error")):
        view.capture_progress.show()
        view._upsert_capture(
            {"tool": "py-spy", "pid": 1, "started_s": float(len(status)), "status": status, "path": None}
        )
        assert view.banner.isVisible() and f"py-spy capture {status}" in view.banner.text()
        assert view.banner.property("level") == level
        want = QtGui.QColor(BANNER_COLOURS[(level, dark)][0])
        got = _banner_colour(view)
        assert (got.red(), got.green(), got.blue()) == (want.red(), want.green(), want.blue()), (status, got.name())
