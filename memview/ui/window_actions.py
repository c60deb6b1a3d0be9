"""The main window's actions, menus and shortcuts, and which of them apply right now.

Every command the window offers is one QAction (menu, toolbar, context menu and shortcut share
it); keeping their construction and enabling rules here leaves :mod:`memview.ui.main_window`
with the layout and the workspace. A mixin of :class:`~memview.ui.main_window.MainWindow`: the
slots it names live in the window's other mixins.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from memview.ui import theme

SHORTCUTS = [
    ("Run command…", "Ctrl+R"),
    ("Attach to process…", "Ctrl+Shift+A"),
    ("Watch endpoint…", "Ctrl+Shift+W"),
    ("Stop recording", "Ctrl+."),
    ("Capture now", "Ctrl+K"),
    ("Follow newest data", "F"),
    ("Filter the library", "Ctrl+F"),
    ("Show or hide the library", "Ctrl+L"),
    ("Open selected session", "Enter"),
    ("Rename session", "F2"),
    ("Delete session", "Delete"),
    ("Compare selected", "Ctrl+D"),
    ("Export session", "Ctrl+E"),
    ("Import bundle", "Ctrl+I"),
    ("Refresh library", "F5"),
    ("Close tab", "Ctrl+W"),
    ("Open database…", "Ctrl+O"),
    ("Quit", "Ctrl+Q"),
]


#: the style's black glyphs (play, stop): drawn in the text colour under a dark palette
MONOCHROME = (QtWidgets.QStyle.StandardPixmap.SP_MediaPlay, QtWidgets.QStyle.StandardPixmap.SP_MediaStop)


def readable_icon(style: QtWidgets.QStyle, which: QtWidgets.QStyle.StandardPixmap) -> QtGui.QIcon:
    """The style's icon, except that a black glyph is recoloured to the palette's text colour on a
    dark palette (Run command's ▶ and Stop's ■ were black on dark grey, seen driving the app)."""
    icon = style.standardIcon(which)
    if which not in MONOCHROME or not theme.current().dark:
        return icon
    palette = QtWidgets.QApplication.palette()
    tinted = QtGui.QIcon()
    for mode, group in (
        (QtGui.QIcon.Mode.Normal, QtGui.QPalette.ColorGroup.Active),
        (QtGui.QIcon.Mode.Disabled, QtGui.QPalette.ColorGroup.Disabled),
    ):
        for size in icon.availableSizes() or [QtCore.QSize(16, 16)]:
            pix = icon.pixmap(size)
            painter = QtGui.QPainter(pix)
            painter.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_SourceIn)
            painter.fillRect(pix.rect(), palette.color(group, QtGui.QPalette.ColorRole.ButtonText))
            painter.end()
            tinted.addPixmap(pix, mode)
    return tinted


class WindowActions:
    """Builds the window's actions and menus; enables what applies to the current tab and selection."""

    def _action(
        self,
        text: str,
        shortcut: str | None,
        slot: Any,
        tip: str = "",
        icon: QtWidgets.QStyle.StandardPixmap | None = None,
    ) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        if tip:
            action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
            action.setStatusTip(tip)
        if icon is not None:
            action.setIcon(readable_icon(self.style(), icon))
        action.triggered.connect(lambda *_: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        sp = QtWidgets.QStyle.StandardPixmap
        self.act_run = self._action(
            "Run command…", "Ctrl+R", self.open_run_dialog, "Launch a command and record its memory", sp.SP_MediaPlay
        )
        self.act_attach = self._action(
            "Attach to process…",
            "Ctrl+Shift+A",
            self.open_attach_dialog,
            "Record a running process and its children",
            sp.SP_ComputerIcon,
        )
        self.act_watch = self._action(
            "Watch endpoint…",
            "Ctrl+Shift+W",
            self.open_watch_dialog,
            "Record a service's memory from its HTTP endpoint",
            sp.SP_DriveNetIcon,
        )
        self.act_stop = self._action("Stop", "Ctrl+.", self.stop_current, "Stop the current recording", sp.SP_MediaStop)
        self.act_capture = self._action(
            "Capture now", "Ctrl+K", self.capture_current, "Take a stack/heap capture of the current recording now"
        )
        self.act_open = self._action("Open", "Return", self.open_selected, "Open the selected session")
        self.act_open.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetShortcut)
        self.act_rename = self._action("Rename…", "F2", self.rename_selected, "Rename the selected session")
        self.act_tags = self._action("Tags…", None, self.tag_selected, "Set the selected session's tags")
        self.act_notes = self._action("Notes…", None, self.note_selected, "Edit the selected session's notes")
        self.act_export = self._action(
            "Export…", "Ctrl+E", self.export_selected, "Export the selected session as a bundle"
        )
        self.act_import = self._action("Import bundle…", "Ctrl+I", self.import_bundle, "Import a session bundle")
        self.act_compare = self._action(
            "Compare selected", "Ctrl+D", self.compare_selected, "Compare two or more selected sessions"
        )
        self.act_delete = self._action("Delete…", "Delete", self.delete_selected, "Delete the selected sessions")
        self.act_delete.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.act_refresh = self._action("Refresh library", "F5", self.refresh_library)
        self.act_filter = self._action("Filter library", "Ctrl+F", self.focus_filter)
        self.act_close_tab = self._action("Close tab", "Ctrl+W", self.close_current_tab)
        self.act_open_db = self._action(
            "Open database…", "Ctrl+O", self.choose_database, "Open or create another memview database"
        )
        self.act_quit = self._action("Quit", "Ctrl+Q", self.close)
        self.act_library = self._action(
            "Show library", "Ctrl+L", self.toggle_library, "Show or hide the session library"
        )
        self.act_library.setCheckable(True)
        self.act_library.setChecked(True)
        self.act_shortcuts = self._action("Keyboard shortcuts", None, self.show_shortcuts)
        self.act_about = self._action("About memview", None, self.show_about)
        for act in (self.act_stop, self.act_capture):
            act.setEnabled(False)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        for act in (self.act_open_db, None, self.act_import, self.act_export, None, self.act_quit):
            m.addSeparator() if act is None else m.addAction(act)
        m = bar.addMenu("&Session")
        for act in (
            self.act_run,
            self.act_attach,
            self.act_watch,
            None,
            self.act_stop,
            self.act_capture,
            None,
            self.act_open,
            self.act_rename,
            self.act_tags,
            self.act_notes,
            self.act_compare,
            None,
            self.act_delete,
        ):
            m.addSeparator() if act is None else m.addAction(act)
        m = bar.addMenu("&View")
        for act in (self.act_library, self.act_filter, self.act_refresh, self.act_close_tab):
            m.addAction(act)
        m = bar.addMenu("&Help")
        m.addAction(self.act_shortcuts)
        m.addAction(self.act_about)

    def _update_actions(self) -> None:
        view = self.current_view()
        live = view is not None and view.is_live
        self.act_stop.setEnabled(live)
        self.act_capture.setEnabled(live and view is not None and view.kind != "watch")
        has_db = self.store is not None
        for act in (self.act_run, self.act_attach, self.act_watch, self.act_import):
            act.setEnabled(has_db)
        ids = self.library.selected_ids()
        for act in (self.act_rename, self.act_tags, self.act_notes, self.act_export):
            act.setEnabled(has_db and len(ids) == 1)
        self.act_open.setEnabled(bool(ids))
        self.act_delete.setEnabled(has_db and bool(ids))
        self.act_compare.setEnabled(has_db and len(ids) >= 2)

    def toggle_library(self) -> None:
        """Fold the library away (more room for the plot) or bring it back."""
        sizes = self.splitter.sizes()
        if sizes[0] > 0:
            self._library_width = sizes[0]
            self.splitter.setSizes([0, sum(sizes)])
        else:
            width = getattr(self, "_library_width", 320)
            self.splitter.setSizes([width, max(sum(sizes) - width, 1)])
        self.act_library.setChecked(self.splitter.sizes()[0] > 0)

    def focus_filter(self) -> None:
        if self.splitter.sizes()[0] == 0:
            self.toggle_library()
        self.library.filter.setFocus()
        self.library.filter.selectAll()

    def show_message(
        self, title: str, text: str, icon: QtWidgets.QMessageBox.Icon = QtWidgets.QMessageBox.Icon.Information
    ) -> None:
        box = QtWidgets.QMessageBox(icon, title, text, QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = box
        box.open()

    def show_shortcuts(self) -> None:
        rows = "".join(
            f"<tr><td>{name}</td><td style='padding-left:18px'><b>{keys}</b></td></tr>" for name, keys in SHORTCUTS
        )
        self.show_message("Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        from memview import __version__

        self.show_message(
            "About memview",
            f"memview {__version__}\nRecord, compare and investigate the memory "
            "of processes, process trees and services.",
        )
