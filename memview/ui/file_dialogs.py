"""Every file dialog of the app, built so that it never opens a file it lists.

Why: POSIX record locks belong to a process and a file, and closing *any* descriptor of a file
drops every lock the process holds on it. Qt's stock file dialog (and the GTK one it may hand
off to) opens the files of the folder it shows to guess their type from their content
(``QMimeDatabase`` sniffing for the icon and the "Type" column) and closes them again. Pointed
at the database's folder, that silently released SQLite's locks on ``memview.db``, ``-wal`` and
``-shm``: the next ``memview run`` deleted the WAL under the app, and the file ended
``malformed`` (issue 17, item 1).

So each dialog here is Qt's own widget dialog (never the platform's native one, which runs its
own sniffing in our process), with an icon provider that answers from the name alone: one icon
for folders, one for files, a type from the suffix. Listing a folder is then ``stat`` calls only,
which hold no descriptor. ``tests/ui/test_file_dialog_locks.py`` checks it with ``strace``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets


class NameOnlyIconProvider(QtGui.QAbstractFileIconProvider):
    """Icons and type names from the file name: never opens, reads or sniffs a file."""

    def __init__(self, style: QtWidgets.QStyle) -> None:
        super().__init__()
        self._dir = style.standardIcon(QtWidgets.QStyle.StandardPixmap.SP_DirIcon)
        self._file = style.standardIcon(QtWidgets.QStyle.StandardPixmap.SP_FileIcon)
        self._drive = style.standardIcon(QtWidgets.QStyle.StandardPixmap.SP_DriveHDIcon)
        self._computer = style.standardIcon(QtWidgets.QStyle.StandardPixmap.SP_ComputerIcon)

    def icon(self, what: object) -> QtGui.QIcon:  # type: ignore[override]
        if isinstance(what, QtCore.QFileInfo):
            if what.isRoot():
                return self._drive
            return self._dir if what.isDir() else self._file
        kind = QtGui.QAbstractFileIconProvider.IconType
        if what == kind.Computer:
            return self._computer
        if what in (kind.Drive, kind.Network):
            return self._drive
        if what == kind.File:
            return self._file
        return self._dir

    def type(self, info: QtCore.QFileInfo) -> str:  # type: ignore[override]
        if info.isRoot():
            return "Drive"
        if info.isDir():
            return "Folder"
        suffix = info.suffix()
        return f"{suffix.upper()} file" if suffix else "File"


def _dialog(
    parent: QtWidgets.QWidget | None,
    caption: str,
    directory: str,
    name_filter: str,
    options: QtWidgets.QFileDialog.Option,
) -> QtWidgets.QFileDialog:
    """A widget dialog with the name-only icon provider in place *before* it lists any folder.

    ``QFileDialog``'s constructor lists its starting folder and selects its starting file with
    the stock provider, which sniffs that file at once. So it is built on an empty private folder
    (nothing to sniff), given the provider, and only then pointed at ``directory``.
    """
    with tempfile.TemporaryDirectory(prefix="memview-dialog-") as empty:
        dialog = QtWidgets.QFileDialog(parent, caption, empty, name_filter)
        dialog.setOptions(
            options
            | QtWidgets.QFileDialog.Option.DontUseNativeDialog
            | QtWidgets.QFileDialog.Option.DontUseCustomDirectoryIcons
        )
        provider = NameOnlyIconProvider(dialog.style())
        dialog.setIconProvider(provider)
        dialog._memview_icon_provider = provider  # type: ignore[attr-defined]  # the dialog does not own it
    start = Path(directory).expanduser() if directory else Path.cwd()
    if not start.is_absolute():
        start = Path.cwd() / start
    if start.is_dir():
        dialog.setDirectory(str(start))
    else:
        dialog.setDirectory(str(start.parent if start.parent.is_dir() else Path.cwd()))
        dialog.selectFile(start.name)
    return dialog


def _run(dialog: QtWidgets.QFileDialog) -> str:
    try:
        if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return ""
        files = dialog.selectedFiles()
        return files[0] if files else ""
    finally:
        dialog.deleteLater()


def save_file_name(
    parent: QtWidgets.QWidget | None,
    caption: str,
    directory: str = "",
    name_filter: str = "",
    options: QtWidgets.QFileDialog.Option | None = None,
) -> str:
    """Like ``QFileDialog.getSaveFileName`` (returns the path, "" when cancelled), without sniffing."""
    dialog = _dialog(parent, caption, directory, name_filter, options or QtWidgets.QFileDialog.Option(0))
    dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QtWidgets.QFileDialog.FileMode.AnyFile)
    return _run(dialog)


def open_file_name(parent: QtWidgets.QWidget | None, caption: str, directory: str = "", name_filter: str = "") -> str:
    """Like ``QFileDialog.getOpenFileName`` (returns the path, "" when cancelled), without sniffing."""
    dialog = _dialog(parent, caption, directory, name_filter, QtWidgets.QFileDialog.Option(0))
    dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptOpen)
    dialog.setFileMode(QtWidgets.QFileDialog.FileMode.ExistingFile)
    return _run(dialog)


def existing_directory(parent: QtWidgets.QWidget | None, caption: str, directory: str = "") -> str:
    """Like ``QFileDialog.getExistingDirectory`` ("" when cancelled), without sniffing."""
    dialog = _dialog(parent, caption, directory, "", QtWidgets.QFileDialog.Option.ShowDirsOnly)
    dialog.setFileMode(QtWidgets.QFileDialog.FileMode.Directory)
    return _run(dialog)
