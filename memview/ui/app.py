"""The desktop app's entry point: ``memview`` with no arguments, or ``memview gui [--db PATH]``."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def icon_path() -> Path | None:
    """The app icon, wherever memview is installed (source tree, wheel, pipx, frozen build)."""
    from memview.resources import ICON, ResourceMissing, resource_path

    try:
        return resource_path(ICON)
    except ResourceMissing:
        return None


def resolve_db(db: str | None, last: str | None) -> Path:
    """--db (or $MEMVIEW_DB, which click folds into --db), else the last one used, else the default."""
    from memview.store import default_db_path

    if db:
        return Path(db).expanduser()
    if last and Path(last).exists():
        return Path(last)
    return default_db_path()


def _no_display() -> str | None:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return "no display found (DISPLAY and WAYLAND_DISPLAY are unset): use the command line (memview --help)"


def choose_palette(app: object, choice: str | None = None) -> str:
    """Light or dark, as the desktop asks, or as ``$MEMVIEW_THEME`` (``dark``, ``light``) says.

    A desktop that asks for dark through Qt's colour-scheme hint but whose platform theme hands
    Qt a light palette (a bare X session, some window managers) would otherwise get a light window;
    and a user on such a desktop has one switch. Returns what was chosen ("dark", "light", or
    "system" when the platform's own palette is kept). Bad values are named on stderr and ignored.
    """
    from PySide6 import QtCore, QtWidgets

    from memview.ui import theme

    assert isinstance(app, QtWidgets.QApplication)
    choice = (choice if choice is not None else os.environ.get("MEMVIEW_THEME", "")).strip().lower()
    if choice not in ("", "dark", "light", "system"):
        print(f"memview: MEMVIEW_THEME={choice!r} is not dark, light or system; using the system's", file=sys.stderr)
        choice = ""
    if choice in ("", "system"):
        asks_dark = app.styleHints().colorScheme() == QtCore.Qt.ColorScheme.Dark
        if not asks_dark or theme.is_dark(app.palette()):
            return "system"
        choice = "dark"
    app.setStyle("Fusion")  # the palette is honoured whole (some platform styles draw their own colours)
    app.setPalette(theme.dark_palette() if choice == "dark" else app.style().standardPalette())
    return choice


def main(db: str | None = None) -> int:
    """Open the main window and run until it closes; returns the process exit status."""
    problem = _no_display()
    if problem:
        print(f"memview: {problem}", file=sys.stderr)
        return 2
    from PySide6 import QtGui, QtWidgets

    from memview.ui.main_window import MainWindow
    from memview.ui.qt_check import binding_problem
    from memview.ui.settings import Settings

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    problem = binding_problem()
    if problem:
        print(f"memview: {problem}", file=sys.stderr)
        return 2
    app.setApplicationName("memview")
    app.setOrganizationName("memview")
    app.setApplicationDisplayName("memview")
    app.setDesktopFileName("memview")
    icon = icon_path()
    if icon is not None:
        app.setWindowIcon(QtGui.QIcon(str(icon)))
    choose_palette(app)
    settings = Settings()
    window = MainWindow(resolve_db(db, settings.last_db), settings)
    window.show()
    if (smoke_ms := os.environ.get("MEMVIEW_SMOKE_EXIT_MS", "")).isdigit():  # packaging/smoke.sh: show, print, quit
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(smoke_ms), lambda: (print(window.windowTitle(), flush=True), app.quit()))
    return int(app.exec())
