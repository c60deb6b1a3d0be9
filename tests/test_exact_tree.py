"""Issue 15: every process of a launched tree gets its exact own peak (ptrace exit stops).

Each test runs real processes that read their own VmHWM and compares memview's figures with
the kernel's. No timing bounds: processes are awaited through files they write or their exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import PY, WORKLOADS, kill_and_reap, read_json, wait_for, workload

from memview.collectors import procfs
from memview.model import ENVELOPE_SERIES, ProcessExit
from memview.store import Store

pytestmark = pytest.mark.skipif(not procfs.AVAILABLE, reason="ptrace exit stops and /proc are Linux-only")

EXIT = "kernel:VmHWM@exit"
MIB = 2**20


def _within(value: int, truth: int, rel: float = 0.01) -> bool:
    return abs(value - truth) / truth < rel


def _by_pid(summary: dict) -> dict[int, dict]:
    return {p["pid"]: p for p in summary["processes"]}


@pytest.fixture(scope="module")
def brief(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The 1 ms child: a C program (no interpreter start-up) built for this test run."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the 1 ms child")
    exe = tmp_path_factory.mktemp("brief") / "brief"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(WORKLOADS / "brief.c")], check=True)
    return str(exe)


def test_harness_workers_that_peak_in_their_last_ms_are_exact_at_the_default_interval(memview, tmp_path):
    """Before: each worker's figure was the VmHWM read up to 100 ms before its exit (4-24 % low)."""
    out = tmp_path / "out.json"
    res = memview("run", "--json", str(out), "--", *workload("late_peak.py", "harness", tmp_path, 3, 80))
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    procs = _by_pid(summary)
    # the tree's peak says what it is: a sampled floor and an upper bound, both in the summary and show
    assert summary["peak_sampled_bytes"] <= summary["peak_rss_bytes"] <= summary["peak_bound_bytes"], summary
    shown = memview("show", str(summary["session_id"])).stderr + memview("show", str(summary["session_id"])).stdout
    assert "upper bound" in shown and "kernel:VmHWM@exit" in shown, shown
    for i in range(3):
        truth = read_json(tmp_path / f"w{i}.json")
        mine = procs[truth["pid"]]
        assert mine["peak_source"] == EXIT, mine
        assert _within(mine["peak_rss_bytes"], truth["hwm_bytes"]), (mine["peak_rss_bytes"], truth)


def test_a_child_that_lives_a_millisecond_is_exact(memview, tmp_path, brief):
    """Started and ended between two samples: known only from its exit stop, and exact."""
    out = tmp_path / "out.json"
    code = (
        "import subprocess, sys\n"
        "for i in range(3):\n"
        "    subprocess.run([sys.argv[1], sys.argv[2] + f'/b{i}.json', '24'], check=True)\n"
    )
    res = memview("run", "--json", str(out), "--", PY, "-c", code, brief, str(tmp_path))
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    briefs = [p for p in summary["processes"] if p["name"] == "brief"]
    assert len(briefs) == 3, summary["processes"]
    truths = sorted(read_json(tmp_path / f"b{i}.json")["hwm_bytes"] for i in range(3))
    mine = sorted(p["peak_rss_bytes"] for p in briefs)
    assert all(p["peak_source"] == EXIT for p in briefs), briefs
    for value, truth in zip(mine, truths, strict=True):
        assert _within(value, truth), (mine, truths)


def test_bin_true_a_hundred_times_never_reports_the_launchers_memory():
    """The launcher here is pytest (well above 8 MiB): ru_maxrss would carry it; the exit stop does not."""
    from memview.runner import ProcessSession, reap

    peaks = []
    for _ in range(100):
        session = ProcessSession.launch(["/bin/true"], None, 0.05)
        session.reaped(reap(session.proc))
        session.close()
        peaks.append(
            (session.recorder.closing_fields["peak_rss_bytes"], session.recorder.closing_fields["peak_source"])
        )
    assert all(p is not None and p <= 8 * MIB for p, _ in peaks), peaks
    assert all(src == EXIT for _, src in peaks), peaks


def test_without_tracing_a_short_command_says_unknown_never_the_launchers_figure(memview, tmp_path, monkeypatch):
    out = tmp_path / "out.json"
    monkeypatch.setenv("MEMVIEW_NO_TRACE", "1")
    res = memview("run", "--json", str(out), "--", "/bin/true")
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    if summary["peak_rss_bytes"] is not None:  # a sample did catch it
        assert summary["peak_rss_bytes"] <= 8 * MIB, summary
    else:
        assert any(e["kind"] == "peak_unknown" for e in summary["events"]), summary["events"]


