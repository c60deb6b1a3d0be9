"""Issue 17: odd values and refused preconditions, with real processes, real HTTP and real SQLite.

Each test fails without the fix it names: the writer thread that one value killed (item 2), the
child launched before memview knew it could store (item 3).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from support import PY, read_json
from test_reliability import NOBODY
from test_reliability import as_nobody as as_nobody_fixture

from memview.store import Store, StoreWriter


class JsonServer:
    """A real HTTP server on 127.0.0.1 (port 0) answering one JSON document per GET."""

    def __init__(self, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        outer = self
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/profile"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def json_server():
    servers: list[JsonServer] = []

    def start(doc: object) -> JsonServer:
        servers.append(JsonServer(doc))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


nobody = as_nobody_fixture  # run memview as user nobody (root only; skipped otherwise)


def _stored_samples(db: Path, sid: int, series: str = "rss") -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT coalesce(sum(n), 0) FROM samples WHERE session_id = ? AND series = ?", (sid, series)
        ).fetchone()[0]


# -- item 2: one odd value never kills the writer ------------------------------------------------


def test_an_endpoint_value_above_2_63_keeps_every_sample(memview, json_server, db_path, tmp_path):
    """Before: the writer died on OverflowError and every later sample was silently dropped."""
    server = json_server(
        {"current_usage_mb": 300, "by_component": {"huge": 2**64, "cache": 12}, "jemalloc": {"weird_count": 2**70}}
    )
    out = tmp_path / "w.json"
    res = memview("watch", server.url, "--interval", "0.1", "--duration", "2", "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    summary = read_json(out)
    assert summary["status"] == "completed"
    assert summary["samples"] >= 5
    assert _stored_samples(db_path, summary["session_id"]) == summary["samples"]
    assert _stored_samples(db_path, summary["session_id"], "component:cache") == summary["samples"]
    assert summary["peak_rss_bytes"] == 300 * 2**20
    invalid = [e["message"] for e in summary["events"] if e["kind"] == "field_invalid"]
    assert any("by_component.huge is too large" in m for m in invalid), invalid


def test_a_marker_name_with_a_lone_surrogate_keeps_every_sample(memview, db_path, tmp_path):
    """Before: UnicodeEncodeError killed the writer; ``--json`` said running, the exit status was 0."""
    code = (
        "import os, time\n"
        "fd = int(os.environ['MEMVIEW_FD'])\n"
        'os.write(fd, b\'{"event": "mark", "name": "bad \\\\ud800 name"}\\n\')\n'
        'os.write(fd, b\'{"event": "phase_start", "name": "after", "data": {"k\\\\udfff": 1}}\\n\')\n'
        "x = bytearray(30 * 2**20)\n"
        "time.sleep(1.0)\n"
        'os.write(fd, b\'{"event": "phase_end"}\\n\')\n'
    )
    out = tmp_path / "m.json"
    res = memview("run", "--interval", "0.02", "--json", str(out), "--", PY, "-c", code)
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    assert summary["status"] == "completed"
    assert summary["samples"] >= 10
    assert _stored_samples(db_path, summary["session_id"]) == summary["samples"]
    names = {p["name"] for p in summary["phases"]}
    assert "after" in names, summary["phases"]
    store = Store(db_path)
    assert store.session(summary["session_id"])["status"] == "completed"


def test_a_writer_that_dies_anyway_marks_the_session_and_fails_run(db_path):
    """If the writer thread ends for any reason, later data is not queued forever and the row says so."""
    store = Store(db_path)
    sid = store.create_session(kind="run", started_at=0.0)
    errors: list[Exception | None] = []
    writer = StoreWriter(db_path, sid, on_error=errors.append)
    writer.start()

    def fatal(_conn: sqlite3.Connection) -> None:
        raise SystemExit("simulated end of the writer")  # not an Exception: escapes every task guard

    writer.submit(fatal)
    writer.join(30)
    assert not writer.is_alive() and writer.dead
    assert errors and errors[-1] is not None
    writer.submit(lambda conn: None)
    assert writer._queue.qsize() == 0  # nothing piles up behind a dead writer
    assert writer.close() is False
    assert store.mark_incomplete(sid, "the database writer stopped")
    assert store.session(sid)["status"] == "incomplete"


def test_a_task_with_an_unbindable_value_is_dropped_alone(db_path):
    store = Store(db_path)
    sid = store.create_session(kind="run", started_at=0.0)
    writer = StoreWriter(db_path, sid)
    writer.start()
    writer.submit(
        lambda conn: conn.execute(
            "INSERT INTO events (session_id, t_s, kind, level, message) VALUES (?, 1, 'x', 'info', ?)", (sid, 2**64)
        )
    )
    writer.insert("events", {"t_s": 2.0, "kind": "mark", "level": "info", "message": "ok \ud800", "data": {}})
    from memview.model import Batch

    writer.write_batch(Batch(sid, {"rss": ([0.1, 0.2, 0.3], [5, 2**63 + 5, 7])}))
    assert writer.close()
    events = store.events(sid)
    assert [e["message"] for e in events if e["kind"] == "mark"] == ["ok \\ud800"]
    assert any(e["kind"] == "store" for e in events)
    assert store.load_series(sid, "rss") == ([0.1, 0.3], [5, 7])
    assert writer.dropped == 1 and writer.clamped == 1


# -- item 3: check before launching ------------------------------------------------------------------


def test_a_read_only_database_is_refused_before_the_child_starts(nobody):
    """Before: the child was launched, then a traceback; now one line and nothing is started."""
    home = nobody.home
    first = nobody("run", "-q", "--", "true")
    assert first.returncode == 0, first.stderr
    db = home / "memview.db"
    db.chmod(0o444)
    started = home / "started"
    res = nobody("run", "--", sys.executable, "-c", f"open({str(started)!r}, 'w')")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert "cannot write to the database" in res.stderr and "readonly" in res.stderr
    assert not started.exists()


def test_a_database_in_a_folder_that_refuses_the_journal_is_refused_before_the_child_starts(nobody):
    home = nobody.home
    folder = home / "ro"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    assert nobody("run", "-q", "--db", str(folder / "m.db"), "--", "true").returncode == 0
    for extra in folder.glob("m.db-*"):
        extra.unlink()
    os.chown(folder, 0, 0)  # the file stays nobody's, the folder is root's: no -wal can be created
    folder.chmod(0o755)
    started = home / "started"
    res = nobody("run", "--db", str(folder / "m.db"), "--", sys.executable, "-c", f"open({str(started)!r}, 'w')")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr
    assert not started.exists()


def test_a_non_utf8_argument_is_recorded_and_passed_through(memview, db_path, tmp_path):
    """Before: UnicodeEncodeError after launch (the child was killed, a traceback). Now the child gets the
    exact bytes and the stored command shows them escaped."""
    out = tmp_path / "args"
    code = "import os, sys; open(sys.argv[1], 'wb').write(os.fsencode(sys.argv[2]))"
    res = memview("run", "--", PY, "-c", code, str(out), os.fsdecode(b"caf\xe9-\xff"))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert out.read_bytes() == b"caf\xe9-\xff"
    session = Store(db_path).sessions()[0]
    assert session["status"] == "completed"
    assert "\\udce9" in session["target"] and "\\udcff" in session["target"]
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]


# -- item 6: a repository's configured commands never run -------------------------------------------


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
@pytest.mark.parametrize("packed", [False, True], ids=["loose-ref", "packed-refs"])
def test_git_metadata_never_runs_the_repositorys_fsmonitor(memview, db_path, tmp_path, packed):
    """Before: ``git status`` ran in the working folder, and ``core.fsmonitor`` ran through the shell."""
    repo = tmp_path / "repo"
    repo.mkdir()
    ran = tmp_path / "fsmonitor-ran"
    _git(repo, "init", "-q", "-b", "main")
    (repo / "f.txt").write_text("x\n")
    _git(repo, "add", "f.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    _git(repo, "config", "core.fsmonitor", f"touch {ran}; false")
    if packed:
        _git(repo, "pack-refs", "--all")
        assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    sha = _git(repo, "rev-parse", "HEAD")
    assert not ran.exists()
    out = tmp_path / "s.json"
    res = memview("run", "--json", str(out), "--", PY, "-c", "pass", cwd=repo)
    assert res.returncode == 0, res.stderr
    meta = read_json(out)["meta"]
    assert meta["git_sha"] == sha
    assert not ran.exists(), "memview ran the repository's core.fsmonitor"


# -- item 13: one line where one line is promised --------------------------------------------------------


def test_a_corrupt_page_in_the_database_is_one_line_for_every_command(memview, db_path, tmp_path):
    """Before: ``DatabaseError: database disk image is malformed`` as a traceback from show/export/compare."""
    for _ in range(2):
        res = memview("run", "-q", "--interval", "0.005", "--", PY, "-c", "import time; time.sleep(0.5)")
        assert res.returncode == 0, res.stderr
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'samples'").fetchone()[0]
    with open(db_path, "r+b") as f:  # the samples table's root page: garbage that still parses as a page header
        f.seek((root - 1) * page)
        f.write(b"\x0d" + b"\xff" * (page - 1))
    for args in (
        ("show", "1"),
        ("show", "--json", "2"),
        ("export", "1", "-o", str(tmp_path / "x.zip")),
        ("compare", "1", "2"),
    ):
        res = memview(*args)
        assert res.returncode != 0, (args, res.stdout)
        assert "Traceback" not in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
        assert "malformed" in res.stderr or "damaged" in res.stderr, (args, res.stderr)


@pytest.mark.parametrize("url", ["http://[::1", "http://[zz]/x", "http://host/a b", "http://h:99999/"])
def test_a_bad_url_is_one_line(memview, url):
    res = memview("watch", url, "--duration", "1")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


# -- item 10 (series): new series names from outside are capped per session ---------------------------


class InventiveServer:
    """A real HTTP server whose every answer names ``per_tick`` by_component keys never seen before."""

    def __init__(self, per_tick: int) -> None:
        self.ticks = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                outer.ticks += 1
                base = outer.ticks * per_tick
                doc = {"current_usage_mb": 100, "by_component": {f"c{base + i}": 1 for i in range(per_tick)}}
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        outer = self
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/profile"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_5000_new_component_names_per_tick_are_capped_with_one_warning(db_path, tmp_path):
    """Before: 105k series in 10 s (memory, database and every later query grew with them)."""
    server = InventiveServer(5000)
    out = tmp_path / "w.json"
    env = {**os.environ, "MEMVIEW_DB": str(db_path)}
    try:
        proc = subprocess.Popen(
            [PY, "-m", "memview", "watch", server.url, "--interval", "0.1", "--duration", "3", "--json", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stderr = proc.stderr.read().decode()  # to EOF first: a full pipe would block memview's exit
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here for its rusage: tell Popen it is gone
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
    finally:
        server.close()
    assert os.waitstatus_to_exitcode(status) == 0, stderr
    summary = read_json(out)
    with sqlite3.connect(db_path) as conn:
        stored = conn.execute("SELECT count(DISTINCT series) FROM samples").fetchone()[0]
        units = conn.execute("SELECT count(*) FROM series").fetchone()[0]
    assert server.ticks >= 5
    assert stored <= 1000 and units <= 1000, (stored, units)
    caps = [e for e in summary["events"] if e["kind"] == "series_cap"]
    assert len(caps) == 1 and caps[0]["level"] == "warning"
    watch = summary["meta"]["watch"]
    # each answer memview parsed brought 5000 new names (the first also the usage series): 1000 are kept, every
    # other is dropped and counted once, up to 100k. Counted from memview's answers, not the server's
    # requests: under load some requests time out and their names never reach memview
    dropped = min(watch["answered"] * 5000 + 1 - 1000, 100_000)
    assert watch["series"] == 1000 and watch["series_dropped"] == dropped, (watch, server.ticks)
    assert _stored_samples(db_path, summary["session_id"]) == summary["samples"] >= 5
    print(
        f"FIGURE {server.ticks} ticks x 5000 new names: {stored} series stored, "
        f"{watch['series_dropped']} names dropped, memview peak RSS {usage.ru_maxrss / 1024:.0f} MiB"
    )
