"""``MEMVIEW_THEME`` (dark, light, system) and a desktop that asks for dark: the app's palette.

Driving the real app under Xvfb showed no way to get the dark theme at all without a desktop's
platform theme; ``MEMVIEW_THEME=dark`` is the switch, and the window built after it is dark.
"""

from __future__ import annotations

import pytest
from PySide6 import QtGui

from memview.ui import theme
from memview.ui.app import choose_palette


@pytest.fixture
def restore_look(qapp):
    palette, style = QtGui.QPalette(qapp.palette()), qapp.style().name()
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


def test_memview_theme_dark_gives_a_dark_window_with_readable_text(qtbot, restore_look, tmp_path, settings):
    from memview.ui.main_window import MainWindow

    assert choose_palette(restore_look, "dark") == "dark"
    palette = restore_look.palette()
    assert theme.is_dark(palette)
    win = MainWindow(tmp_path / "memview.db", settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.store is not None, timeout=10000)
    window_colour = win.palette().color(QtGui.QPalette.ColorRole.Window).name()
    text = win.palette().color(QtGui.QPalette.ColorRole.WindowText).name()
    assert QtGui.QColor(window_colour).lightness() < 80 and theme.contrast(text, window_colour) >= 4.5
    assert theme.current().dark


def test_memview_theme_light_and_a_bad_value(restore_look, capsys):
    assert choose_palette(restore_look, "light") == "light"
    assert not theme.is_dark(restore_look.palette())
    assert choose_palette(restore_look, "purple") == "system"  # offscreen asks for no scheme
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MEMVIEW_THEME='purple' is not dark, light or system" in err


def test_run_and_stop_icons_are_readable_on_a_dark_toolbar(qtbot, restore_look, tmp_path, settings):
    """Before: the style's ▶ and ■ stayed black on the dark toolbar."""
    from memview.ui.main_window import MainWindow

    choose_palette(restore_look, "dark")
    win = MainWindow(tmp_path / "memview.db", settings)
    qtbot.addWidget(win)
    background = win.palette().color(QtGui.QPalette.ColorRole.Window).name()
    for action in (win.act_run, win.act_stop):
        image = action.icon().pixmap(16, 16).toImage()
        inked = [
            image.pixelColor(x, y)
            for x in range(image.width())
            for y in range(image.height())
            if image.pixelColor(x, y).alpha() > 200
        ]
        assert inked, action.text()
        darkest = min(inked, key=lambda c: c.lightness())
        assert theme.contrast(darkest.name(), background) >= 3.0, (action.text(), darkest.name())
    qtbot.waitUntil(lambda: win.store is not None, timeout=10000)
