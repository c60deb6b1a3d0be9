"""Captures with the real tools: py-spy, heaptrack (attach and launch), node heap snapshots, failures."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
from support import PY, WORKLOADS, kill_and_reap, read_json, wait_for, workload

from memview.captures.base import CaptureContext, CaptureError, run_tool
from memview.store import Store

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
needs_heaptrack = pytest.mark.skipif(
    not (shutil.which("heaptrack") and shutil.which("gdb")), reason="heaptrack/gdb not installed"
)


def _session(db_path: Path, summary: dict) -> tuple[Store, int]:
    return Store(db_path), summary["session_id"]


def _events(store: Store, sid: int, kind: str) -> list[dict]:
    return [e for e in store.events(sid) if e["kind"] == kind]


def _file(capture: dict, suffix: str) -> Path:
    return Path(next(f["path"] for f in capture["data"]["files"] if f["path"].endswith(suffix)))


@pytest.fixture(scope="module")
def c_program(tmp_path_factory) -> Path:
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed")
    exe = tmp_path_factory.mktemp("c") / "grow_buffers"
    subprocess.run(["gcc", "-O1", "-g", "-o", str(exe), str(WORKLOADS / "grow_buffers.c")], check=True)
    return exe


# -- py-spy -------------------------------------------------------------------------------------------


def test_python_child_gets_a_dump_and_a_profile_naming_the_allocating_function(memview, db_path, tmp_path):
    out = tmp_path / "s.json"
    res = memview(
        "run",
        "--threshold",
        "60MB",
        "--capture",
        "py-spy-dump,py-spy-record",
        "--capture-duration",
        "1s",
        "--json",
        str(out),
        "--",
        *workload("grow.py", 3.5, 4, 200),
    )
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    store, sid = _session(db_path, summary)
    (trigger,) = _events(store, sid, "trigger")
    # the firing is the first sample at/over the line, with its own time and value
    times, values = store.load_series(sid)
    first = next(i for i, v in enumerate(values) if v >= 60_000_000)
    assert trigger["t_s"] == pytest.approx(times[first], abs=1e-6)  # the store keeps times to the µs
    assert trigger["data"]["value"] == values[first]
    dump, record = summary["captures"]
    assert (dump["tool"], dump["status"], record["tool"], record["status"]) == (
        "py-spy-dump",
        "ok",
        "py-spy-record",
        "ok",
    ), summary["events"]
    assert dump["pid"] == summary["pid"] and dump["trigger"] == "60MB"
    # the dump: readable text and py-spy's JSON, both naming the function that allocates
    text = Path(dump["path"]).read_text()
    assert dump["path"].endswith(".txt") and re.search(r"allocate_pages \(\S*grow.py:\d+\)", text), text
    threads = json.loads(_file(dump, ".json").read_text())
    assert "allocate_pages" in [f["name"] for t in threads for f in t["frames"]]
    # the profile: speedscope with most samples inside allocate_pages, and a flame graph
    doc = json.loads(Path(record["path"]).read_text())
    frames = doc["shared"]["frames"]
    samples = [s for p in doc["profiles"] for s in p["samples"]]
    inside = sum(any(frames[i]["name"] == "allocate_pages" for i in s) for s in samples)
    # py-spy samples ~100 Hz when it gets the CPU: 43 in 1 s with two CPU hogs beside the suite. Enough
    # samples for a share to mean something, then the share is the claim.
    assert len(samples) >= 10 and inside / len(samples) > 0.5, (inside, len(samples))
    svg = _file(record, ".svg").read_text()
    assert svg.startswith("<svg") and "allocate_pages" in svg
    # timing: the capture starts within one flush of the crossing; the record lasts its duration
    assert 0 <= dump["started_s"] - trigger["t_s"] < 0.6
    assert 0.95 < record["ended_s"] - record["started_s"] < 3.0
    assert all(
        os.path.isabs(c["path"]) and Path(c["path"]).parent.name == f"session-{sid}" for c in summary["captures"]
    )


def test_python_tree_is_dumped_with_subprocesses(memview, tmp_path):
    out = tmp_path / "s.json"
    report = tmp_path / "pool.json"
    res = memview(
        "run",
        "--threshold",
        "100MB",
        "--capture",
        "py-spy-dump",
        "--json",
        str(out),
        "--",
        *workload("pool.py", report, 3, 60),
    )
    assert res.returncode == 0, res.stderr
    (dump,) = read_json(out)["captures"]
    assert dump["status"] == "ok", read_json(out)["events"]
    threads = json.loads(_file(dump, ".json").read_text())
    pids = {t["pid"] for t in threads}
    assert len(pids) >= 2  # the parent and its worker processes, one dump
    assert Path(dump["path"]).read_text().count("Process ") == len(pids)


def test_process_exiting_mid_recording_keeps_the_profile(memview, tmp_path):
    out = tmp_path / "s.json"
    res = memview(
        "run",
        "--threshold",
        "30MB",
        "--capture",
        "py-spy-record",
        "--capture-duration",
        "10s",
        "--json",
        str(out),
        "--",
        *workload("grow.py", 1.5, 4, 100),
    )
    assert res.returncode == 0
    (record,) = read_json(out)["captures"]
    assert record["status"] == "ok" and record["ended_s"] - record["started_s"] < 3.0
    assert "exited during the recording" in record["data"]["notes"][0]
    assert json.loads(Path(record["path"]).read_text())["profiles"]


# -- heaptrack ----------------------------------------------------------------------------------------


@needs_heaptrack
def test_c_child_gets_a_heaptrack_file_naming_its_allocating_function(memview, tmp_path, c_program):
    out = tmp_path / "s.json"
    res = memview(
        "run",
        "--threshold",
        "20MB",
        "--capture",
        "heaptrack",
        "--capture-duration",
        "1s",
        "--json",
        str(out),
        "--",
        str(c_program),
        "300",
    )
    assert res.returncode == 3, res.stderr  # the program's own exit status
    summary = read_json(out)
    (cap,) = summary["captures"]
    assert cap["status"] == "ok", summary["events"]
    assert cap["path"].endswith((".zst", ".gz")) and cap["size_bytes"] == Path(cap["path"]).stat().st_size
    printed = subprocess.run(["heaptrack_print", "-f", cap["path"]], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert "grow_buffers" in printed.stdout and "grow_buffers.c:" in printed.stdout
    calls = int(re.search(r"calls to allocation functions: (\d+)", printed.stdout).group(1))
    # 1 MiB every ~20 ms, recorded from injection to heaptrack_stop(): ~1 s window plus the gdb stop
    assert 20 <= calls <= 200, calls
    summary_txt = _file(cap, ".txt").read_text()
    assert "PEAK MEMORY CONSUMERS" in summary_txt and "grow_buffers" in summary_txt
    assert cap["data"]["inject_s"] > 0 and cap["data"]["stop_s"] > 0


@needs_heaptrack
def test_heaptrack_launch_mode_records_the_real_program_from_its_start(memview, tmp_path, c_program):
    out = tmp_path / "s.json"
    res = memview("run", "--heaptrack", "--json", str(out), "--", str(c_program), "25")
    assert res.returncode == 3, res.stderr
    summary = read_json(out)
    # the monitored root is the program itself, not heaptrack's wrapper script
    (proc,) = summary["processes"]
    assert proc["name"] == "grow_buffers" and proc["pid"] == summary["pid"] and proc["exit_code"] == 3
    # exact either way: ru_maxrss when it stands above the launcher's own floor, else the last VmHWM read
    assert summary["peak_source"].startswith("kernel:") and summary["peak_rss_bytes"] > 25 * 2**20
    (cap,) = summary["captures"]
    assert (cap["tool"], cap["trigger"], cap["status"], cap["pid"]) == ("heaptrack", "launch", "ok", proc["pid"])
    printed = subprocess.run(["heaptrack_print", "-f", cap["path"]], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and "grow_buffers" in printed.stdout
    calls = int(re.search(r"calls to allocation functions: (\d+)", printed.stdout).group(1))
    assert calls >= 25  # every allocation from the start


# -- node ---------------------------------------------------------------------------------------------


def _check_snapshot(path: str) -> dict:
    doc = json.loads(Path(path).read_text())
    assert {"snapshot", "nodes"} <= doc.keys()
    assert doc["snapshot"]["node_count"] * len(doc["snapshot"]["meta"]["node_fields"]) == len(doc["nodes"])
    assert "retainBuffers" in doc["strings"]
    return doc


@needs_node
def test_node_snapshot_via_its_heapsnapshot_signal(memview, tmp_path):
    out = tmp_path / "s.json"
    res = memview(
        "run",
        "--threshold",
        "80MB",
        "--capture",
        "node-heap-snapshot",
        "--json",
        str(out),
        "--",
        NODE,
        "--heapsnapshot-signal=SIGUSR2",
        str(WORKLOADS / "grow.js"),
        "3",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    (cap,) = summary["captures"]
    assert cap["status"] == "ok" and cap["data"]["method"] == "signal SIGUSR2", summary["events"]
    assert cap["path"].endswith(".heapsnapshot")
    _check_snapshot(cap["path"])
    assert not list(tmp_path.glob("Heap.*.heapsnapshot"))  # moved into the session's folder


@needs_node
def test_node_snapshot_via_the_inspector_which_is_closed_afterwards(memview, tmp_path):
    """With --node-inspector (the user accepts the risk) a plain node is snapshotted over its inspector."""
    # grow.js exits after its SECONDS: 600, so a slow attach on a loaded machine never outlives it (killed below)
    node = subprocess.Popen(
        [NODE, "--inspect-port=0", str(WORKLOADS / "grow.js"), "600"], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert node.stdout.readline().strip() == "ready"
        out = tmp_path / "s.json"
        res = memview(
            "attach",
            str(node.pid),
            "--threshold",
            "10MB",
            "--capture",
            "node-heap-snapshot",
            "--node-inspector",
            "--duration",
            "4",
            "--max-captures",
            "1",
            "--json",
            str(out),
        )
        assert res.returncode == 0, res.stderr
        summary = read_json(out)
        (cap,) = summary["captures"]
        assert cap["status"] == "ok", summary["events"]
        assert node.poll() is None  # node is still running, and listens nowhere now
        conns = psutil.Process(node.pid).net_connections(kind="tcp")
        assert [c for c in conns if c.status == psutil.CONN_LISTEN] == []
        assert cap["data"]["method"] == "inspector" and cap["data"]["inspector_closed"] is True
        assert cap["data"]["inspector_port"] != 9229  # --inspect-port=0: a free port
    finally:
        kill_and_reap(node)
    _check_snapshot(cap["path"])


@needs_node
def test_memview_run_gives_node_a_snapshot_signal_and_opens_no_port(memview, tmp_path):
    """Issue 17 item 4: ``memview run`` snapshots node by its own signal; no inspector ever listens."""
    out = tmp_path / "s.json"
    res = memview(
        "run",
        "--threshold",
        "80MB",
        "--capture",
        "node-heap-snapshot",
        "--json",
        str(out),
        "--",
        NODE,
        str(WORKLOADS / "grow.js"),
        "3",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    (cap,) = read_json(out)["captures"]
    assert cap["status"] == "ok" and cap["data"]["method"] == "signal SIGUSR2", read_json(out)["events"]
    _check_snapshot(cap["path"])


@needs_node
def test_node_inspector_is_never_opened_by_default(memview, tmp_path):
    """Issue 17 item 4: a node without --heapsnapshot-signal is refused in one line; no port opens."""
    node = subprocess.Popen([NODE, str(WORKLOADS / "grow.js"), "600"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert node.stdout.readline().strip() == "ready"
        out = tmp_path / "s.json"
        res = memview(
            "attach",
            str(node.pid),
            "--threshold",
            "10MB",
            "--capture",
            "node-heap-snapshot",
            "--duration",
            "1.5",
            "--json",
            str(out),
        )
        assert res.returncode == 0, res.stderr
        summary = read_json(out)
        (cap,) = summary["captures"]
        assert cap["status"] == "refused", summary["events"]
        (err,) = [e for e in summary["events"] if e["kind"] == "capture_error"]
        assert "\n" not in err["message"] and "--heapsnapshot-signal" in err["message"]
        assert "--node-inspector" in err["message"]
        assert node.poll() is None  # node is unharmed, and nothing of it listens
        listening = [c for c in psutil.Process(node.pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        assert listening == []
    finally:
        kill_and_reap(node)


@needs_node
def test_node_inspector_on_a_busy_port_is_a_clear_event(memview, tmp_path):
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 9229))
        holder.listen()
    except OSError:
        holder.close()
        holder = None  # someone else holds 9229 already: the same situation
    node = subprocess.Popen([NODE, str(WORKLOADS / "grow.js"), "600"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert node.stdout.readline().strip() == "ready"
        out = tmp_path / "s.json"
        res = memview(
            "attach",
            str(node.pid),
            "--threshold",
            "10MB",
            "--capture",
            "node-heap-snapshot",
            "--node-inspector",
            "--duration",
            "1.5",
            "--json",
            str(out),
        )
        assert res.returncode == 0, res.stderr
        summary = read_json(out)
        (cap,) = summary["captures"]
        assert cap["status"] == "failed"
        (err,) = [e for e in summary["events"] if e["kind"] == "capture_error"]
        assert "127.0.0.1:9229 is in use" in err["message"] and "--inspect-port=0" in err["message"]
        assert node.poll() is None  # node itself is unharmed
    finally:
        kill_and_reap(node)
        if holder is not None:
            holder.close()


# -- triggers end to end ------------------------------------------------------------------------------


def test_an_oscillating_workload_fires_once(memview, db_path, tmp_path):
    out = tmp_path / "s.json"
    res = memview(
        "run",
        "--interval",
        "0.01",
        "--threshold",
        "60MB",
        "--capture",
        "none",
        "--json",
        str(out),
        "--",
        *workload("oscillate.py", 80, 6, 0.3),
    )
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    store, sid = _session(db_path, summary)
    times, values = store.load_series(sid)
    crossings, below = 0, True
    for v in values:  # full swings: from under the re-arm level (90% of the line) to over the line
        if below and v >= 60_000_000:
            crossings, below = crossings + 1, False
        elif v < 54_000_000:
            below = True
    assert crossings >= 4  # it really did swing across the line again and again
    assert len(_events(store, sid, "trigger")) == 1
    assert summary["captures"] == []
    # the same swings with a budget of 3 and a 0.5 s cooldown: three firings, at least 0.5 s apart
    out2 = tmp_path / "s2.json"
    memview(
        "run",
        "--interval",
        "0.01",
        "--threshold",
        "60MB,max=3,cooldown=0.5s",
        "--capture",
        "none",
        "--json",
        str(out2),
        "--",
        *workload("oscillate.py", 80, 6, 0.3),
    )
    fired = [e["t_s"] for e in _events(store, read_json(out2)["session_id"], "trigger")]
    assert len(fired) == 3 and all(b - a >= 0.5 for a, b in zip(fired, fired[1:]))


def test_bad_threshold_is_one_clear_error_and_nothing_runs(memview, tmp_path):
    marker = tmp_path / "ran"
    res = memview("run", "--threshold", "800XB", "--", PY, "-c", f"open({str(marker)!r}, 'w')")
    assert res.returncode == 2 and "unknown size unit 'XB'" in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists()
    res = memview("run", "--capture", "perf", "--", "true")
    assert res.returncode == 2 and "choose from py-spy-dump" in res.stderr


# -- failures -----------------------------------------------------------------------------------------


@needs_heaptrack
def test_missing_tool_is_a_clear_event_and_the_run_goes_on(db_path, tmp_path):
    env = {**os.environ, "MEMVIEW_DB": str(db_path), "PATH": str(tmp_path / "empty-bin")}
    out = tmp_path / "s.json"
    res = subprocess.run(
        [
            PY,
            "-m",
            "memview",
            "run",
            "--threshold",
            "20MB",
            "--capture",
            "heaptrack",
            "--json",
            str(out),
            "--",
            *workload("hold.py", 40, 1),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    assert summary["status"] == "completed" and summary["peak_rss_bytes"] > 40 * 2**20
    (cap,) = summary["captures"]
    assert cap["status"] == "missing-tool" and cap["path"] is None
    (err,) = [e for e in summary["events"] if e["kind"] == "capture_error"]
    assert "heaptrack is not installed or not on PATH" in err["message"] and "apt install heaptrack" in err["message"]
    assert "capture_error" in res.stderr or "heaptrack is not installed" in res.stderr  # shown in the summary


@pytest.mark.skipif(not shutil.which("strace"), reason="strace is not installed")
def test_ptrace_refused_says_who_holds_the_process(memview, tmp_path):
    child = subprocess.Popen(workload("hold.py", 30, 30), stdout=subprocess.PIPE, text=True)
    tracer = None
    try:
        assert child.stdout.readline().strip() == "ready"
        tracer = subprocess.Popen(["strace", "-p", str(child.pid), "-o", os.devnull], stderr=subprocess.PIPE)
        wait_for(lambda: _tracer_of(child.pid) == tracer.pid)
        out = tmp_path / "s.json"
        res = memview(
            "attach",
            str(child.pid),
            "--threshold",
            "10MB",
            "--capture",
            "py-spy-dump",
            "--duration",
            "1",
            "--json",
            str(out),
        )
        assert res.returncode == 0, res.stderr
        summary = read_json(out)
        (cap,) = summary["captures"]
        assert cap["status"] == "ptrace-refused" and "Operation not permitted" in cap["stderr_tail"]
        (err,) = [e for e in summary["events"] if e["kind"] == "capture_error"]
        assert f"already being traced by strace (PID {tracer.pid})" in err["message"]
    finally:
        if tracer is not None:
            tracer.terminate()
            tracer.wait()
            kill_and_reap(tracer)  # its stderr pipe
        kill_and_reap(child)


def _tracer_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("TracerPid")))


@needs_node
def test_a_hanging_capture_is_stopped_at_its_time_limit(memview, tmp_path):
    node = subprocess.Popen(
        [NODE, "--heapsnapshot-signal=SIGUSR2", str(WORKLOADS / "grow.js"), "30"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert node.stdout.readline().strip() == "ready"
        os.kill(node.pid, signal.SIGSTOP)  # a stopped node never writes the snapshot it is asked for
        out = tmp_path / "s.json"
        res = memview(
            "attach",
            str(node.pid),
            "--threshold",
            "10MB",
            "--capture",
            "node-heap-snapshot",
            "--capture-timeout",
            "1s",
            "--duration",
            "2",
            "--json",
            str(out),
        )
        assert res.returncode == 0, res.stderr
        summary = read_json(out)
        (cap,) = summary["captures"]
        assert cap["status"] == "timeout"
        assert 0.9 < cap["ended_s"] - cap["started_s"] < 2.0
        (err,) = [e for e in summary["events"] if e["kind"] == "capture_error"]
        assert "did not finish its heap snapshot within 1s" in err["message"]
        assert summary["status"] == "completed"
    finally:
        kill_and_reap(node)


def test_a_tool_past_its_time_limit_is_killed_with_its_children(tmp_path):
    ctx = CaptureContext("test", os.getpid(), tmp_path, "x", 0.0, 0.5)
    ctx.deadline = __import__("time").monotonic() + 0.5
    with pytest.raises(CaptureError) as info:
        run_tool(
            ctx,
            [shutil.which("sh"), "-c", "sleep 30 & echo $! > " + str(tmp_path / "pid") + "; wait"],
            None,
            tmp_path / "err",
        )
    assert info.value.status == "timeout" and "killed" in str(info.value)
    grandchild = int((tmp_path / "pid").read_text())
    wait_for(lambda: not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie", timeout=5)


# -- capture now ----------------------------------------------------------------------------------------


def test_capture_now_runs_auto_for_the_process_type(db_path):
    from memview.captures.options import CaptureSetup
    from memview.runner import ProcessSession, reap

    store = Store(db_path)
    setup = CaptureSetup.from_cli(capture="auto", capture_duration="0.5s")
    session = ProcessSession.launch(
        workload("grow.py", 120, 2, 60), store, 0.05, before_start=setup.install, stdout=subprocess.DEVNULL
    )
    rec = session.recorder
    try:
        wait_for(lambda: rec.stats.count >= 5)
        assert rec.request_capture("button") is True
        assert setup.service.executor.wait_idle(180)
    finally:
        session.proc.kill()  # the captures are done (memray attach and detach take seconds each)
        session.reaped(reap(session.proc))
        session.close()
    caps = store.captures(rec.session_id)
    assert [(c["tool"], c["trigger"], c["status"]) for c in caps] == [
        ("py-spy-dump", "manual: button", "ok"),
        ("memray", "manual: button", "ok"),
    ]
