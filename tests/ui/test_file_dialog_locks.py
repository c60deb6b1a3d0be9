"""Issue 17 item 1: a file dialog must never drop the app's SQLite locks.

Closing *any* descriptor of a file drops every POSIX lock the process holds on it. Qt's stock
dialog sniffed the files of the folder it showed (``QMimeDatabase``), so Ctrl+O then Cancel in the
database's folder released the app's locks; the next CLI session deleted the WAL under the app and
the database ended ``malformed``.

This runs the real app in its own process on a real X server (``xvfb-run -a``) under
``strace -f``: every file dialog is opened in the database's folder, left to list it, cancelled;
then ``memview run`` records from the CLI while the app is still open; the app's library shows the
new session, the WAL is still there, the app writes through its own store, and after it exits
``PRAGMA integrity_check`` is ``ok``. strace proves that nothing in the app's process opened the
database, ``-wal`` or ``-shm`` except SQLite itself (which opens them read-write, once).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import kill_and_reap

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("file_dialog_driver.py")
DIALOGS = ("open-database", "import", "export", "working-directory")

pytestmark = pytest.mark.skipif(
    not (shutil.which("xvfb-run") and shutil.which("strace")), reason="needs xvfb-run and strace"
)


def _line(proc: subprocess.Popen[str], prefix: str, seen: list[str]) -> str:
    """The next stdout line of the app that starts with ``prefix`` (others are kept in ``seen``)."""
    for raw in proc.stdout:  # type: ignore[union-attr]
        line = raw.strip()
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the app ended before {prefix!r}; it said {seen}; stderr: {proc.stderr.read()}")  # type: ignore[union-attr]


def test_cancelled_file_dialogs_keep_the_database_whole(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "memview.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEMVIEW_DB": str(db)}
    env.pop("QT_QPA_PLATFORM", None)  # a real X server: the platform the dialogs really run on
    first = subprocess.run(
        [sys.executable, "-m", "memview", "run", "-q", "--", sys.executable, "-c", "x = bytearray(8 * 2**20)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    # something each dialog's filter lets it list beside the database: a .zip, a text file, a folder
    (folder / "old.memview.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (folder / "notes.txt").write_text("a file the dialogs list beside the database\n")
    (folder / "runs").mkdir()

    trace = tmp_path / "trace"
    app = subprocess.Popen(
        [
            "xvfb-run",
            "-a",
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=openat,open",
            "-o",
            str(trace),
            sys.executable,
            str(DRIVER),
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=folder,
        start_new_session=True,
    )
    said: list[str] = []

    def kill_all() -> None:
        """xvfb-run is a shell: killing it alone leaves strace and the app holding the pipes we read."""
        try:
            os.killpg(app.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    watchdog = threading.Timer(600, kill_all)  # a hung app fails the test instead of blocking the run
    watchdog.start()
    try:
        _line(app, "dialogs-done", said)
        listed = {line.split()[1] for line in said if line.startswith("listed")}
        assert listed == set(DIALOGS), said

        # the CLI records while the app is open: with the app's locks intact it must leave the WAL alone
        second = subprocess.run(
            [sys.executable, "-m", "memview", "run", "-q", "--", sys.executable, "-c", "x = bytearray(16 * 2**20)"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 0, second.stderr
        assert (folder / "memview.db-wal").exists(), "the CLI deleted the WAL under the open app"

        app.stdin.write("refresh\n")  # type: ignore[union-attr]
        app.stdin.flush()  # type: ignore[union-attr]
        ids = [int(x) for x in _line(app, "sessions", said).split()[1:]]
        assert ids == [1, 2]
        app.stdin.write("write\n")  # type: ignore[union-attr]
        app.stdin.flush()  # type: ignore[union-attr]
        assert _line(app, "wrote", said) == "wrote"
        assert (folder / "memview.db-wal").exists()
        app.stdin.write("quit\n")  # type: ignore[union-attr]
        app.stdin.flush()  # type: ignore[union-attr]
        _line(app, "exited", said)
        assert app.wait(60) == 0
    finally:
        watchdog.cancel()
        kill_all()  # Xvfb, strace and the app too, whatever state the test ended in
        kill_and_reap(app)

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = dict(conn.execute("SELECT id, name FROM sessions"))
    assert names[2] == "renamed by the app"

    # strace: the app's process opened our SQLite files only the way SQLite does (read-write)
    ours = re.compile(
        r'open(?:at)?\(.*"(' + re.escape(str(folder)) + r'/memview\.db(?:-wal|-shm|-journal)?)", ([A-Z_|]+)'
    )
    opens = [(m.group(1), m.group(2)) for m in map(ours.search, trace.read_text().splitlines()) if m]
    assert opens, "strace saw no open of the database at all"
    sniffed = [(path, flags) for path, flags in opens if "O_RDWR" not in flags]
    assert not sniffed, f"something in the app's process opened the database outside SQLite: {sniffed}"