def test_a_daemon_stays_in_the_session(memview, tmp_path):
    """Double fork + setsid: the daemon is the command's; memview records it until it exits."""
    out, truth_path = tmp_path / "out.json", tmp_path / "daemon.json"
    res = memview("run", "--json", str(out), "--", *workload("late_peak.py", "daemon", truth_path, 120, 1.0))
    assert res.returncode == 0, res.stderr
    truth = read_json(truth_path)  # written before the daemon exited: memview waited for it
    summary = read_json(out)
    daemon = _by_pid(summary).get(truth["pid"])
    assert daemon is not None, summary["processes"]
    assert daemon["peak_source"] == EXIT and _within(daemon["peak_rss_bytes"], truth["hwm_bytes"]), daemon
    assert summary["peak_rss_bytes"] >= 120 * MIB, summary["peak_rss_bytes"]
    assert any(e["kind"] == "descendants_running" for e in summary["events"]), summary["events"]


def test_an_exited_child_leaves_the_tree_total_at_its_exit(memview, tmp_path, db_path):
    """Before: the last sample (child alive) stayed the total: final = parent + child."""
    out = tmp_path / "out.json"
    code = (
        "import subprocess, sys, time\n"
        "subprocess.run([sys.executable, '-c', 'b = bytearray(150 * 2**20); b[::4096] = b\"1\" * len(b[::4096]);"
        " import time; time.sleep(1.5)'])\n"
        "time.sleep(0.2)\n"
    )
    res = memview("run", "--interval", "1", "--json", str(out), "--", PY, "-c", code)
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    child = next(p for p in summary["processes"] if p["pid"] != summary["pid"])
    parent = _by_pid(summary)[summary["pid"]]
    assert child["peak_rss_bytes"] >= 150 * MIB
    assert summary["final_rss_bytes"] <= parent["peak_rss_bytes"], summary["final_rss_bytes"]
    times, values = Store(db_path).load_series(summary["session_id"], "rss")
    # stored times are whole microseconds (codec): the sample at the exit may read up to 0.5 µs early
    after = [v for t, v in zip(times, values, strict=True) if t >= child["last_s"] - 1e-6]
    assert after and max(after) <= parent["peak_rss_bytes"], (times, values, child["last_s"])


def test_the_envelope_shows_a_spike_between_samples(memview, tmp_path):
    """30 ms spikes at a 0.5 s interval: the sampled series misses them, the envelope does not."""
    report, out = tmp_path / "truth.json", tmp_path / "out.json"
    res = memview("run", "--interval", "0.5", "--json", str(out), "--", *workload("spikes.py", report, 150, 3))
    assert res.returncode == 0, res.stderr
    truth = read_json(report)["hwm_bytes"]
    series = read_json(out)["series"]
    assert _within(series[ENVELOPE_SERIES]["peak"], truth), (series, truth)


