"""Light or dark, from the system palette: the few colours the app paints itself.

Qt's widgets follow the palette on their own; what memview paints by hand (the plot's background
and axes, the total curve, the library cards' grey text, the status badge) must follow it too,
or a dark desktop gets a white plot and a dark-grey badge on a dark-grey window. Everything that
paints asks :func:`current` once when it is built (and again on a palette change).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtGui, QtWidgets


@dataclass(frozen=True, slots=True)
class Theme:
    dark: bool
    background: str  # the plot's background (the palette's Base)
    foreground: str  # axis text and lines
    text: str  # body text
    muted: str  # secondary text: labels, hints, the library's second line
    grid_alpha: float
    total: str  # the RSS curve
    total_fill: tuple[int, int, int, int]
    legend_fill: tuple[int, int, int, int]
    label_fill: tuple[int, int, int, int]  # behind text drawn on the plot (peak, threshold, tooltip)
    good: str
    bad: str
    warn: str
    neutral_badge: str  # the state badge when nothing is recording


LIGHT = Theme(
    False,
    "#ffffff",
    "#444444",
    "#222222",
    "#666666",
    0.15,
    "#1f4e79",
    (31, 78, 121, 40),
    (255, 255, 255, 200),
    (255, 255, 255, 225),
    "#2e7d32",
    "#c0392b",
    "#b9770e",
    "#2c3e50",
)
DARK_BASE = Theme(
    True,
    "#1e1f22",
    "#c8ccd2",
    "#e8eaed",
    "#9aa0a6",
    0.22,
    "#7fb3e6",
    (127, 179, 230, 50),
    (40, 42, 46, 210),
    (30, 31, 34, 230),
    "#81c995",
    "#f28b82",
    "#fdd663",
    "#e8eaed",
)


def is_dark(palette: QtGui.QPalette | None = None) -> bool:
    """A dark palette: its window colour is darker than its text."""
    if palette is None:
        app = QtWidgets.QApplication.instance()
        palette = app.palette() if isinstance(app, QtWidgets.QApplication) else QtGui.QPalette()
    window = palette.color(QtGui.QPalette.ColorRole.Window)
    text = palette.color(QtGui.QPalette.ColorRole.WindowText)
    return window.lightness() < text.lightness()


def current(palette: QtGui.QPalette | None = None) -> Theme:
    """The theme for ``palette`` (default: the application's)."""
    if palette is None:
        app = QtWidgets.QApplication.instance()
        palette = app.palette() if isinstance(app, QtWidgets.QApplication) else QtGui.QPalette()
    if not is_dark(palette):
        return LIGHT
    base = palette.color(QtGui.QPalette.ColorRole.Base).name()
    text = palette.color(QtGui.QPalette.ColorRole.Text).name()
    return Theme(
        True,
        base,
        DARK_BASE.foreground,
        text,
        DARK_BASE.muted,
        DARK_BASE.grid_alpha,
        DARK_BASE.total,
        DARK_BASE.total_fill,
        DARK_BASE.legend_fill,
        DARK_BASE.label_fill,
        DARK_BASE.good,
        DARK_BASE.bad,
        DARK_BASE.warn,
        DARK_BASE.neutral_badge,
    )


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21; 4.5 is readable body text)."""

    def lum(name: str) -> float:
        c = QtGui.QColor(name)
        parts = []
        for v in (c.redF(), c.greenF(), c.blueF()):
            parts.append(v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4)
        return 0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]

    la, lb = sorted((lum(a), lum(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def dark_palette() -> QtGui.QPalette:
    """A plain dark palette (Fusion-like), for a desktop that asks for dark and for the tests."""
    p = QtGui.QPalette()
    role = QtGui.QPalette.ColorRole
    colours = {
        role.Window: "#2b2d31",
        role.WindowText: "#e8eaed",
        role.Base: "#1e1f22",
        role.AlternateBase: "#26282c",
        role.Text: "#e8eaed",
        role.Button: "#33363b",
        role.ButtonText: "#e8eaed",
        role.Highlight: "#3d6fb4",
        role.HighlightedText: "#ffffff",
        role.ToolTipBase: "#33363b",
        role.ToolTipText: "#e8eaed",
        role.PlaceholderText: "#9aa0a6",
        role.Link: "#8ab4f8",
        role.Mid: "#44474d",
        role.Dark: "#17181a",
        role.Light: "#4a4d53",
    }
    for r, c in colours.items():
        p.setColor(r, QtGui.QColor(c))
    disabled = QtGui.QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(disabled, r, QtGui.QColor("#6b6f76"))  # greyed actions must look greyed
    return p
