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
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from PySide6 import QtCore, QtWidgets

from memview.captures.options import TOOL_NAMES
from memview.ui import file_dialogs, theme
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
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.spec: Any = None
        #: the window's last check before anything starts (the database is writable): its one-line
        #: refusal stays in the red line with the form as typed, and nothing is launched
        self.precheck: Callable[[], str | None] | None = None

    def build_spec(self) -> Any:
        raise NotImplementedError

    def accept(self) -> None:
        try:
            self.spec = self.build_spec()
        except InputError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        problem = self.precheck() if self.precheck is not None else None
        if problem:
            self.show_error(problem)
            return
        self.error.hide()
        super().accept()

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    @staticmethod
    def hint(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setStyleSheet(f"color: {theme.current().muted};")
        label.setWordWrap(True)
        return label


#: the run dialog's capture choices: the CLI's ``--capture`` values
CAPTURE_CHOICES = ["auto", "none", *TOOL_NAMES]


def capture_box() -> QtWidgets.QComboBox:
    box = QtWidgets.QComboBox()
    box.addItems(CAPTURE_CHOICES)
    box.setToolTip(
        "What to take when a threshold is crossed (Capture now uses it too): auto picks py-spy for "
        "Python, a heap snapshot for node, heaptrack otherwise; none records the crossing only"
    )
    return box


class RunDialog(FormDialog):
    """Run command…: command line, working directory, environment, interval, threshold, capture."""

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        recent: list[str] | None = None,
        cwd: str | None = None,
        interval: float = 0.05,
    ) -> None:
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
        cwd_label = QtWidgets.QLabel("&Working directory")
        cwd_label.setBuddy(self.cwd)  # a layout cannot be a buddy: without one the & shows literally
        self.form.addRow(cwd_label, cwd_row)
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
        return RunSpec(
            argv=argv,
            interval=parse_interval(self.interval.text()),
            cwd=cwd,
            env=parse_env(self.env.toPlainText()),
            name=self.name.text().strip() or None,
            threshold=check_threshold(self.threshold.text(), self.capture.currentText()),
            capture=self.capture.currentText(),
            children=self.children.isChecked(),
        )


