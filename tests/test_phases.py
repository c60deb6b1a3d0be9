"""Phases announced by real programs (Python probe, Node helper, a shell script, log lines) and
their own peaks, compared with what each program measured itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest
from support import PY, WORKLOADS, read_json, workload

from memview.store import Store

ROOT = WORKLOADS.parents[1]
TOL = 0.02


def _env(db_path) -> dict[str, str]:
    return {**os.environ, "MEMVIEW_DB": str(db_path), "PYTHONPATH": str(ROOT)}


def _run(db_path, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "memview", *args], capture_output=True, text=True, timeout=timeout,
                          env=_env(db_path), **kw)


def _phases(summary: dict) -> dict[str, dict]:
    return {p["name"]: p for p in summary["phases"]}


def _close(value: int, truth: int, tol: float = TOL) -> bool:
    return abs(value - truth) / truth < tol


def test_three_phases_get_their_own_exact_peaks_at_5hz(db_path, tmp_path):
    truth_path, out = tmp_path / "truth.json", tmp_path / "out.json"
    res = _run(db_path, "run", "--interval", "0.2", "--json", str(out), "--", *workload("phases3.py", truth_path))
    assert res.returncode == 0, res.stderr
    truth = read_json(truth_path)["peaks"]
    summary = read_json(out)
    phases = _phases(summary)
    assert [p["name"] for p in summary["phases"]] == ["a", "b", "c"]
    for name in "abc":
        ph = phases[name]
        assert ph["peak_source"] == "kernel:VmHWM", ph
        assert _close(ph["peak_rss_bytes"], truth[name]), (name, ph["peak_rss_bytes"], truth[name])
        assert ph["flags"] == [] and ph["depth"] == 0
        assert ph["start_rss_bytes"] < ph["peak_rss_bytes"] and ph["end_s"] > ph["start_s"]
        assert ph["footprint_bytes"] == ph["peak_rss_bytes"] - ph["start_rss_bytes"]
    # three different peaks, not the global maximum three times: +40, +160 (a 50 ms burst), +90 MiB
    a, b, c = (phases[n]["footprint_bytes"] / 2**20 for n in "abc")
    assert 37 < a < 46 and 155 < b < 168 and 86 < c < 96, (a, b, c)
    # the session's peak is the burst's (two VmHWM readings differ by the kernel's per-CPU counter slack)
    assert _close(summary["peak_rss_bytes"], phases["b"]["peak_rss_bytes"], 0.005)
    # stored in SQLite, listed by `memview show` as a table
    rows = Store(db_path).phases(summary["session_id"])
    assert sorted(r["name"] for r in rows) == ["a", "b", "c"]
    shown = _run(db_path, "show", str(summary["session_id"]))
    table = shown.stdout[shown.stdout.index("phases:"):].splitlines()
    assert "own peak" in table[1] and "source" in table[1]
    assert [line.split()[0] for line in table[2:5]] == ["a", "b", "c"]
    assert all("kernel:VmHWM" in line for line in table[2:5])


def test_node_helper_phases(db_path, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    truth_path, out = tmp_path / "truth.json", tmp_path / "out.json"
    res = _run(db_path, "run", "--interval", "0.2", "--json", str(out), "--", node, "--expose-gc",
               str(WORKLOADS / "phases3.js"), str(truth_path))
    assert res.returncode == 0, res.stderr
    truth = read_json(truth_path)
    assert truth["enabled"] is True
    phases = _phases(read_json(out))
    assert sorted(phases) == ["a", "b", "c"]
    for name in "abc":
        ph = phases[name]
        assert ph["peak_source"] == "kernel:VmHWM", ph
        assert _close(ph["peak_rss_bytes"], truth["peaks"][name]), (name, ph["peak_rss_bytes"], truth["peaks"])
        assert ph["data"]["pid"] > 0


def test_shell_script_echoing_to_memview_fd(db_path, tmp_path):
    out = tmp_path / "out.json"
    res = _run(db_path, "run", "--interval", "0.02", "--json", str(out), "--",
               str(WORKLOADS / "phases.sh"), PY, str(tmp_path))
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    assert [p["name"] for p in summary["phases"]] == ["small", "big", "mid"]
    # the shell alone (a phase's start RSS may already hold the next child: the shell does not wait
    # for memview to read its line before it forks)
    (shell,) = [p for p in summary["processes"] if p["pid"] == summary["pid"]]
    base = shell["peak_rss_bytes"]
    assert base < 8 * 2**20, shell
    # every phase's child is in the tree with its own exact peak, though it was a zombie for a moment
    # (the names may be the shell's: a child seen between fork and exec; `dirname` is a child too)
    children = [p for p in summary["processes"] if p["pid"] != summary["pid"] and p["peak_rss_bytes"] > 20 * 2**20]
    assert len(children) == 3 and all(p["peak_source"] == "kernel:VmHWM" for p in children), [
        (p["pid"], p["name"], p["peak_rss_bytes"], p["peak_source"], p["first_s"], p["last_s"]) for p in children]
    for ph in summary["phases"]:
        # the memory is in the phase's child process: a tree, so the sampled tree maximum
        assert ph["peak_source"] == "sampled" and "tree" in ph["flags"], ph
        child = read_json(tmp_path / f"{ph['name']}.json")["hwm_bytes"]
        assert abs((ph["peak_rss_bytes"] - base) - child) / child < 0.03, (ph, child, base)
        assert ph["data"]["mib"] in (30, 120, 70)
    assert any(e["kind"] == "mark" and e["message"] == "script started" for e in summary["events"])


def test_memory_log_preset_marks_phases_and_passes_output_through(db_path, tmp_path):
    truth_path, out = tmp_path / "truth.json", tmp_path / "out.json"
    res = subprocess.run([PY, "-m", "memview", "run", "-q", "--interval", "0.2", "--phase-preset", "memory-log",
                          "--json", str(out), "--", *workload("memory_log.py", truth_path)],
                         capture_output=True, env=_env(db_path), timeout=120)
    assert res.returncode == 0, res.stderr
    truth = read_json(truth_path)
    # byte for byte what the program printed, on the stream it printed it to
    assert res.stdout.decode() == truth["printed"]["stdout"]
    assert res.stderr.decode() == truth["printed"]["stderr"]
    summary = read_json(out)
    phases = _phases(summary)
    assert sorted(phases) == ["chunk creation", "embedding generation"]
    for name, ph in phases.items():
        assert ph["data"]["via"] == "stderr"
        assert ph["peak_source"] == "kernel:VmHWM"
        assert _close(ph["peak_rss_bytes"], truth["peaks"][name]), (name, ph, truth["peaks"])
        # the figure the program printed ("MB" = rss / 1024 / 1024) is kept beside memview's own: compare it
        # with the line on stderr, not with memview's start RSS (read later, after the step began allocating)
        printed_mb = float(truth["printed"]["stderr"].split(f"[MEMORY] before {name}: ")[1].split(" MB")[0])
        assert ph["data"]["start_reported_bytes"] == pytest.approx(printed_mb * 2**20, abs=0.01 * 2**20)
    (mark,) = [e for e in Store(db_path).events(summary["session_id"]) if e["kind"] == "mark"]
    assert mark["message"] == "High memory usage" and mark["data"]["reported_bytes"] > 10 * 2**20


def test_custom_phase_regex_and_bad_regex(db_path, tmp_path):
    out = tmp_path / "out.json"
    code = ("import time\nprint('BEGIN load', flush=True)\nx = bytearray(30 * 2**20)\n"
            "x[::4096] = b'1' * len(x[::4096])\ntime.sleep(0.05)\nprint('END load', flush=True)\n"
            "print('checkpoint reached', flush=True)")
    res = _run(db_path, "run", "-q", "--phase-regex", r"^BEGIN (?P<start>)(?P<name>\w+)",
               "--phase-regex", r"^END (?P<end>)(?P<name>\w+)", "--phase-regex", r"(?P<name>checkpoint) reached",
               "--json", str(out), "--", PY, "-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "BEGIN load\nEND load\ncheckpoint reached\n"
    summary = read_json(out)
    (load,) = summary["phases"]
    assert load["name"] == "load" and load["data"]["via"] == "stdout"
    # a log line reaches memview a little after the program printed it, so the start RSS may
    # already hold some of the 30 MiB; the peak is the kernel's either way
    assert load["peak_source"] == "kernel:VmHWM" and load["peak_rss_bytes"] > 30 * 2**20
    assert any(e["kind"] == "mark" and e["message"] == "checkpoint" for e in summary["events"])
    bad = _run(db_path, "run", "--phase-regex", "(?P<start>", "--", PY, "-c", "pass")
    assert bad.returncode == 2 and bad.stderr.startswith("memview: --phase-regex") and "Traceback" not in bad.stderr
    bad = _run(db_path, "run", "--phase-regex", "no groups", "--", PY, "-c", "pass")
    assert bad.returncode == 2 and "named group" in bad.stderr


def test_malformed_lines_are_warnings_and_good_phases_survive(db_path, tmp_path):
    truth_path, out = tmp_path / "truth.json", tmp_path / "out.json"
    res = _run(db_path, "run", "-q", "--json", str(out), "--", *workload("phase_edges.py", truth_path, "malformed"))
    assert res.returncode == 0, res.stderr
    truth = read_json(truth_path)["peaks"]
    summary = read_json(out)
    phases = _phases(summary)
    assert sorted(phases) == ["good1", "good2"]
    for name in phases:
        assert _close(phases[name]["peak_rss_bytes"], truth[name]), (name, phases[name], truth)
    assert phases["good2"]["data"] == {"n": 1}
    warnings = [e for e in summary["events"] if e["kind"] == "phase_warning"]
    messages = "\n".join(w["message"] for w in warnings)
    for reason in ("not JSON", "not a JSON object", "unknown event 'explode'", 'no "event" key',
                   'phase_start without a "name"', '"t" is not a number', '"pid" is not an integer',
                   "longer than 64 KiB"):
        assert reason in messages, reason
    # 11 kinds of junk + 200 junk lines: 20 stored one by one, the rest counted in one warning
    assert len(warnings) == 21, messages
    assert "more marker warnings were not stored" in warnings[-1]["message"]
    # the last line had no newline: still read at EOF
    assert any(e["kind"] == "mark" and e["message"] == "no newline at the end" for e in summary["events"])


def test_unclosed_phases_and_an_end_without_a_start(db_path, tmp_path):
    truth_path, out = tmp_path / "truth.json", tmp_path / "out.json"
    res = _run(db_path, "run", "-q", "--interval", "0.2", "--json", str(out), "--",
               *workload("phase_edges.py", truth_path, "unclosed"))
    assert res.returncode == 0, res.stderr
    truth = read_json(truth_path)["peaks"]
    summary = read_json(out)
    phases = _phases(summary)
    assert [p["name"] for p in summary["phases"]] == ["outer", "inner", "never"]
    assert phases["outer"]["flags"] == [] and phases["inner"]["flags"] == ["unclosed"]
    assert phases["inner"]["depth"] == 1 and phases["inner"]["end_s"] == phases["outer"]["end_s"]
    for name in ("outer", "inner"):
        assert phases[name]["peak_source"] == "kernel:VmHWM"
        assert _close(phases[name]["peak_rss_bytes"], truth[name]), (name, phases[name], truth)
    never = phases["never"]
    assert never["flags"] == ["unclosed"] and never["end_s"] >= never["start_s"]
    # closed at exit: the child's wait4 ru_maxrss is its high-water mark since the last reset
    assert never["peak_source"] == "kernel:ru_maxrss", never
    assert _close(never["peak_rss_bytes"], truth["never"]), (never, truth)
    assert any("'ghost' without a matching start" in e["message"] for e in summary["events"])


def _drained_socket_run(argv: list[str]) -> None:
    """Run argv with MEMVIEW_FD on a socket that a plain thread drains: the cost of writing alone."""
    ours, theirs = socket.socketpair()

    def drain() -> None:
        while ours.recv(1 << 18):
            pass

    t = threading.Thread(target=drain)
    t.start()
    env = {**os.environ, "MEMVIEW_FD": str(theirs.fileno()), "PYTHONPATH": str(ROOT)}
    subprocess.run(argv, pass_fds=(theirs.fileno(),), env=env, check=True, timeout=60)
    theirs.close()
    t.join()
    ours.close()


def test_100k_marks_do_not_stall_the_child(db_path, tmp_path):
    base_path, truth_path, out = tmp_path / "base.json", tmp_path / "truth.json", tmp_path / "out.json"
    _drained_socket_run(workload("flood.py", base_path, 100_000))
    baseline = read_json(base_path)["elapsed_s"]
    res = _run(db_path, "run", "-q", "--json", str(out), "--", *workload("flood.py", truth_path, 100_000))
    assert res.returncode == 0, res.stderr
    elapsed = read_json(truth_path)["elapsed_s"]
    # parsing 100k lines takes memview seconds; the child must not wait for that
    assert elapsed < 2 * baseline + 0.5, (elapsed, baseline)
    summary = read_json(out)
    events = Store(db_path).events(summary["session_id"])
    stored = sum(1 for e in events if e["kind"] == "mark")
    (counted,) = [e for e in events if e["kind"] == "phase_warning" and "marks were not stored" in e["message"]]
    assert counted["data"]["marks"] == 100_000
    assert stored + counted["data"]["dropped"] == 100_000
    assert 1000 <= stored <= 1000 * (int(summary["wall_s"]) + 2)
    print(f"100k marks: child {elapsed:.3f}s under memview, {baseline:.3f}s on a bare socket; {stored} stored")


def test_attach_follows_a_fifo_and_a_log_file(db_path, tmp_path):
    fifo, log, truth_path, out = (tmp_path / "m.fifo", tmp_path / "app.log", tmp_path / "truth.json",
                                  tmp_path / "out.json")
    child = subprocess.Popen(workload("attach_target.py", fifo, log, truth_path), stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        res = _run(db_path, "attach", str(child.pid), "-q", "--interval", "0.02", "--phase-pipe", str(fifo),
                   "--phase-log", str(log), "--phase-preset", "memory-log", "--json", str(out))
        assert res.returncode == 0, res.stderr
    finally:
        child.kill()
        child.wait()
    truth = read_json(truth_path)["peaks"]
    summary = read_json(out)
    phases = _phases(summary)
    assert sorted(phases) == ["p40", "p90"]
    assert phases["p40"]["data"].get("via") == "pipe" and phases["p90"]["data"]["via"] == "log"
    for name, ph in phases.items():
        assert ph["peak_source"] == "sampled"  # memview does not reset the mark of a process it did not start
        assert _close(ph["peak_rss_bytes"], truth[name], 0.03), (name, ph, truth)
    assert not fifo.exists()  # memview created it, memview removed it


def test_phase_pipe_unix_socket_and_errors(db_path, tmp_path):
    sock_path = tmp_path / "m.sock"
    code = ("import socket, sys, time, os\np = sys.argv[1]\nprint('ready', flush=True)\n"
            "while not os.path.exists(p): time.sleep(0.01)\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(p)\n"
            "s.sendall(b'{\"event\": \"phase_start\", \"name\": \"s1\", \"sync\": \"t1\"}\\n')\n"
            "assert s.recv(100) == b't1\\n'\n"  # memview acknowledges a sync line on a socket too
            "s.sendall(b'{\"event\": \"phase_end\", \"name\": \"s1\"}\\n')\ntime.sleep(0.2)\n")
    child = subprocess.Popen([PY, "-c", code, str(sock_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        out = tmp_path / "out.json"
        res = _run(db_path, "attach", str(child.pid), "-q", "--phase-pipe", str(sock_path), "--json", str(out))
        assert res.returncode == 0, res.stderr
        assert child.wait(10) == 0, child.stderr.read()
    finally:
        child.kill()
        child.wait()
    assert [p["name"] for p in read_json(out)["phases"]] == ["s1"]
    assert not sock_path.exists()
    (tmp_path / "plain").write_text("x")
    bad = _run(db_path, "attach", str(os.getpid()), "--phase-pipe", str(tmp_path / "plain"))
    assert bad.returncode == 2 and "neither a FIFO nor a UNIX socket" in bad.stderr and "Traceback" not in bad.stderr
    bad = _run(db_path, "attach", str(os.getpid()), "--phase-preset", "memory-log", "--phase-pipe",
               str(tmp_path / "f"))
    assert bad.returncode == 2 and "need --phase-log" in bad.stderr


def test_rust_snippet_from_the_docs(db_path, tmp_path):
    rustc = shutil.which("rustc")
    if rustc is None:
        pytest.skip("rustc is not installed")
    doc = (ROOT / "docs" / "phases.md").read_text()
    source = doc.split("```rust\n", 1)[1].split("```", 1)[0]
    (tmp_path / "phases.rs").write_text(source)
    exe = tmp_path / "phases"
    built = subprocess.run([rustc, "-O", "-o", str(exe), str(tmp_path / "phases.rs")], capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr
    out = tmp_path / "out.json"
    res = _run(db_path, "run", "-q", "--interval", "0.2", "--json", str(out), "--", str(exe))
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    assert [p["name"] for p in summary["phases"]] == ["small", "big", "medium"]
    # the snippet waits for memview's answer at each boundary: every phase's own peak is the kernel's,
    # and the memory is freed at the end of each phase, so the end RSS is the program's baseline
    for ph, mib in zip(summary["phases"], (30, 120, 70)):
        assert ph["peak_source"] == "kernel:VmHWM", ph
        grown = ph["peak_rss_bytes"] - ph["end_rss_bytes"]
        assert abs(grown - mib * 2**20) < TOL * mib * 2**20 + 2**20, (ph, mib)  # + 1 MiB of the program's own
    assert any(e["kind"] == "mark" and e["message"] == "done" for e in summary["events"])


def test_launch_api_feeds_listeners_phase_events(db_path, tmp_path):
    """The GUI's path: ProcessSession.launch + reap + close; listeners get phase_start and on_phase."""
    from memview.runner import ProcessSession, reap

    seen: list[tuple[str, str]] = []

    class Listener:
        def on_event(self, event):
            if event.kind == "phase_start":
                seen.append(("start", event.data["name"]))

        def on_phase(self, phase):
            seen.append(("phase", phase.name))

    truth_path = tmp_path / "truth.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    session = ProcessSession.launch(workload("phases3.py", truth_path, 20, 60, 30), Store(db_path), 0.1,
                                    cwd=str(WORKLOADS), env=env,
                                    before_start=lambda s: s.recorder.add_listener(Listener()))
    session.reaped(reap(session.proc))
    session.close()
    assert seen == [("start", "a"), ("phase", "a"), ("start", "b"), ("phase", "b"), ("start", "c"), ("phase", "c")]
    truth = read_json(truth_path)["peaks"]
    for phase in session.recorder.phases:
        assert _close(phase.peak_rss_bytes, truth[phase.name]), (phase, truth)


