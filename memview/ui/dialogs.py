"""The dialogs that start a recording: Run command… and Watch endpoint… (Attach has its own
module, the process picker).

Each dialog validates as the user types where that is cheap and on OK otherwise; bad input gets
one red line under the form and the dialog stays open with everything still typed in. The
command line is split the way a shell would (``shlex``) and then run *without* a shell.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

from PySide6 import QtCore, QtWidgets

from memview.captures.options import TOOL_NAMES
from memview.ui import file_dialogs
from memview.ui.live_session import RunSpec, SetupError, WatchSpec, capture_setup
from memview.units import UnitError, parse_duration

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class InputError(ValueError):
    """One line telling the user which field is wrong and what is expected."""


def parse_command(text: str) -> list[str]:
    text = text.strip()
    if not text:
        raise InputError("enter a command to run, e.g.  python extract.py big.pdf")
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise InputError(f"cannot split the command line: {exc}") from None
    if not argv:
        raise InputError("enter a command to run")
    return argv


def parse_env(text: str) -> dict[str, str]:
    """``NAME=value`` per line (blank lines and ``#`` comments ignored)."""
    env: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _ENV_NAME.match(name):
            raise InputError(f"environment line {n}: expected NAME=value, got {line!r}")
        env[name] = value
    return env


def parse_headers(text: str) -> dict[str, str]:
    """``Name: value`` per line."""
    headers: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME.match(name):
            raise InputError(f"header line {n}: expected 'Name: value'")
        headers[name] = value.strip()
    return headers


def parse_interval(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except UnitError as exc:
        raise InputError(f"interval: {exc}") from None
    if seconds < 0.001:
        raise InputError("interval: the shortest interval is 1ms")
    return seconds


def check_threshold(text: str, capture: str | None = None) -> str | None:
    """Validate rules the way ``memview run --threshold`` does (the core's own parser and CaptureSetup).

    ``800MB``, ``2GiB``, ``80%``, ``+100MB/s``, ``parse:500MB``; several separated by ``;``.
    """
    text = text.strip()
    try:
        capture_setup(text, capture)
    except SetupError as exc:
        raise InputError(f"threshold: {exc}") from None
    return text or None


def format_interval(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


class FormDialog(QtWidgets.QDialog):
    """Common frame: a form, a red error line, OK/Cancel; subclasses implement ``build_spec``."""

    def __init__(self, title: str, ok_text: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(560)
        self.form = QtWidgets.QFormLayout()
        self.form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.error = QtWidgets.QLabel()
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.spec: Any = None

    def build_spec(self) -> Any:
        raise NotImplementedError

    def accept(self) -> None:
        try:
            self.spec = self.build_spec()
        except InputError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.error.hide()
        super().accept()

    @staticmethod
    def hint(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setStyleSheet("color: #777;")
        label.setWordWrap(True)
        return label


#: the run dialog's capture choices: the CLI's ``--capture`` values
CAPTURE_CHOICES = ["auto", "none", *TOOL_NAMES]


def capture_box() -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    box.addItems(CAPTURE_CHOICES)
    box.setToolTip("What to take when a threshold is crossed (Capture now uses it too): auto picks py-spy for "
                   "Python, a heap snapshot for node, heaptrack otherwise; none records the crossing only")
    return box


class RunDialog(FormDialog):
    """Run command…: command line, working directory, environment, interval, threshold, capture."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, recent: list[str] | None = None,
                 cwd: str | None = None, interval: float = 0.05) -> None:
        super().__init__("Run command", "Run", parent)
        self.command = QtWidgets.QComboBox()
        self.command.setEditable(True)
        self.command.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.command.addItems(recent or [])
        self.command.setCurrentText(recent[0] if recent else "")
        self.command.lineEdit().setPlaceholderText("python extract.py big.pdf   (split like a shell; no shell runs it)")
        self.command.setMinimumContentsLength(40)
        self.cwd = QtWidgets.QLineEdit(cwd or os.getcwd())
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        cwd_row = QtWidgets.QHBoxLayout()
        cwd_row.addWidget(self.cwd, 1)
        cwd_row.addWidget(browse)
        self.env = QtWidgets.QPlainTextEdit()
        self.env.setPlaceholderText("NAME=value, one per line (added to memview's environment)")
        self.env.setFixedHeight(64)
        self.interval = QtWidgets.QLineEdit(format_interval(interval))
        self.interval.setToolTip("Seconds between samples: 50ms, 0.1, 1s (down to 1ms)")
        self.name = QtWidgets.QLineEdit()
        self.name.setPlaceholderText("optional, e.g. 'big.pdf before fix'")
        self.children = QtWidgets.QCheckBox("Record child processes too")
        self.children.setChecked(True)
        self.threshold = QtWidgets.QLineEdit()
        self.threshold.setPlaceholderText("e.g. 800MB, 2GiB, 80%, +100MB/s, parse:500MB  (several: separate with ;)")
        self.capture = capture_box()
        self.form.addRow("&Command", self.command)
        self.form.addRow("&Working directory", cwd_row)
        self.form.addRow("&Environment", self.env)
        self.form.addRow("&Interval", self.interval)
        self.form.addRow("&Name", self.name)
        self.form.addRow("", self.children)
        self.form.addRow("&Threshold", self.threshold)
        self.form.addRow("C&apture", self.capture)
        self.command.setFocus()

    def _browse(self) -> None:
        folder = file_dialogs.existing_directory(self, "Working directory", self.cwd.text())
        if folder:
            self.cwd.setText(folder)

    def build_spec(self) -> RunSpec:
        argv = parse_command(self.command.currentText())
        cwd = self.cwd.text().strip() or None
        if cwd is not None and not os.path.isdir(cwd):
            raise InputError(f"working directory does not exist: {cwd}")
        return RunSpec(argv=argv, interval=parse_interval(self.interval.text()), cwd=cwd,
                       env=parse_env(self.env.toPlainText()), name=self.name.text().strip() or None,
                       threshold=check_threshold(self.threshold.text(), self.capture.currentText()),
                       capture=self.capture.currentText(),
                       children=self.children.isChecked())


class WatchDialog(FormDialog):
    """Watch endpoint…: URL, format, headers, interval."""

    FORMATS = ["auto", "json", "prometheus"]

    def __init__(self, parent: QtWidgets.QWidget | None = None, recent: list[str] | None = None,
                 interval: float = 1.0) -> None:
        super().__init__("Watch endpoint", "Watch", parent)
        self.url = QtWidgets.QComboBox()
        self.url.setEditable(True)
        self.url.addItems(recent or [])
        self.url.setCurrentText(recent[0] if recent else "")
        self.url.lineEdit().setPlaceholderText("http://127.0.0.1:8080/api/v1/memory/profile  or  …/metrics")
        self.url.setMinimumContentsLength(40)
        self.format = QtWidgets.QComboBox()
        self.format.addItems(self.FORMATS)
        self.format.setToolTip("auto detects the memory-profile JSON, Prometheus text, or plain JSON")
        self.headers = QtWidgets.QPlainTextEdit()
        self.headers.setPlaceholderText("Name: value, one per line (used for requests, never stored)")
        self.headers.setFixedHeight(56)
        self.interval = QtWidgets.QLineEdit(format_interval(interval))
        self.name = QtWidgets.QLineEdit()
        self.name.setPlaceholderText("optional")
        self.threshold = QtWidgets.QLineEdit()
        self.threshold.setPlaceholderText("e.g. 2GiB")
        self.form.addRow("&URL", self.url)
        self.form.addRow("&Format", self.format)
        self.form.addRow("&Headers", self.headers)
        self.form.addRow("&Interval", self.interval)
        self.form.addRow("&Name", self.name)
        self.form.addRow("&Threshold", self.threshold)

    def build_spec(self) -> WatchSpec:
        url = self.url.currentText().strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError("URL: only http:// and https:// URLs, e.g. http://127.0.0.1:8080/metrics")
        return WatchSpec(url=url, interval=parse_interval(self.interval.text()), fmt=self.format.currentText(),
                         headers=parse_headers(self.headers.toPlainText()), name=self.name.text().strip() or None,
                         threshold=check_threshold(self.threshold.text(), "none"))


class TextDialog(QtWidgets.QInputDialog):
    """Rename / tags / notes: a non-blocking input dialog (``open()``), so tests can drive it."""

    def __init__(self, parent: QtWidgets.QWidget, title: str, label: str, text: str, multiline: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setLabelText(label)
        self.setTextValue(text)
        if multiline:
            self.setOption(QtWidgets.QInputDialog.InputDialogOption.UsePlainTextEditForTextInput)
        self.resize(440, 260 if multiline else 120)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
