"""What a launched command prints: kept in two files beside its session, shown in a pane.

Why files and not pipes: a pipe ties the child to memview. When the user detaches, a child
writing into a pipe nobody drains blocks once 64 KiB are queued, and is killed by SIGPIPE once
memview has quit; a child left on memview's own stdout keeps writing into memview's terminal.
A file has neither problem, survives a detach, and is the record of the run afterwards. The
pane tails the files (a few hundred KiB per look at most) and keeps only the last
:data:`MAX_LINES` lines, so a chatty child costs bounded memory.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import IO

from PySide6 import QtCore, QtGui, QtWidgets

from memview.ui import theme

MAX_LINES = 5000
READ_CHUNK = 256 * 1024
STREAMS = ("stdout", "stderr")


class ChildOutput:
    """The two files a launched child writes (opened here, handed to the launcher)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stem = f"run-{uuid.uuid4().hex[:12]}"
        self.paths = {s: folder / f"{stem}.{s}.log" for s in STREAMS}
        self.files: dict[str, IO[bytes]] = {s: open(p, "wb") for s, p in self.paths.items()}  # noqa: SIM115

    def launch_kwargs(self) -> dict[str, IO[bytes]]:
        return {"stdout": self.files["stdout"], "stderr": self.files["stderr"]}

    def close_ours(self) -> None:
        """The child has its own descriptors now: memview's copies go."""
        for f in self.files.values():
            f.close()

    def move_to(self, folder: Path) -> None:
        """Into the session's artefact folder once its id is known (the child keeps writing)."""
        for s, path in list(self.paths.items()):
            target = folder / f"child-{s}.log"
            try:
                os.replace(path, target)
            except OSError:
                continue
            self.paths[s] = target


class Tail:
    """Reads what was appended to a file since the last look, in whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""

    def read(self, limit: int = READ_CHUNK) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size - self.offset > 4 * limit:  # far behind: skip to the newest output
                    self.offset = size - limit
                    self._partial = b""
                f.seek(self.offset)
                data = f.read(limit)
        except OSError:
            return []
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]


class OutputPane(QtWidgets.QWidget):
    """The child's stdout and stderr (stderr in the warning colour), bounded, searchable."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.tails: dict[str, Tail] = {}
        self.lines_seen = 0
        self.text = QtWidgets.QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.text.setFont(font)
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("Find in the output (Enter: next, Shift+Enter: previous)")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.find_next)
        self.search.textChanged.connect(self._search_changed)
        self.search.installEventFilter(self)
        self.matches = QtWidgets.QLabel()
        self.matches.setStyleSheet(f"color: {theme.current().muted};")
        self.where = QtWidgets.QLabel()
        self.where.setStyleSheet(f"color: {theme.current().muted};")
        self.where.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long path must not widen the window (it stays readable by selecting it, and in the tooltip)
        self.where.setMinimumWidth(10)
        self.where.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        top = QtWidgets.QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        title = QtWidgets.QLabel("<b>Output</b>")
        top.addWidget(title)
        top.addWidget(self.search, 1)
        top.addWidget(self.matches)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.where)
        th = theme.current()
        self._formats = {"stdout": QtGui.QTextCharFormat(), "stderr": QtGui.QTextCharFormat()}
        self._formats["stderr"].setForeground(QtGui.QColor(th.bad))
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.poll)

    def follow(self, paths: dict[str, Path]) -> None:
        """Tail these files (stream name -> path) from their start."""
        self.tails = {s: Tail(p) for s, p in paths.items()}
        self._where(paths)
        self.poll()
        self.timer.start()

    def _where(self, paths: dict[str, Path]) -> None:
        text = "kept in " + ", ".join(str(p) for p in paths.values())
        self.where.setText(text)
        self.where.setToolTip(text)

    def stop_following(self) -> None:
        self.poll()
        self.timer.stop()

    def poll(self) -> None:
        at_end = self.text.verticalScrollBar().value() >= self.text.verticalScrollBar().maximum() - 2
        added = 0
        cursor = QtGui.QTextCursor(self.text.document())
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
        for stream, tail in self.tails.items():
            for line in tail.read():
                if self.lines_seen or added:
                    cursor.insertBlock()
                cursor.insertText(line, self._formats[stream])
                added += 1
        if added:
            self.lines_seen += added
            if at_end:
                self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())
            if self.search.text():
                self._count_matches()

    def plain_text(self) -> str:
        return self.text.toPlainText()

    # -- search ------------------------------------------------------------------------------------------
    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        if obj is self.search and event.type() == QtCore.QEvent.Type.KeyPress:
            keys = QtCore.Qt.Key
            if event.key() in (keys.Key_Return, keys.Key_Enter) and (  # type: ignore[attr-defined]
                event.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier
            ):  # type: ignore[attr-defined]
                self.find_next(backward=True)
                return True
        return super().eventFilter(obj, event)

    def _search_changed(self, _text: str) -> None:
        self._count_matches()
        cursor = self.text.textCursor()
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.Start)
        self.text.setTextCursor(cursor)
        if self.search.text():
            self.find_next()

    def _count_matches(self) -> None:
        needle = self.search.text()
        if not needle:
            self.matches.setText("")
            self._highlight([])
            return
        doc = self.text.document()
        found = []
        cursor = doc.find(needle)
        while not cursor.isNull() and len(found) < 1000:
            found.append(QtGui.QTextCursor(cursor))
            cursor = doc.find(needle, cursor)
        self.matches.setText(f"{len(found)}{'+' if len(found) >= 1000 else ''} found")
        self._highlight(found)

    def _highlight(self, cursors: list[QtGui.QTextCursor]) -> None:
        fmt = QtGui.QTextCharFormat()
        fmt.setBackground(QtGui.QColor(253, 214, 99, 150))
        selections = []
        for c in cursors:
            sel = QtWidgets.QTextEdit.ExtraSelection()
            sel.cursor = c  # type: ignore[attr-defined]
            sel.format = fmt  # type: ignore[attr-defined]
            selections.append(sel)
        self.text.setExtraSelections(selections)

    def find_next(self, backward: bool = False) -> bool:
        needle = self.search.text()
        if not needle:
            return False
        flags = QtGui.QTextDocument.FindFlag.FindBackward if backward else QtGui.QTextDocument.FindFlag(0)
        if self.text.find(needle, flags):
            return True
        cursor = self.text.textCursor()  # wrap around
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End if backward else QtGui.QTextCursor.MoveOperation.Start)
        self.text.setTextCursor(cursor)
        return bool(self.text.find(needle, flags))
