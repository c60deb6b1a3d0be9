"""The window fits a small screen and follows a dark palette; the threshold drag holds the scale.

A real session (``memview run`` of tests/ui/workloads/marked_phases.py) is open in each case, so
the sizes and colours measured are those of a window showing a plot, phases and events.
"""

from __future__ import annotations

import re

import pytest
from PySide6 import QtGui
from support import MiB, workload
from test_instrument import _open, recorded  # noqa: F401 - the fixture

from memview.ui import theme
from memview.ui.live_view import SessionView


def test_the_window_fits_1000_by_650(qtbot, window, recorded):  # noqa: F811
    view = _open(qtbot, window)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1000 and hint.height() <= 650, hint
    window.resize(1000, 650)
    qtbot.waitUntil(lambda: window.width() == 1000 and window.height() == 650)
    assert view.plot.width() >= 360 and view.plot.height() >= 240
    assert view.side.isVisible() and window.library.isVisible()
    # the side panels fold away for a wider plot, and come back
    before = view.plot.width()
    view.details_button.setChecked(False)
    window.act_library.trigger()
    qtbot.waitUntil(lambda: view.plot.width() > before + 400)
    assert view.splitter.sizes()[1] == 0 and window.splitter.sizes()[0] == 0
    view.details_button.setChecked(True)
    window.act_library.trigger()
    qtbot.waitUntil(lambda: view.side.width() > 0 and window.library.width() > 0)


def test_a_live_recording_keeps_the_window_within_1000_by_650(qtbot, window):
    """Before: a recording's extra buttons (Follow, Capture now, Stop) pushed the least width to 1139 px,
    and a long command line as the title to 1834 px: the window grew past a 1000 px screen and the
    side panel was cut off at its right edge."""
    from memview.ui.live_session import RunSpec

    window.resize(1000, 650)
    qtbot.waitUntil(lambda: window.width() == 1000)
    name = "extract every page of a very long document name " * 8  # the title must not widen the window
    live = window.start_session(RunSpec(argv=workload("hold.py", 20, 60), interval=0.05, capture="none", name=name))
    qtbot.waitUntil(
        lambda: (
            isinstance(window.current_view(), SessionView)
            and window.current_view().live is live
            and live.recorder is not None
        ),
        timeout=20000,
    )
    view = window.current_view()
    qtbot.waitUntil(lambda: view.buffers.get("rss") is not None and view.buffers["rss"].count > 2, timeout=20000)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1000 and hint.height() <= 650, hint
    assert window.width() == 1000 and window.height() == 650
    side = view.side.mapTo(window, view.side.rect().topRight())
    assert side.x() < window.width() and view.plot.width() >= 360  # the panel's right edge is on screen
    live.stop()
    qtbot.waitUntil(lambda: not live.running, timeout=30000)


def test_a_new_window_is_no_larger_than_the_screen(qtbot, tmp_path, settings):
    """Before: the window opened at 1500 x 900 whatever the screen, its right part off a small one."""
    from memview.ui.main_window import MainWindow

    win = MainWindow(tmp_path / "memview.db", settings)
    qtbot.addWidget(win)
    win.show()
    free = win.screen().availableGeometry()
    least = win.minimumSizeHint()
    assert free.width() < 1500 or free.height() < 900  # the offscreen screen is the small one here
    assert win.width() <= max(free.width(), least.width()) and win.height() <= max(free.height(), least.height())
    qtbot.waitUntil(lambda: win.store is not None, timeout=10000)


@pytest.fixture
def dark(qapp):
    old = qapp.palette()
    qapp.setPalette(theme.dark_palette())
    yield
    qapp.setPalette(old)


def test_a_dark_palette_gives_a_dark_plot_and_readable_text(qtbot, dark, window, recorded):  # noqa: F811
    view = _open(qtbot, window)
    palette = window.palette()
    base = palette.color(QtGui.QPalette.ColorRole.Base).name()
    background = view.plot.backgroundBrush().color().name()
    assert background == base and QtGui.QColor(background).lightness() < 80
    axis = view.plot.main.getAxis("left")
    assert theme.contrast(axis.textPen().color().name(), background) >= 4.5
    assert theme.contrast(view.plot.theme.total, background) >= 4.5
    assert theme.contrast(view.plot.peak_label.color.name(), background) >= 4.5
    # the state badge and the muted labels are readable on the window
    window_colour = palette.color(QtGui.QPalette.ColorRole.Window).name()
    badge = re.search(r"color:(#[0-9a-fA-F]{6})", view.side.state_label.text()).group(1)
    assert theme.contrast(badge, window_colour) >= 4.5
    assert theme.contrast(theme.current(palette).muted, window_colour) >= 4.5
    # the library's cards paint on the palette's base, with the grey line readable
    image = QtGui.QImage(window.library.view.viewport().size(), QtGui.QImage.Format.Format_RGB32)
    window.library.view.viewport().render(image)
    corner = image.pixelColor(image.width() - 3, image.height() - 3)
    assert corner.lightness() < 80


def test_dragging_the_threshold_does_not_rescale_the_plot_under_the_cursor(qtbot, window):
    from test_window import _run_from_dialog

    view: SessionView = _run_from_dialog(qtbot, window, workload("ui_phases.py", 60))
    # past the load phase (+30 MiB): the drag below goes to 1.5 x the scale's top, over 50 MiB whatever the load
    qtbot.waitUntil(
        lambda: (
            view.buffers.get("rss") is not None
            and view.buffers["rss"].count > 10
            and (view.buffers["rss"].max or 0) > 40 * MiB
        ),
        timeout=30000,
    )
    view.threshold_button.setChecked(True)
    line = view.plot.threshold
    qtbot.waitUntil(lambda: view.redraws > 3, timeout=15000)
    y_range = view.plot.main.vb.viewRange()[1]
    # what a drag does: the line is held (moving) and follows the cursor up
    line.moving = True
    line.setValue(y_range[1] * 1.5)
    start = view.redraws
    qtbot.waitUntil(lambda: view.redraws > start + 5, timeout=15000)
    assert view.plot.main.vb.viewRange()[1] == y_range
    line.moving = False
    line.sigPositionChangeFinished.emit(line)
    qtbot.waitUntil(lambda: view.plot.main.vb.viewRange()[1][1] > line.value(), timeout=15000)
    assert view.live.recorder.threshold == int(round(line.value()))
    assert line.value() > 50 * MiB


def test_at_1000_px_the_phase_names_are_whole(qtbot, tmp_path, settings, recorded):  # noqa: F811
    """Before: a first window at 1000 x 650 gave the library 330 px, the plot could not spare the side
    panel any width, and every phase name in the table was elided to "…"."""
    from memview.ui.main_window import MainWindow

    win = MainWindow(tmp_path / "memview.db", settings)
    qtbot.addWidget(win)
    win.resize(1000, 650)
    win.show()
    qtbot.waitUntil(lambda: win.store is not None, timeout=10000)
    view = _open(qtbot, win)
    assert win.splitter.sizes()[0] <= 250
    table = view.side.phases
    qtbot.waitUntil(
        lambda: table.rowCount() == 2 and table.columnWidth(0) >= view.side.name_width_needed() - 1, timeout=10000
    )
    assert view.plot.width() >= 360
