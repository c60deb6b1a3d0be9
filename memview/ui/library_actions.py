"""What the window does to stored sessions: rename, tags, notes, delete, export and import of
bundles (with progress), and compare.

A mixin of :class:`~memview.ui.main_window.MainWindow`. Every store call runs on the database
worker; a refusal reaches the user as one line (a dialog or the status bar), never a traceback.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from memview.bundle import BundleError, ExportResult, ImportResult, export_session, import_bundle
from memview.ui import file_dialogs
from memview.ui.compare_view import CompareView
from memview.ui.dialogs import TextDialog
from memview.ui.library import display_name

log = logging.getLogger(__name__)


def export_file_name(row: dict[str, Any]) -> str:
    """A bundle's default file name from the session's name ("kreuzberg-big-pdf.memview.zip"), so
    a folder of exports reads like the library; the id keeps two sessions of one name apart."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", display_name(row)).strip("-._")[:60] or "session"
    return f"{stem}-{row['id']}.memview.zip"


def _one_line(job: Any) -> Any:
    """A bundle job whose refusal (BundleError) reaches the user as its own one-line message."""

    def run(store: Any) -> Any:
        try:
            return job(store)
        except BundleError as exc:
            raise ValueError(str(exc)) from None

    return run


class LibraryActions:
    """Edits, deletes, exports, imports and compares the sessions selected in the library."""

    def _one_selected(self) -> int | None:
        ids = self.library.selected_ids()
        if len(ids) != 1:
            self.statusBar().showMessage("Select one session first", 4000)
            return None
        return ids[0]

    def _ask_text(self, title: str, label: str, field: str, to_fields: Any, multiline: bool = False) -> None:
        """A non-blocking text dialog on the one selected session's ``field``; ``to_fields(text)``
        gives the store fields to write."""
        sid = self._one_selected()
        if sid is None:
            return
        row = self.library.row_for(sid) or {}
        value = row.get(field)
        text = ", ".join(value) if isinstance(value, list) else (value or "")
        dialog = TextDialog(self, title, label.format(sid=sid), text, multiline=multiline)
        dialog.textValueSelected.connect(lambda typed: self.edit_session(sid, **to_fields(typed)))
        self.dialog = dialog
        dialog.open()

    def rename_selected(self) -> None:
        self._ask_text("Rename session", "Name of session #{sid}:", "name", lambda text: {"name": text.strip() or None})

    def tag_selected(self) -> None:
        self._ask_text(
            "Tags",
            "Tags of session #{sid} (comma-separated):",
            "tags",
            lambda text: {"tags": [t.strip() for t in text.split(",") if t.strip()]},
        )

    def note_selected(self) -> None:
        self._ask_text("Notes", "Notes on session #{sid}:", "notes", lambda text: {"notes": text}, multiline=True)

    def edit_session(self, sid: int, **fields: Any) -> None:
        if self.db is None:
            return

        def done(_: Any) -> None:
            view = self.views.get(sid)
            if view is not None and "name" in fields:
                view.title = fields["name"] or f"#{sid}"
                view._set_titles()
                self._update_tab_titles()
            self.refresh_library()

        self.db.submit(
            lambda s: s.update_session(sid, **fields),
            done,
            lambda msg: self.show_message("Cannot edit the session", msg),
        )

    def delete_selected(self) -> None:
        ids = [sid for sid in self.library.selected_ids() if sid not in self.live_ids()]
        if not ids:
            self.statusBar().showMessage("Select stored sessions to delete (a recording must be stopped first)", 5000)
            return
        names = ", ".join(display_name(self.library.row_for(s) or {"id": s}) for s in ids[:5])
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Warning,
            "Delete sessions",
            f"Delete {len(ids)} session{'s' if len(ids) > 1 else ''}: {names}{more}?",
            QtWidgets.QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setInformativeText(
            "Their samples, phases, events and capture records are removed from the database. "
            "Capture files on disk are kept."
        )
        delete = box.addButton("Delete", QtWidgets.QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.buttonClicked.connect(lambda button: self._delete(ids) if button is delete else None)
        self.dialog = box
        box.open()

    def _delete(self, ids: list[int]) -> None:
        if self.db is None:
            return

        def job(store: Any) -> None:
            for sid in ids:
                store.delete_session(sid)

        def done(_: Any) -> None:
            for sid in ids:
                view = self.views.get(sid)
                if view is not None:
                    self.close_tab(self.tabs.indexOf(view))
            self.refresh_library()
            self.statusBar().showMessage(f"Deleted {len(ids)} session(s)", 5000)

        self.db.submit(job, done, lambda msg: self.show_message("Cannot delete", msg))

    def export_selected(self, path: str | None = None) -> None:
        """Export the selected session as a bundle (memview.bundle); ``path`` skips the file dialog."""
        sid = self._one_selected()
        if sid is None or self.db is None:
            return
        if path is None:
            default_name = export_file_name(self.library.row_for(sid) or {"id": sid})
            path = file_dialogs.save_file_name(
                self, "Export session", default_name, "memview bundle (*.memview.zip *.zip)"
            )
        if not path:
            return
        token = self.busy(f"Exporting session #{sid}…")

        def done(result: ExportResult) -> None:
            self.idle(token)
            self.last_export = result
            note = f" ({'; '.join(result.warnings)})" if result.warnings else ""
            self.statusBar().showMessage(f"Exported session #{sid} to {result.path}{note}", 8000)

        def failed(msg: str) -> None:
            self.idle(token)
            self.show_message("Export failed", msg)

        self.db.submit(_one_line(lambda s: export_session(s, sid, Path(path), overwrite=True)), done, failed)

    def import_bundle(self, path: str | None = None) -> None:
        """Import a bundle; ``path`` skips the file dialog. A bundle already present says so."""
        if path is None:
            path = file_dialogs.open_file_name(self, "Import bundle", "", "memview bundle (*.zip)")
        if not path or self.db is None:
            return
        token = self.busy(f"Importing {Path(path).name}…")

        def done(result: ImportResult) -> None:
            self.idle(token)
            self.last_import = result
            self.refresh_library()
            view = self.open_session(result.session_id)
            if not result.created:
                text = (
                    f"{Path(path).name} is already in this database as session #{result.session_id}: "
                    "nothing was imported; the session is open."
                )
                self.statusBar().showMessage(text, 10000)
                view.show_banner(text, timeout_ms=10000, level="info")
            else:
                self.statusBar().showMessage(f"Imported {Path(path).name} as session #{result.session_id}", 8000)

        def failed(msg: str) -> None:
            self.idle(token)
            self.show_message("Import failed", msg)

        self.db.submit(_one_line(lambda s: import_bundle(s, Path(path))), done, failed)

    def compare_selected(self) -> None:
        ids = self.library.selected_ids()
        if len(ids) < 2:
            self.statusBar().showMessage("Select two or more sessions to compare (Ctrl+click)", 5000)
            return
        try:
            widget = CompareView(self.store, ids, self)
        except Exception as exc:  # the compare view is another module: keep the app alive
            log.exception("compare view failed")
            self.show_message("Cannot compare", str(exc))
            return
        self._add_tab(widget, "Compare " + ", ".join(f"#{i}" for i in ids))
