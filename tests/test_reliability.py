"""More fault injection on real processes and real files (issue 9): old and newer databases, a child
that execs, a child that abuses MEMVIEW_FD, an unprivileged memview, and file permissions.

Each test fails without the handling it names; docs/reliability.md lists them with the older ones.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from contextlib import closing
from pathlib import Path

import psutil
import pytest
from support import PY, kill_and_reap, read_json, wait_for, workload

from memview import codec
from memview.store import APPLICATION_ID, SCHEMA_VERSION, Store

# -- databases from other memview versions ---------------------------------------------------------


def _old_schema_db(path: Path) -> tuple[list[float], list[int]]:
    """A file as a memview from before the migrations table wrote it: schema 0, fewer tables and columns."""
    conn = sqlite3.connect(path)
    conn.executescript(f"""
        PRAGMA application_id = {APPLICATION_ID};
        CREATE TABLE sessions (id INTEGER PRIMARY KEY, uid TEXT, kind TEXT, name TEXT, command TEXT,
            target TEXT, pid INTEGER, started_at FLOAT, ended_at FLOAT, wall_s FLOAT, status TEXT,
            exit_code INTEGER, interval_s FLOAT, samples INTEGER, peak_rss_bytes INTEGER,
            peak_source TEXT, tags TEXT, notes TEXT, writer_pid INTEGER, legacy_note TEXT);
        CREATE TABLE samples (session_id INTEGER REFERENCES sessions(id), series TEXT, seq INTEGER,
            n INTEGER, t_first FLOAT, t_last FLOAT, vmax INTEGER, t BLOB, v BLOB,
            PRIMARY KEY (session_id, series, seq));
        CREATE TABLE events (id INTEGER PRIMARY KEY, session_id INTEGER, t_s FLOAT, kind TEXT,
            level TEXT, message TEXT, data TEXT);
    """)
    times = [i * 0.05 for i in range(400)]
    values = [50_000_000 + i * 4096 for i in range(400)]
    conn.execute(
        "INSERT INTO sessions (id, uid, kind, name, command, target, pid, started_at, ended_at, wall_s, "
        "status, exit_code, interval_s, samples, peak_rss_bytes, peak_source, tags, notes, writer_pid, "
        "legacy_note) VALUES (1, 'abc', 'run', 'old run', '[\"x\"]', 'x', 42, 1.0, 21.0, 20.0, "
        "'completed', 0, 0.05, 400, ?, 'sampled', '[\"kept\"]', 'from 2023', 1, 'extra column')",
        (max(values),),
    )
    for seq, k in enumerate(range(0, 400, 100)):
        t, v = codec.encode(times[k : k + 100], values[k : k + 100])
        conn.execute(
            "INSERT INTO samples VALUES (1, 'rss', ?, 100, ?, ?, ?, ?, ?)",
            (seq, times[k], times[k + 99], max(values[k : k + 100]), t, v),
        )
    conn.execute(
        "INSERT INTO events (session_id, t_s, kind, level, message, data) "
        "VALUES (1, 3.0, 'mark', 'info', 'hello', '{}')"
    )
    conn.commit()
    conn.close()
    return times, values


def test_an_older_schema_database_is_migrated_without_losing_sessions(db_path):
    times, values = _old_schema_db(db_path)
    res = subprocess.run(
        [PY, "-m", "memview", "run", "-q", "--db", str(db_path), "--", PY, "-c", "pass"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")] == ["0001_initial", "0002_chunk_bounds"]
    assert conn.execute("SELECT legacy_note FROM sessions WHERE id = 1").fetchone()[0] == "extra column"
    conn.close()
    store = Store(db_path)
    old, new = store.session(1), store.sessions()[0]
    assert old["name"] == "old run" and old["tags"] == ["kept"] and old["status"] == "completed"
    assert old["summary"] is None  # a column the old file lacked, now present
    got_t, got_v = store.load_series(1)
    assert got_v == values and max(abs(a - b) for a, b in zip(got_t, times)) < 1e-6
    assert [e["message"] for e in store.events(1)] == ["hello"]
    assert new["id"] == 2 and new["status"] == "completed" and new["samples"] >= 1
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_newer_schema_database_is_refused_and_left_byte_identical(db_path, memview):
    store = Store(db_path)
    store.create_session(kind="run", target="x", started_at=0.0)
    store.close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.execute("PRAGMA journal_mode = DELETE")  # everything in the one file, so bytes can be compared
    conn.close()
    before = db_path.read_bytes()
    for args in (("sessions",), ("run", "--", PY, "-c", "pass"), ("show", "1")):
        res = memview(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.strip() == (
            f"memview: {db_path} was written by a newer memview "
            f"(schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}); upgrade memview"
        ), args
        assert db_path.read_bytes() == before, args
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


# -- the monitored child execs another program -------------------------------------------------------


def test_a_child_that_execs_gets_an_exec_event_and_keeps_being_sampled(memview, db_path, tmp_path):
    """Same PID, new program (named "memhog" through a symlink to the interpreter, so comm changes)."""
    hog = tmp_path / "memhog"
    hog.symlink_to(PY)
    argv = [str(hog), *workload("hold.py", 60, 1.0)[1:]]
    code = f"import os, time; x = bytearray(20_000_000); time.sleep(0.6); os.execv({str(hog)!r}, {argv!r})"
    out = tmp_path / "x.json"
    res = memview("run", "--interval", "0.02", "--json", str(out), "--", PY, "-c", code)
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    (proc,) = summary["processes"]  # one process throughout: the PID did not change
    assert proc["pid"] == summary["pid"] and proc["name"] == "memhog"
    assert proc["cmdline"][1:] == argv[1:]
    store = Store(db_path)
    (ev,) = [e for e in store.events(summary["session_id"]) if e["kind"] == "exec"]
    assert ev["data"]["pid"] == summary["pid"] and ev["data"]["name"] == "memhog"
    assert ev["data"]["old_cmdline"][:2] == [PY, "-c"] and ev["data"]["cmdline"] == proc["cmdline"]
    assert f"({summary['pid']}) exec'd memhog:" in ev["message"] and "hold.py" in ev["message"]
    assert ev["t_s"] > 0.55  # after the 0.6 s the first program slept (no upper bound: a loaded machine is late)
    times, values = store.load_series(summary["session_id"], f"pid:{summary['pid']}")
    after = [v for t, v in zip(times, values) if t > ev["t_s"]]
    assert len(after) >= 20 and max(after) > 60 * 2**20  # the new program's memory, same series
    assert store.series_units(summary["session_id"])[f"pid:{summary['pid']}"]["label"] == f"memhog ({summary['pid']})"


def test_children_that_fork_then_exec_make_no_exec_events(memview, tmp_path):
    """A forked worker shows its parent's command line until it execs: that is its start, not an event."""
    code = (
        "import os, time\n"
        "pids = []\n"
        "for i in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(0.4)\n"
        "        os.execv('/bin/sleep', ['sleep', '0.4'])\n"
        "    pids.append(pid)\n"
        "for pid in pids:\n"
        "    os.waitpid(pid, 0)\n"
    )
    out = tmp_path / "f.json"
    res = memview("run", "--interval", "0.01", "--json", str(out), "--", PY, "-c", code)
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    assert [e for e in summary["events"] if e["kind"] == "exec"] == []
    children = [p for p in summary["processes"] if p["pid"] != summary["pid"]]
    assert len(children) == 3 and {p["name"] for p in children} == {"sleep"}
    assert {tuple(p["cmdline"]) for p in children} == {("sleep", "0.4")}


