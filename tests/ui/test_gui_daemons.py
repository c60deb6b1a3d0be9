"""The app's run path follows what a command leaves running, as ``memview run`` does, and gives
back child-subreaper status when the recording ends (issue 21).

Real daemons (double fork + setsid, tests/workloads/daemonize.py) that write their own VmHWM;
the recordings go through :class:`~memview.ui.live_session.LiveSession` on a real store, and
every wait is for a signal or a file, never a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from support import MiB, read_json, wait_for, workload

from memview.collectors import procfs, tracer
from memview.store import Store

pytestmark = pytest.mark.skipif(not tracer.Tracer.possible(), reason="daemons are followed through ptrace (Linux)")

EXIT = "kernel:VmHWM@exit"


def _record(qtbot, store: Store, argv: list[str]):
    from memview.ui.live_session import LiveSession, RunSpec

    live = LiveSession(RunSpec(argv=argv, interval=0.05), store)
    with qtbot.waitSignal(live.started, timeout=60000):
        live.start()
    return live


def _ppid(pid: int) -> int:
    brief = procfs.stat(pid)
    assert brief is not None, f"process {pid} is gone"
    return brief.ppid


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)  # ours only when the bug under test made us its reaper
    except ChildProcessError:
        pass


def test_the_gui_records_a_daemon_until_it_exits(qtbot, tmp_path):
    """Before: the session ended with the command; the daemon's 64 MiB were never recorded."""
    store = Store(tmp_path / "memview.db")
    truth = tmp_path / "daemon.json"
    live = _record(qtbot, store, workload("daemonize.py", truth, 64, 1.5))
    with qtbot.waitSignal(live.finished, timeout=120000):
        pass
    assert truth.exists(), "the session ended before the daemon did"  # it writes this last
    figures = read_json(truth)
    sid = live.session_id
    daemon = {p["pid"]: p for p in store.processes(sid)}.get(figures["pid"])
    assert daemon is not None, store.processes(sid)
    assert daemon["peak_source"] == EXIT, daemon
    assert abs(daemon["peak_rss_bytes"] - figures["hwm_bytes"]) < 0.01 * figures["hwm_bytes"], (daemon, figures)
    assert store.session(sid)["peak_rss_bytes"] >= 64 * MiB
    assert any(e["kind"] == "descendants_running" for e in store.events(sid)), store.events(sid)


def test_stop_while_following_ends_the_recording_and_leaves_the_daemon_running(qtbot, tmp_path):
    store = Store(tmp_path / "memview.db")
    out = tmp_path / "daemon.json"
    live = _record(qtbot, store, workload("daemonize.py", out, 8, 3600))
    pid = read_json(wait_for(lambda: out.with_suffix(".json.pid") if out.with_suffix(".json.pid").exists() else None))[
        "pid"
    ]
    try:
        qtbot.waitUntil(lambda: live.session.following, timeout=60000)
        # a sample has read the daemon (Stop can come within one interval of its fork: then the
        # session ends before the sampler has seen it, and it is rightly not in the table)
        qtbot.waitUntil(lambda: pid in {p.pid for p in live.session.collector.processes()}, timeout=60000)
        with qtbot.waitSignal(live.finished, timeout=60000):
            live.stop()
        assert procfs.stat(pid) is not None, "Stop killed the daemon"
        session = store.session(live.session_id)
        assert session["status"] == "completed" and session["exit_code"] == 0, session
        assert pid in {p["pid"] for p in store.processes(live.session_id)}
        # the subreaper made it memview's child: when it ends, memview reaps it (no zombie left)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: procfs.stat(pid) is None)
    finally:
        _kill(pid)


def test_the_app_is_no_subreaper_once_the_recording_ends(qtbot, tmp_path):
    """Before: every orphan on the machine's later runs from the app became the app's zombie."""
    store = Store(tmp_path / "memview.db")
    live = _record(qtbot, store, workload("daemonize.py", tmp_path / "short.json", 0, 0))
    with qtbot.waitSignal(live.finished, timeout=120000):
        pass
    out = tmp_path / "orphan.json"
    subprocess.run(workload("daemonize.py", "orphan", out), check=True)  # its parent has exited
    pid = read_json(wait_for(lambda: out.with_suffix(".json.pid") if out.with_suffix(".json.pid").exists() else None))[
        "pid"
    ]
    try:
        assert _ppid(pid) != os.getpid(), "the orphan was re-parented to memview's process"
    finally:
        _kill(pid)
