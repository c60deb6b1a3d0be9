"""Found by driving the real window at 1000 x 650: the crosshair tooltip was cut off at the plot's
left edge when the cursor was too far right for it to fit on the right and too far left for it to
fit on the left (a narrow plot, Per process on). It now stays whole inside the plot."""

from __future__ import annotations

from PySide6 import QtCore
from support import MiB
from test_instrument import _open, recorded  # noqa: F401 - the fixture


def test_the_crosshair_tooltip_is_never_cut_off_by_the_plot_edges(qtbot, window, recorded):  # noqa: F811
    view = _open(qtbot, window)
    window.resize(1000, 650)
    qtbot.waitUntil(lambda: window.width() == 1000)
    view.per_process_button.setChecked(True)  # a wider tooltip: one row per process
    plot = view.plot
    box = plot.main.vb.sceneBoundingRect()
    for fraction in (0.02, 0.3, 0.5, 0.62, 0.75, 0.98):
        x0, x1 = plot.main.vb.viewRange()[0]
        t = x0 + (x1 - x0) * fraction
        scene = plot.main.vb.mapViewToScene(QtCore.QPointF(t, 20 * MiB))
        qtbot.mouseMove(plot.viewport(), plot.mapFromScene(scene))
        near = (x1 - x0) * 0.02

        def at_cursor(t: float = t, near: float = near) -> bool:
            return plot.tip.isVisible() and abs(plot.cross.value() - t) < near

        qtbot.waitUntil(at_cursor, timeout=20000)

        def whole() -> bool:  # the text item's geometry settles when it is next laid out: wait for it
            tip = plot.tip.sceneBoundingRect()
            return tip.width() < box.width() and tip.left() >= box.left() - 1 and tip.right() <= box.right() + 1

        qtbot.waitUntil(whole, timeout=20000)


def test_the_crosshair_tooltip_goes_when_the_cursor_leaves_the_plot(qtbot, window, recorded):  # noqa: F811
    """Before: moving from the plot straight onto the library left the tooltip and crosshair standing."""
    view = _open(qtbot, window)
    plot = view.plot
    x0, x1 = plot.main.vb.viewRange()[0]
    scene = plot.main.vb.mapViewToScene(QtCore.QPointF((x0 + x1) / 2, 20 * MiB))
    qtbot.mouseMove(plot.viewport(), plot.mapFromScene(scene))
    qtbot.waitUntil(lambda: plot.tip.isVisible(), timeout=20000)
    qtbot.mouseMove(window.library.view.viewport(), QtCore.QPoint(20, 20))
    qtbot.waitUntil(lambda: not plot.tip.isVisible() and not plot.cross.isVisible(), timeout=20000)
    assert "hover the plot" in view.readout.text()


def test_the_peak_label_is_not_hidden_under_the_legend(qtbot, window, recorded):  # noqa: F811
    """Before: at 1000 x 650 the legend (RSS, exact envelope) was drawn over "peak 134.6 MiB ✓"."""
    view = _open(qtbot, window)
    window.resize(1000, 650)
    qtbot.waitUntil(lambda: window.width() == 1000)
    plot = view.plot  # no zoom, no redraw: the resize alone must move the label or the legend
    qtbot.waitUntil(lambda: plot.peak_label.isVisible() and plot.legend.isVisible(), timeout=20000)

    def apart() -> bool:
        return not plot.peak_label.sceneBoundingRect().intersects(plot.legend.sceneBoundingRect())

    qtbot.waitUntil(apart, timeout=20000)