def _target(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A process not started by memview: spikes to 100 MiB and frees it, then waits for a go."""
    code = (
        "import sys\n"
        "b = bytearray(100 * 2**20); b[::4096] = b'1' * len(b[::4096]); del b\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1], flush=True)\n"
    )
    proc = subprocess.Popen([PY, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc, tmp_path / "out.json"


@pytest.mark.parametrize("envelope", [False, True])
def test_attach_resets_the_targets_mark_only_with_envelope(memview, tmp_path, envelope):
    proc, out = _target(tmp_path)
    try:
        args = ["attach", str(proc.pid), "--duration", "0.5", "--json", str(out)] + (["--envelope"] if envelope else [])
        res = memview(*args)
        assert res.returncode == 0, res.stderr
        proc.stdin.write("go\n")
        proc.stdin.flush()
        hwm = int(proc.stdout.readline()) * 1024
    finally:
        kill_and_reap(proc)
    summary = read_json(out)
    if envelope:
        assert hwm < 100 * MIB and ENVELOPE_SERIES in summary["series"], (hwm, summary["series"])
    else:
        assert hwm >= 100 * MIB and ENVELOPE_SERIES not in summary["series"], (hwm, summary["series"])
        assert all(p["peak_source"] != EXIT for p in summary["processes"])


def test_attach_never_says_kernel_for_a_child_that_exited_after_its_last_reading(memview, tmp_path):
    """No exact mechanism for a process memview did not start: its last VmHWM is not its exit's."""
    out, go = tmp_path / "out.json", tmp_path / "go"
    code = (
        "import os, subprocess, sys, time\n"
        "print('ready', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "subprocess.run([sys.executable, '-c', 'import time; b = bytearray(50 * 2**20);"
        ' b[::4096] = b"1" * len(b[::4096]); time.sleep(0.5)\'])\n'
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        attach = subprocess.Popen(
            [PY, "-m", "memview", "attach", str(proc.pid), "--interval", "0.02", "--json", str(out), "--duration", "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "MEMVIEW_DB": str(tmp_path / "db")},
        )
        db = tmp_path / "db"

        def recording() -> bool:  # the attach session has stored samples: it is watching
            if not db.exists():
                return False
            store = Store(db)
            try:
                rows = store.sessions(limit=1)
                return bool(rows) and bool(store.series_names(rows[0]["id"]))
            finally:
                store.close()

        wait_for(recording, timeout=60)
        go.write_text("go")
        _out, err = attach.communicate(timeout=120)
        assert attach.returncode == 0, err
    finally:
        kill_and_reap(proc)
    summary = read_json(out)
    children = [p for p in summary["processes"] if p["pid"] != proc.pid]
    assert children and all(p["peak_source"] == "sampled" for p in children), children
    help_text = memview("attach", "--help").stdout
    assert "--envelope" in help_text and "visible to the process" in " ".join(help_text.split())


def test_release_steps_aside_before_another_tool_ptraces_the_process(tmp_path):
    from memview.runner import ProcessSession, reap

    flag = tmp_path / "go"
    code = f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.01)\n"
    session = ProcessSession.launch([PY, "-c", code], None, 0.05)
    pid = session.proc.pid

    def tracer_pid() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
        raise AssertionError("no TracerPid")

    assert tracer_pid() != 0  # traced by memview's tracer thread
    assert session.proc.poll() is None  # Popen's own poll must not take the tracer's stops
    session.collector.release(pid)
    assert tracer_pid() == 0  # free for py-spy, heaptrack, gdb
    flag.write_text("go")
    info = reap(session.proc)
    assert info is not None and info.exit_code == 0
    session.reaped(info)
    session.close()
    assert any(e.kind == "tracing_released" for e in session.recorder.events)


class _Exits:
    def __init__(self) -> None:
        self.exits: list[ProcessExit] = []
        self.lock = threading.Lock()

    def on_process_exit(self, exit: ProcessExit) -> None:
        with self.lock:
            self.exits.append(exit)


def test_take_hwm_covers_the_envelopes_resets_and_listeners_hear_each_exit(tmp_path):
    """A phase boundary's take_hwm must see a spike the sampler's own resets already passed."""
    from memview.runner import ProcessSession, reap

    spiked, go = tmp_path / "spiked", tmp_path / "go"
    code = (
        "import os, sys, time, subprocess\n"
        "subprocess.run([sys.executable, '-c', 'pass'])\n"
        "b = bytearray(90 * 2**20); b[::4096] = b'1' * len(b[::4096]); del b\n"
        f"open({str(spiked)!r}, 'w').close()\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
    )
    exits = _Exits()
    session = ProcessSession.launch([PY, "-c", code], None, 0.01, before_start=lambda s: s.recorder.add_listener(exits))
    pid = session.proc.pid
    wait_for(spiked.exists)
    # let the sampler's envelope reset the mark a few times after the spike
    start = session.recorder.stats.count
    wait_for(lambda: session.recorder.stats.count >= start + 3)
    value, source = session.collector.take_hwm(pid)
    assert source == "kernel:VmHWM" and value >= 90 * MIB, (value, source)
    again, _ = session.collector.take_hwm(pid)
    assert again < 90 * MIB  # counted from the previous take
    go.write_text("go")
    session.reaped(reap(session.proc))
    session.close()
    got = {e.pid: e for e in exits.exits}
    assert pid in got and len(got) == 2, exits.exits
    assert [p.exit_code for p in session.recorder.processes] == [0, 0]  # reaped by the tracer
    assert all(e.source == EXIT and e.hwm_bytes for e in got.values()), exits.exits
    assert session.collector.exit_figures(pid) == got[pid]


def test_run_help_documents_the_envelope(memview):
    text = " ".join(memview("run", "--help").stdout.split())
    assert "--no-envelope" in text and "VmHWM" in text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_the_recorder_turns_readings_into_columns_whatever_the_tree_did():
    """The sampler keeps one row per reading and makes columns once per flush: a process that
    appears or leaves mid-batch keeps exactly its own times and values."""
    from memview.recorder import columns

    steady = [(k * 0.01, {"rss": 10 + k, "pid:1": 4 + k, "pid:2": 6}) for k in range(25)]
    got = columns(steady)
    assert got["pid:1"] == ([k * 0.01 for k in range(25)], [4 + k for k in range(25)])
    assert got["rss"][1] == [10 + k for k in range(25)] and got["pid:2"][1] == [6] * 25
    assert got["rss"][0] is not got["pid:1"][0]  # each series owns its list
    changed = [
        (0.0, {"rss": 1, "pid:1": 1}),
        (0.1, {"rss": 2, "pid:1": 2, "pid:2": 5}),
        (0.2, {"rss": 3, "pid:2": 6}),
        (0.3, {"rss": 4, "pid:3": 7}),
    ]
    assert columns(changed) == {
        "rss": ([0.0, 0.1, 0.2, 0.3], [1, 2, 3, 4]),
        "pid:1": ([0.0, 0.1], [1, 2]),
        "pid:2": ([0.1, 0.2], [5, 6]),
        "pid:3": ([0.3], [7]),
    }
    assert columns([(0.0, {}), (0.1, {})]) == {}