# -- a child that mistreats MEMVIEW_FD -------------------------------------------------------------------


def test_a_child_closing_memview_fd_early_is_recorded_to_its_end(memview, db_path, tmp_path):
    truth, out = tmp_path / "t.json", tmp_path / "c.json"
    res = memview("run", "--interval", "0.02", "--json", str(out), "--", *workload("fd_abuse.py", truth, "close"))
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    assert summary["status"] == "completed" and summary["exit_code"] == 0
    assert summary["wall_s"] >= 1.0 and summary["samples"] >= 40  # recording went on after the channel closed
    assert abs(summary["peak_rss_bytes"] - read_json(truth)["hwm_bytes"]) / read_json(truth)["hwm_bytes"] < 0.01
    assert summary["phases"] == []
    warnings = [e["message"] for e in summary["events"] if e["kind"] == "phase_warning"]
    assert len(warnings) == 1 and "not JSON" in warnings[0]  # the half line, read at EOF
    assert not [e for e in summary["events"] if e["level"] == "error"]


def test_a_10mb_line_and_garbage_on_memview_fd_are_warnings_and_never_stall_the_child(memview, tmp_path):
    truth, out = tmp_path / "t.json", tmp_path / "j.json"
    res = memview("run", "--interval", "0.02", "--json", str(out), "--", *workload("fd_abuse.py", truth, "junk"))
    assert res.returncode == 0, res.stderr
    report = read_json(truth)
    assert report["write_s"] < 1.0, report  # memview reads as fast as the child writes
    summary = read_json(out)
    assert summary["status"] == "completed"
    (work,) = summary["phases"]
    assert work["name"] == "work" and work["peak_rss_bytes"] > 40 * 2**20
    marks = [e["message"] for e in summary["events"] if e["kind"] == "mark"]
    assert marks == ["split across writes"]
    warnings = "\n".join(e["message"] for e in summary["events"] if e["kind"] == "phase_warning")
    assert "longer than 64 KiB" in warnings and "not JSON" in warnings
    assert not [e for e in summary["events"] if e["level"] == "error"]