def test_probe_tracemalloc_names_what_grew(db_path, tmp_path):
    out = tmp_path / "out.json"
    code = ("from memview.probe import phase\n"
            "with phase('load', tracemalloc=True):\n"
            "    rows = [bytes(1000) for _ in range(20000)]\n")
    res = _run(db_path, "run", "-q", "--json", str(out), "--", PY, "-c", code)
    assert res.returncode == 0, res.stderr
    (load,) = read_json(out)["phases"]
    top = load["data"]["tracemalloc_top"]
    assert 1 <= len(top) <= 10
    assert top[0]["file"] == "<string>" and top[0]["line"] == 3 and top[0]["size_diff"] > 20_000 * 1000


def test_probe_is_stdlib_only_and_silent_without_memview(tmp_path):
    code = ("import sys\nimport memview.probe as p\n"
            "p.mark('x')\nwith p.phase('y'):\n    pass\n"
            "third = sorted({m.split('.')[0] for m in sys.modules}\n"
            "               - set(sys.stdlib_module_names) - {'memview', '__main__'})\n"
            "print(p.enabled(), third)")
    env = {k: v for k, v in os.environ.items() if k != "MEMVIEW_FD"}
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run([PY, "-S", "-c", code], capture_output=True, text=True, env=env)
    assert res.stdout.split(maxsplit=1) == ["False", "[]\n"], res.stdout + res.stderr
    # MEMVIEW_FD naming a regular file (a reused descriptor number) gets nothing written to it
    target = tmp_path / "file"
    with open(target, "w") as f:
        env["MEMVIEW_FD"] = str(f.fileno())
        res = subprocess.run([PY, "-S", "-c", code], capture_output=True, text=True, env=env, pass_fds=(f.fileno(),))
    assert res.stdout.startswith("False") and target.read_text() == ""


