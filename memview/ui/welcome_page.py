"""The empty workspace: three big ways to start (run, attach, watch), each with its shortcut.

Its own module so the window's construction stays about layout; the page only needs the three
actions and the theme's muted colour.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from memview.ui import theme


class WelcomePage(QtWidgets.QWidget):
    """The empty workspace: three big ways to start."""

    def __init__(self, actions: list[QtGui.QAction], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addStretch(2)
        title = QtWidgets.QLabel("What do you want to measure?")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(title)
        sub = QtWidgets.QLabel(
            "memview records the memory of a command, a running process tree or a service, "
            "with exact peaks, phases and captures."
        )
        sub.setStyleSheet(f"color: {theme.current().muted};")
        sub.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        sub.setWordWrap(True)
        layout.addWidget(sub)
        layout.addSpacing(24)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        blurbs = [
            "Launch a program and record it and its children until it exits.",
            "Pick a running process, like in a task manager, and record its tree.",
            "Poll an HTTP endpoint that reports a service's own memory.",
        ]
        self.buttons: list[QtWidgets.QToolButton] = []
        for action, blurb in zip(actions, blurbs):
            button = QtWidgets.QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(QtCore.QSize(40, 40))
            button.setMinimumSize(170, 110)
            bfont = button.font()
            bfont.setPointSizeF(bfont.pointSizeF() * 1.2)
            bfont.setBold(True)
            button.setFont(bfont)
            if theme.current().dark:
                button.setStyleSheet(
                    "QToolButton { border: 1px solid #4a4d53; border-radius: 8px; padding: 10px;"
                    " background: #33363b; } QToolButton:hover { background: #3b4048;"
                    " border-color: #7fb3e6; }"
                )
            else:
                button.setStyleSheet(
                    "QToolButton { border: 1px solid #c8ccd2; border-radius: 8px; padding: 10px;"
                    " background: #f7f9fb; } QToolButton:hover { background: #e9f0f7;"
                    " border-color: #4e79a7; }"
                )
            col = QtWidgets.QVBoxLayout()
            col.addWidget(button, 0, QtCore.Qt.AlignmentFlag.AlignHCenter)
            keys = action.shortcut().toString(QtGui.QKeySequence.SequenceFormat.NativeText)
            text = QtWidgets.QLabel(f"{blurb}\n{keys}")
            text.setWordWrap(True)
            text.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop)
            text.setStyleSheet(f"color: {theme.current().muted};")
            text.setFixedWidth(180)
            col.addWidget(text, 0, QtCore.Qt.AlignmentFlag.AlignHCenter)
            row.addLayout(col)
            row.addSpacing(16)
            self.buttons.append(button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addSpacing(24)
        hint = QtWidgets.QLabel("Or double-click a session in the library to reopen it.")
        hint.setStyleSheet(f"color: {theme.current().muted};")
        hint.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(hint)
        layout.addStretch(3)