# -- memview running unprivileged (as nobody) against a root-owned process --------------------------------

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534


@pytest.fixture
def as_nobody(tmp_path):
    """Run ``python -m memview ARGS`` as user nobody; optionally with /proc mounted hidepid=2 for it.

    The interpreter lives under /root (mode 0700), so it is bind-mounted read-only where nobody can
    reach it; so are the site-packages and py-spy's folder when they lie elsewhere (a virtual environment
    or pipx keeps them outside the base interpreter's prefix). The database goes into a folder only
    nobody can write.
    """
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("unshare"):
        pytest.skip("needs root, setpriv and unshare to run memview as another user")
    mounts: list[Path] = []

    def expose(src: Path) -> Path:
        mnt = Path(tempfile.mkdtemp(prefix="memview-py-"))
        mnt.chmod(0o755)
        subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(mnt)], check=True)
        mounts.append(mnt)
        return mnt

    def reachable(path: Path) -> Path:
        path = path.resolve()
        try:
            return base / path.relative_to(prefix)
        except ValueError:
            return expose(path)

    prefix = Path(sys.base_prefix).resolve()
    base = expose(prefix)
    home = Path(tempfile.mkdtemp(prefix="memview-nobody-"))
    os.chown(home, NOBODY, NOBODY)
    home.chmod(0o700)
    python = reachable(Path(PY))  # a venv's python is a link to the base interpreter: resolved, it lies in prefix
    paths = sysconfig.get_paths()
    site = os.pathsep.join(str(reachable(Path(paths[k]))) for k in dict.fromkeys(("purelib", "platlib")))
    tools = f"{reachable(Path(paths['scripts']))}{os.pathsep}"  # py-spy, installed beside this interpreter

    def run(*args: str, hidepid: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            str(python),
            "-m",
            "memview",
            *args,
        ]
        if hidepid:  # a private mount namespace: this /proc hides other users' processes, the host's is untouched
            code = (
                "import os, subprocess, sys\n"
                "subprocess.run(['mount', '-t', 'proc', '-o', 'hidepid=2', 'proc', '/proc'], check=True)\n"
                "os.execvp(sys.argv[1], sys.argv[1:])\n"
            )
            argv = ["unshare", "--mount", "--propagation", "private", PY, "-c", code, *argv]
        env = {
            "PATH": tools + os.environ["PATH"],
            "HOME": str(home),
            "PYTHONPATH": f"{ROOT}{os.pathsep}{site}",
            "MEMVIEW_DB": str(home / "memview.db"),
        }
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=home)

    run.home = home  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        for mnt in reversed(mounts):
            subprocess.run(["umount", str(mnt)], check=False)
            mnt.rmdir()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def root_process():
    proc = subprocess.Popen(workload("hold.py", 40, 60), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    kill_and_reap(proc)


def test_unprivileged_attach_records_what_linux_lets_anyone_read(as_nobody, root_process):
    """statm and status are world-readable, so RSS and VmHWM are read; ptrace (py-spy) is refused, clearly."""
    res = as_nobody(
        "attach",
        str(root_process.pid),
        "--duration",
        "1",
        "--interval",
        "0.05",
        "--threshold",
        "1MB",
        "--capture",
        "py-spy-dump",
        "--json",
        "s.json",
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    summary = read_json(as_nobody.home / "s.json")
    with open(f"/proc/{root_process.pid}/status") as f:
        hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
    assert summary["peak_rss_bytes"] == hwm and summary["peak_source"] == "kernel:VmHWM"
    assert summary["cwd"] is None  # not readable for another user's process: left out, not an error
    (cap,) = summary["captures"]
    assert cap["status"] == "ptrace-refused" and cap["path"] is None
    (err,) = [e for e in summary["events"] if e["kind"] == "capture_error"]
    assert "It runs as uid 0 and memview as uid 65534: run memview as the same user" in err["message"]
    store_dir = as_nobody.home
    assert (store_dir / "memview.db").stat().st_uid == NOBODY


def test_unprivileged_attach_to_a_hidden_process_is_one_clear_line(as_nobody, root_process):
    res = as_nobody("attach", str(root_process.pid), "--duration", "1", hidepid=True)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"memview: access denied to process {root_process.pid}: run memview as the same "
        "user as the process (or as root) (/proc hides other users' processes here: hidepid)"
    )


# -- what memview writes is not world-readable ----------------------------------------------------------


def test_database_and_capture_folders_are_private_under_umask_022(tmp_path):
    db = tmp_path / "new" / "place" / "m.db"
    out = tmp_path / "s.json"
    res = subprocess.run(
        [
            PY,
            "-m",
            "memview",
            "run",
            "--db",
            str(db),
            "--interval",
            "0.02",
            "--threshold",
            "10MB",
            "--capture",
            "py-spy-dump",
            "--json",
            str(out),
            "--",
            *workload("hold.py", 30, 1.5),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        umask=0o022,
    )
    assert res.returncode == 0, res.stderr
    (cap,) = read_json(out)["captures"]
    assert cap["status"] == "ok", cap
    artefact = Path(cap["path"])
    private = [db.parent, db, artefact.parent, artefact.parent.parent]
    private += [p for p in db.parent.iterdir() if p.name.startswith("m.db-")]  # WAL files, if still there
    for path in private:
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
    assert artefact.is_relative_to(db.parent)


def _rss_samples(db_path: Path) -> int:
    """How many RSS samples are stored so far (read-only: never creates or migrates the file memview writes)."""
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT sum(n) FROM samples WHERE series = 'rss'").fetchone()[0] or 0
    except sqlite3.Error:  # not created yet
        return 0


def test_attach_ends_cleanly_when_the_process_exits(db_path, tmp_path):
    """The process ends while attached (ended by the test once memview has sampled it: a timed exit would race
    memview's start on a loaded machine); memview notices, finishes the session and exits 0."""
    child = subprocess.Popen(workload("hold.py", 40, 600), stdout=subprocess.PIPE, text=True)
    out = tmp_path / "a.json"
    env = {**os.environ, "MEMVIEW_DB": str(db_path)}
    try:
        assert child.stdout.readline().strip() == "ready"
        mv = subprocess.Popen(
            [PY, "-m", "memview", "attach", str(child.pid), "--interval", "0.02", "--json", str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: _rss_samples(db_path) >= 10)
        child.terminate()
        child.wait()  # reaped: gone, not a zombie
        _, err = mv.communicate(timeout=120)
    finally:
        kill_and_reap(child)
    assert mv.returncode == 0 and "Traceback" not in err, err
    summary = read_json(out)
    assert summary["status"] == "completed" and summary["samples"] >= 10
    assert summary["peak_rss_bytes"] > 40 * 2**20


def _anon_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("SELECT coalesce(sum(n), 0) FROM samples WHERE series = 'rss'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_memview_own_memory_stays_flat_at_1khz(db_path):
    """Issue 17 item 14. memview's own anonymous memory while recording at 1 kHz, between 30k and 90k
    stored samples (after warm-up), per sample. Before: ~7 B per sample (the writer's SQLite page
    cache filling towards 2 MB, read as unbounded growth); now the writer's cache is 256 KiB."""
    env = {**os.environ, "MEMVIEW_DB": str(db_path)}
    proc = subprocess.Popen(
        [PY, "-m", "memview", "run", "-q", "--interval", "1ms", "--", PY, "-c", "import time; time.sleep(100000)"],
        env=env,
    )
    try:
        wait_for(lambda: _stored(db_path) >= 30_000, timeout=240, interval=0.5)
        first_n, first = _stored(db_path), _anon_kib(proc.pid)
        wait_for(lambda: _stored(db_path) >= first_n + 60_000, timeout=480, interval=0.5)
        last_n, last = _stored(db_path), _anon_kib(proc.pid)
    finally:
        for child in psutil.Process(proc.pid).children():
            child.kill()
        proc.wait(60)
    per_sample = (last - first) * 1024 / (last_n - first_n)
    print(
        f"FIGURE memview at 1 kHz: RssAnon {first} -> {last} KiB over {last_n - first_n} samples "
        f"= {per_sample:.2f} B/sample"
    )
    assert per_sample < 2.5, per_sample