def test_marker_lines_parse():
    from memview.markers import BadLine, Marker, RegexMarkers, parse_json_line

    m = parse_json_line(b'{"event":"phase_start","name":"p","t":1.5,"pid":7,"data":{"k":1},"sync":"x"}')
    assert m == Marker("phase_start", "p", 1.5, 7, {"k": 1}, "x", "fd")
    assert parse_json_line(b'{"event":"phase_end"}').name is None
    assert parse_json_line(b"   ") is None
    assert isinstance(parse_json_line(b'{"event":"mark","name":"x","t":true}'), BadLine)
    assert isinstance(parse_json_line(b'{"event":"mark","name":"x","t":NaN}'), BadLine)
    rx = RegexMarkers(presets=["memory-log"])
    line = "2024-01-01 INFO app: [MEMORY] Before embedding generation (chunk 10): 130.25 MB RSS"
    m = rx.match(line)
    assert (m.event, m.name, m.data["reported_bytes"]) == ("phase_start", "embedding generation (chunk 10)",
                                                            round(130.25 * 2**20))
    assert rx.match("[MEMORY] after embedding generation (chunk 10): 131.00 MB RSS").event == "phase_end"
    m = rx.match("WARNING [MEMORY] High memory usage: 523.00 MB")
    assert (m.event, m.name) == ("mark", "High memory usage")
    assert rx.match("[MEMORY] Startup done: 12 MB").name == "Startup done"
    assert rx.match("nothing to see") is None


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