class WatchDialog(FormDialog):
    """Watch endpoint…: URL, format, headers, interval."""

    FORMATS = ["auto", "json", "prometheus"]

    def __init__(
        self, parent: QtWidgets.QWidget | None = None, recent: list[str] | None = None, interval: float = 1.0
    ) -> None:
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
        self.query = QtWidgets.QLineEdit()  # a PromQL query: the URL is then a Prometheus server
        self.query.setPlaceholderText("PromQL for prometheus+http://HOST:9090, e.g. process_resident_memory_bytes")
        self.form.addRow("&URL", self.url)
        self.form.addRow("&PromQL", self.query)
        self.form.addRow("&Format", self.format)
        self.form.addRow("&Headers", self.headers)
        self.form.addRow("&Interval", self.interval)
        self.form.addRow("&Name", self.name)
        self.form.addRow("&Threshold", self.threshold)
        self.keep_query = QtWidgets.QLineEdit()  # the CLI's --keep-query NAME (repeatable)
        self.keep_query.setPlaceholderText("query names whose values may be stored, e.g. service, env")
        self.keep_query.setToolTip(
            "Every query value in the URL (and its user:password) is masked in the database, "
            "the tab and bundles, except these names; a credential-like name stays masked"
        )
        self.form.addRow("&Keep query", self.keep_query)
        self.series = QtWidgets.QComboBox()
        self.series.setEditable(True)
        self.series.lineEdit().setPlaceholderText("Prometheus: process_resident_memory_bytes (or pick one: List)")
        self.series.setToolTip('The Prometheus series recorded as the memory curve: name or name{label="x"}')
        self.series.setMinimumContentsLength(30)
        self.list_series = QtWidgets.QPushButton("List")
        self.list_series.setToolTip("Read the endpoint once and offer every series it reports")
        self.list_series.clicked.connect(self._list_series)
        series_row = QtWidgets.QHBoxLayout()
        series_row.addWidget(self.series, 1)
        series_row.addWidget(self.list_series)
        series_label = QtWidgets.QLabel("&Series")
        series_label.setBuddy(self.series)
        self._lister: SeriesLister | None = None
        self.form.insertRow(2, series_label, series_row)  # under URL and Format

    def _metric(self) -> str | None:
        text = self.series.currentText().strip()
        if not text:
            return None
        text = text.split("  =", 1)[0].strip()  # a listed entry carries its current value
        from memview.collectors.formats.prometheus import Selector

        try:
            Selector(text)
        except ValueError as exc:
            raise InputError(f"Series: {exc}") from None
        return text

    def _list_series(self) -> None:
        url = self.url.currentText().strip()
        try:
            headers = parse_headers(self.headers.toPlainText())
        except InputError as exc:
            self.show_error(str(exc))
            return
        if urlsplit(url).scheme not in ("http", "https"):
            self.show_error("URL: only http:// and https:// URLs, e.g. http://127.0.0.1:8080/metrics")
            return
        self.list_series.setEnabled(False)
        self.list_series.setText("Listing…")
        self._lister = SeriesLister(url, headers)
        self._lister.listed.connect(self._series_listed)
        self._lister.start()

    def _series_listed(self, entries: list[str], error: str) -> None:
        self.list_series.setEnabled(True)
        self.list_series.setText("List")
        if error:
            self.show_error(f"Cannot list the series: {error}")
            return
        current = self.series.currentText()
        self.series.clear()
        self.series.addItems(entries)
        self.series.setCurrentText(current)
        self.error.hide()

    def build_spec(self) -> WatchSpec:
        url = self.url.currentText().strip()
        query = self.query.text().strip() or None
        parts = urlsplit(url.removeprefix("prometheus+"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError("URL: only http:// and https:// URLs, e.g. http://127.0.0.1:8080/metrics")
        if url.startswith("prometheus+") and not query:
            raise InputError("PromQL: a prometheus+ URL needs a query, e.g. process_resident_memory_bytes")
        return WatchSpec(
            url=url,
            interval=parse_interval(self.interval.text()),
            fmt=self.format.currentText(),
            headers=parse_headers(self.headers.toPlainText()),
            name=self.name.text().strip() or None,
            threshold=check_threshold(self.threshold.text(), "none"),
            query=query,
            metric=self._metric(),
            keep_query=self._keep_query(),
        )

    def _keep_query(self) -> tuple[str, ...]:
        """The names in the Keep query field, separated by commas or spaces (as repeated --keep-query)."""
        names = tuple(n for n in re.split(r"[,\s]+", self.keep_query.text()) if n)
        for name in names:
            if not re.fullmatch(r"[^=&#?]+", name):
                raise InputError(f"Keep query: {name!r} is not a query parameter name (e.g. service)")
        return names


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


class SeriesLister(QtCore.QObject):
    """Reads a Prometheus endpoint once on a thread and lists its series (byte-valued ones first).

    No Qt parent, for the same reason as the process lister: the dialog may be gone by the time
    the answer arrives (Qt then drops the queued call).
    """

    listed = QtCore.Signal(list, str)
    MAX_BYTES = 8 * 2**20

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(None)
        self.url = url
        self.headers = headers
        self._thread = threading.Thread(target=self._run, name="memview-series", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        try:
            req = urllib.request.Request(self.url, headers=self.headers)
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - http(s) checked above
                body = resp.read(self.MAX_BYTES + 1)
            if len(body) > self.MAX_BYTES:
                raise ValueError(f"the answer is larger than {self.MAX_BYTES // 2**20} MiB")
            entries = []
            for family in text_string_to_metric_families(body.decode("utf-8", "replace")):
                for sample in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    name = f"{sample.name}{{{labels}}}" if labels else sample.name
                    entries.append((not sample.name.endswith("_bytes"), name, sample.value))
        except Exception as exc:  # one line for the user, whatever the network or parser said
            self.listed.emit([], f"{type(exc).__name__}: {exc}"[:300])
            return
        entries.sort(key=lambda e: (e[0], e[1]))
        self.listed.emit([f"{name}  = {value:g}" for _other, name, value in entries], "")
