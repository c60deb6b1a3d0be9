"""Allocation evidence inside memview: memray captures summarised into named sites, shown by ``show``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from support import PY, kill_and_reap, wait_for, workload

from memview.store import Store

pytest.importorskip("memray")
needs_gdb = pytest.mark.skipif(
    subprocess.run(["which", "gdb"], capture_output=True).returncode != 0,
    reason="gdb is not installed (memray attach uses it)",
)


def _by_function(sites: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for s in sites:
        out.setdefault(s["function"], s)
    return out


@needs_gdb
def test_memray_at_a_threshold_names_the_leak_and_the_spike_with_their_sizes(db_path, tmp_path):
    """The judge of issue 19 item 1: both functions, file:line, sizes within 10 % of what was allocated."""
    from memview.captures.options import CaptureSetup
    from memview.runner import ProcessSession, reap

    stop = tmp_path / "stop"
    store = Store(db_path)
    setup = CaptureSetup.from_cli(thresholds=("70MB",), capture="memray", capture_duration="2s")
    session = ProcessSession.launch(
        workload("leak_spike.py", 512, 48, str(stop)), store, 0.05, before_start=setup.install, stdout=subprocess.PIPE
    )
    rec = session.recorder
    try:
        truth = json.loads(session.proc.stdout.readline())
        wait_for(lambda: [c for c in rec.captures if c.status != "running"], timeout=180, interval=0.2)
    finally:
        stop.touch()
        session.reaped(reap(session.proc))
        session.close()
        session.proc.stdout.close()
    (cap,) = store.captures(rec.session_id)
    assert (cap["tool"], cap["status"]) == ("memray", "ok"), (cap, store.events(rec.session_id))
    assert cap["path"].endswith(".memray.bin") and Path(cap["path"]).stat().st_size > 0
    summary = cap["data"]["summary"]
    assert summary["kind"] == "memray" and summary["headline"] == "peak"
    peak = _by_function(summary["tables"]["peak"])
    growth = _by_function(summary["tables"]["growth"])
    spike, leak = peak["spike"], peak["leak"]
    # file:line of each allocation, as the workload says
    assert (spike["file"], spike["line"]) == (truth["file"], truth["spike_line"])
    assert (leak["file"], leak["line"]) == (truth["file"], truth["leak_line"])
    # the spike's one buffer is live at the window's high-water mark: its size, within 10 %
    assert spike["count"] == 1 and spike["bytes"] == pytest.approx(truth["spike_bytes"], rel=0.10)
    # the leak: every allocation of the window is still live, each LEAK bytes
    assert growth["leak"]["count"] >= 3, growth
    assert growth["leak"]["bytes"] == pytest.approx(growth["leak"]["count"] * truth["leak_bytes"], rel=0.10)
    assert leak["bytes"] / leak["count"] == pytest.approx(truth["leak_bytes"], rel=0.10)
    # freed each round: a spike, not a leak (its one buffer is live at the end only if the window
    # closed while spike() ran)
    assert growth.get("spike", {"count": 0})["count"] <= 1
    # the flame graph's stacks end in the two functions
    tops = {stack[-1].split(" ")[0] for stack, _ in summary["stacks"]}
    assert {"leak", "spike"} <= tops
    # memview show names both, file:line and size, without another tool
    env = {**os.environ, "MEMVIEW_DB": str(db_path)}
    res = subprocess.run(
        [PY, "-m", "memview", "show", str(rec.session_id)], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    for name in ("spike", "leak"):
        row = re.search(
            rf"^ +{name} +{re.escape(truth['file'])}:{truth[name + '_line']} +([\d.]+) (MiB|KiB) +(\d+)$",
            res.stdout,
            re.MULTILINE,
        )
        assert row, res.stdout
        shown = float(row.group(1)) * (2**20 if row.group(2) == "MiB" else 1024) / int(row.group(3))
        assert shown == pytest.approx(truth[name + "_bytes"], rel=0.10)


def test_memray_summary_of_a_launched_file_is_exact(tmp_path):
    """A file written by ``memray run``: the peak table holds exactly what the program allocated."""
    from memview.captures.memray import summarise

    out = tmp_path / "run.bin"
    script = tmp_path / "alloc.py"
    script.write_text(
        "def hold(out):\n    for _ in range(5):\n        out.append(bytearray(3 << 20))\n\nx = []\nhold(x)\n"
    )
    subprocess.run(
        [sys.executable, "-m", "memray", "run", "-q", "-o", str(out), str(script)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    summary = summarise(out).as_dict()
    hold = _by_function(summary["tables"]["peak"])["hold"]
    assert (hold["count"], hold["line"]) == (5, 3)
    assert hold["bytes"] == pytest.approx(5 * 3 * 2**20, rel=0.001)


# -- issue 17 item 9: capture tools run with the target's credentials -----------------------------------

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists(),
    reason="needs root, setpriv and /usr/bin/python3",
)
NOBODY = 65534


@pytest.fixture
def public_pyspy() -> Path:
    """A py-spy every user can run (the one pip installed may sit under root's private home)."""
    real = Path(sysconfig.get_path("scripts")) / "py-spy"
    if not real.exists():
        real = Path(shutil.which("py-spy") or "")
    folder = Path(tempfile.mkdtemp(prefix="memview-public-"))
    try:
        folder.chmod(0o755)
        shutil.copy2(real, folder / "py-spy")
        (folder / "py-spy").chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@needs_root
def test_captures_of_another_users_process_run_with_that_users_credentials(tmp_path, public_pyspy):
    """Root captures a ``nobody`` process: py-spy runs as nobody (the kernel's owner of the file it
    wrote says so), and the artefact ends in the session's folder, owned by memview's user."""
    target = subprocess.Popen(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--",
            "/usr/bin/python3",
            str(Path(__file__).parent / "workloads" / "grow.py"),
            "60",
            "2",
            "40",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert target.stdout.readline().strip() == "ready"
        out = tmp_path / "s.json"
        env = {"PATH": f"{public_pyspy}:{os.environ['PATH']}"}
        res = subprocess.run(
            [
                PY,
                "-m",
                "memview",
                "attach",
                str(target.pid),
                "--threshold",
                "1MB",
                "--capture",
                "py-spy-record",
                "--capture-duration",
                "1s",
                "--duration",
                "4",
                "--max-captures",
                "1",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env, "MEMVIEW_DB": str(tmp_path / "memview.db")},
        )
        assert res.returncode == 0, res.stderr
        summary = json.loads(out.read_text())
        (cap,) = summary["captures"]
        assert cap["status"] == "ok", summary["events"]
        assert cap["data"]["run_as"] == {"uid": NOBODY, "gid": NOBODY}
        assert cap["data"]["written_by_uid"] == NOBODY  # py-spy created its file as nobody, not as root
        kept = Path(cap["path"])
        assert kept.parent.name == f"session-{summary['session_id']}" and kept.stat().st_uid == os.geteuid()
        assert "grow.py" in kept.read_text()
    finally:
        kill_and_reap(target)


@needs_root
def test_a_tool_out_of_the_target_users_reach_is_a_one_line_refusal(tmp_path):
    from memview.captures.base import CaptureError, Credentials

    private = tmp_path / "bin"
    private.mkdir()
    tool = private / "py-spy"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    tmp_path.chmod(0o700)
    with pytest.raises(CaptureError) as info:
        Credentials(NOBODY, NOBODY).check_can_run(str(tool))
    assert "out of reach of uid 65534" in str(info.value) and "\n" not in str(info.value)


def test_ptrace_advice_suggests_only_least_privilege_fixes():
    from memview.captures.ptrace_advice import ptrace_advice

    text = ptrace_advice(os.getpid(), "py-spy")
    assert "setcap" not in text and "cap_sys_ptrace+ep" not in text


# -- heaptrack, summarised ---------------------------------------------------------------------------------

needs_heaptrack = pytest.mark.skipif(
    not (shutil.which("heaptrack") and shutil.which("gcc")), reason="heaptrack/gcc not installed"
)


@pytest.fixture(scope="module")
def leak_spike_c(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("c") / "leak_spike"
    subprocess.run(
        ["gcc", "-O1", "-g", "-o", str(exe), str(Path(__file__).parent / "workloads" / "leak_spike.c")], check=True
    )
    return exe


@needs_heaptrack
def test_heaptrack_names_the_leaking_and_the_spiking_c_functions(memview, db_path, tmp_path, leak_spike_c):
    """Under heaptrack from its start: the leak's total and the spike's size, file:line, within 1 %."""
    rounds, leak_kib, spike_mib = 40, 256, 32
    out = tmp_path / "s.json"
    res = memview(
        "run", "--heaptrack", "--json", str(out), "--", str(leak_spike_c), str(rounds), str(leak_kib), str(spike_mib)
    )
    assert res.returncode == 0, res.stderr
    (cap,) = json.loads(out.read_text())["captures"]
    assert cap["status"] == "ok", cap
    summary = cap["data"]["summary"]
    src = str(Path(__file__).parent / "workloads" / "leak_spike.c")
    peak = _by_function(summary["tables"]["peak"])
    leaked = _by_function(summary["tables"]["leaked"])
    temporary = _by_function(summary["tables"]["temporary"])
    assert (peak["spike_buffer"]["file"], peak["spike_buffer"]["line"]) == (src, 16)
    assert peak["spike_buffer"]["bytes"] == pytest.approx(spike_mib * 2**20, rel=0.01)
    assert (leaked["leak_buffer"]["file"], leaked["leak_buffer"]["line"]) == (src, 10)
    assert leaked["leak_buffer"]["bytes"] == pytest.approx(rounds * leak_kib * 1024, rel=0.01)
    assert leaked["leak_buffer"]["count"] == rounds and "spike_buffer" not in leaked
    assert temporary["spike_buffer"]["count"] == rounds
    tops = {stack[-1].split(" ")[0]: w for stack, w in summary["stacks"]}
    assert tops["spike_buffer"] == spike_mib * 2**20  # the folded stacks carry exact bytes
    assert Path(next(f["path"] for f in cap["data"]["files"] if f["path"].endswith(".folded"))).exists()
    res = memview("show", str(json.loads(out.read_text())["session_id"]))
    assert re.search(rf"^ +spike_buffer +{re.escape(src)}:16 +32\.0 MiB +{rounds}$", res.stdout, re.M), res.stdout


# -- node heap snapshots, summarised ---------------------------------------------------------------------

needs_node = pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")


@needs_node
def test_two_node_snapshots_name_the_growing_constructor(db_path, tmp_path):
    """grow → snapshot → grow → snapshot: the second capture's growth table leads with LeakyRecord."""
    stop = tmp_path / "stop"
    env = {**os.environ, "MEMVIEW_DB": str(db_path)}
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "memview",
            "run",
            "-q",
            "--threshold",
            "60MB",
            "--threshold",
            "90MB",
            "--capture",
            "node-heap-snapshot",
            "--json",
            str(tmp_path / "s.json"),
            "--",
            shutil.which("node"),
            str(Path(__file__).parent / "workloads" / "leak_classes.js"),
            "250000",
            str(stop),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        store = Store(db_path)
        wait_for(
            lambda: len([c for c in store.captures(1) if c["status"] != "running"]) == 2, timeout=240, interval=0.2
        )
    finally:
        stop.touch()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    first, second = Store(db_path).captures(1)
    assert (first["status"], second["status"]) == ("ok", "ok"), Store(db_path).events(1)
    one, two = first["data"]["summary"], second["data"]["summary"]
    assert one["headline"] == "retained" and two["headline"] == "growth"
    count_1 = _by_function(one["tables"]["self"])["LeakyRecord"]["count"]
    count_2 = _by_function(two["tables"]["self"])["LeakyRecord"]["count"]
    assert count_2 > count_1 > 0 and count_1 % 2000 == 0 and count_2 % 2000 == 0  # whole rounds of 2000
    top = two["tables"]["growth"][0]
    assert top["function"] in ("LeakyRecord", "(array)", "Array"), two["tables"]["growth"][:5]
    grown = _by_function(two["tables"]["growth"])["LeakyRecord"]
    assert grown["count"] == count_2 - count_1
    # retained: each LeakyRecord keeps its payload array, so it retains more than its own size
    rec = _by_function(two["tables"]["retained"])["LeakyRecord"]
    assert rec["bytes"] > _by_function(two["tables"]["self"])["LeakyRecord"]["bytes"]
    assert "TempRecord" not in {s["function"] for s in two["tables"]["growth"][:10]}


# -- py-spy: the SVG counts samples, its title the recorded span; the .folded form ---------------------


def test_pyspy_flame_graph_counts_samples_and_titles_the_recorded_span(memview, tmp_path):
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
        *workload("grow.py", 2.0, 4, 200),
    )
    assert res.returncode == 0, res.stderr
    (cap,) = json.loads(out.read_text())["captures"]
    assert cap["status"] == "ok", cap
    files = {Path(f["path"]).suffix: Path(f["path"]) for f in cap["data"]["files"]}
    doc = json.loads(files[".json"].read_text())
    samples = sum(len(p["samples"]) for p in doc["profiles"])
    assert samples == cap["data"]["samples"] >= 20
    svg = files[".svg"].read_text()
    # the root box: every sample, counted as samples (py-spy's weights are seconds: 0.01 each)
    assert re.search(rf"<title>all — {samples} samples \(100\.0%, [\d.]+s\)</title>", svg), svg[:600]
    # the title: the span py-spy recorded (the target exited within 2 s), not the 10 s asked for
    span = max(p["endValue"] - p["startValue"] for p in doc["profiles"])
    title = re.search(r'font-size="14">([^<]*)</text>', svg).group(1)
    assert title.endswith(f": {span:.2f}s, {samples} samples") and span < 3.0, title
    assert cap["data"]["recorded_s"] == pytest.approx(span, abs=0.001)
    # the collapsed stacks: one line per stack, root first, counts adding up to every sample
    lines = files[".folded"].read_text().splitlines()
    with_frames = sum(1 for p in doc["profiles"] for st in p["samples"] if st)
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == with_frames
    assert any(line.split(" ")[0].startswith("<module>") and "allocate_pages" in line for line in lines)
    # the summary: sites by self samples, allocate_pages first (where grow.py spends its time)
    summary = cap["data"]["summary"]
    assert summary["unit"] == "samples" and summary["tables"]["self"][0]["function"] == "allocate_pages"
    assert sum(s["bytes"] for s in summary["tables"]["self"]) == with_frames


# -- tracemalloc per phase: in show and compare; the probe never raises -----------------------------------


def _heap_program(n: int) -> str:
    return (
        "from memview.probe import phase\n"
        "with phase('load', tracemalloc=True):\n"
        f"    rows = [bytes(1000) for _ in range({n})]\n"
    )


def test_tracemalloc_phase_sites_in_show_and_compare(memview, db_path, tmp_path):
    ids = []
    for n in (10_000, 30_000):
        out = tmp_path / f"{n}.json"
        res = memview("run", "-q", "--json", str(out), "--", PY, "-c", _heap_program(n))
        assert res.returncode == 0, res.stderr
        ids.append(str(json.loads(out.read_text())["session_id"]))
    show = memview("show", ids[1])
    assert show.returncode == 0, show.stderr
    row = re.search(r"^ +load +<string>:3 +\+([\d.]+) MiB +\+(\d+)$", show.stdout, re.M)
    assert row, show.stdout
    assert float(row.group(1)) * 2**20 == pytest.approx(30_000 * 1033, rel=0.10)  # bytes(1000) is 1033 B
    assert int(row.group(2)) == pytest.approx(30_000, rel=0.01)
    cmp = memview("compare", *ids)
    assert cmp.returncode == 0, cmp.stderr
    line = next(ln for ln in cmp.stdout.splitlines() if ln.startswith("site tracemalloc load: <string>:3"))
    a, b = (float(x) for x in re.findall(r"([\d.]+) MiB", line)[:2])
    assert b / a == pytest.approx(3.0, rel=0.10), line  # three times the rows, three times the bytes


def test_a_program_that_stops_tracemalloc_inside_the_phase_is_not_killed(memview, tmp_path):
    out = tmp_path / "s.json"
    code = (
        "import tracemalloc\nfrom memview.probe import phase\n"
        "with phase('load', tracemalloc=True):\n"
        "    rows = [bytes(1000) for _ in range(1000)]\n"
        "    tracemalloc.stop()\n"
        "print('survived')\n"
    )
    res = memview("run", "--json", str(out), "--", PY, "-c", code)
    assert res.returncode == 0 and res.stdout.strip() == "survived", res.stderr
    (load,) = json.loads(out.read_text())["phases"]
    assert load["end_s"] is not None and "tracing" in load["data"]["tracemalloc_error"]
    assert re.search(r"^ +load +\(no sites\) +RuntimeError: ", res.stderr, re.M), res.stderr  # show says why


def test_phases_a_capture_ran_in_are_flagged_in_show_and_json(db_path, tmp_path):
    stop = tmp_path / "stop"
    code = (
        "import os, time\nfrom memview.probe import phase\n"
        "with phase('before'):\n    small = bytearray(1 << 20)\n"
        "with phase('work'):\n    big = bytearray(80 << 20)\n    big[::4096] = b'x' * len(big[::4096])\n"
        f"    while not os.path.exists({str(stop)!r}):\n        time.sleep(0.01)\n"
        "with phase('after'):\n    del big\n"
    )
    env = {**os.environ, "MEMVIEW_DB": str(db_path)}
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "memview",
            "run",
            "--threshold",
            "60MB",
            "--capture",
            "py-spy-dump",
            "--json",
            str(tmp_path / "s.json"),
            "--",
            PY,
            "-c",
            code,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = Store(db_path)
        wait_for(lambda: [c for c in store.captures(1) if c["status"] != "running"], timeout=120, interval=0.1)
    finally:
        stop.touch()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads((tmp_path / "s.json").read_text())
    flags = {ph["name"]: ph["flags"] for ph in summary["phases"]}
    assert "during-capture" in flags["work"], summary["phases"]
    assert "during-capture" not in flags["before"] and "during-capture" not in flags["after"]
    (window,) = summary["capture_windows"]
    assert window[2] == "py-spy-dump" and window[0] < window[1]
    assert re.search(r"^ +work .*during-capture$", err, re.M), err


def test_files_memview_derives_never_follow_a_planted_link(tmp_path):
    """The capture folder may belong to the target's user: a link at the SVG's name is replaced,
    the file it points at is untouched (issue 17 item 9)."""
    from memview.captures import flamegraph

    speedscope = tmp_path / "p.speedscope.json"
    speedscope.write_text(
        json.dumps(
            {
                "shared": {"frames": [{"name": "f", "file": "a.py", "line": 1}]},
                "profiles": [
                    {
                        "type": "sampled",
                        "unit": "seconds",
                        "startValue": 0,
                        "endValue": 0.02,
                        "samples": [[0], [0]],
                        "weights": [0.01, 0.01],
                    }
                ],
            }
        )
    )
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    svg, folded = tmp_path / "p.svg", tmp_path / "p.folded"
    svg.symlink_to(victim)
    folded.symlink_to(victim)
    drawn = flamegraph.write_svg(speedscope, svg, "t", folded_path=folded)
    assert victim.read_text() == "root's file\n"
    assert not svg.is_symlink() and svg.read_text().startswith("<svg") and drawn["samples"] == 2
    assert folded.read_text() == "f (a.py:1) 2\n" and (svg.stat().st_mode & 0o777) == 0o600


def test_memray_launch_mode_names_every_allocation_of_the_run(memview, tmp_path):
    """``run --memray``: the program under memray from its start; the leak's total is exact."""
    script = tmp_path / "prog.py"
    script.write_text(
        "kept = []\n\n\ndef leak():\n    kept.append(bytearray(1 << 20))\n\n\nfor _ in range(30):\n    leak()\n"
    )
    out = tmp_path / "s.json"
    res = memview("run", "--memray", "--json", str(out), "--", PY, str(script))
    assert res.returncode == 0, res.stderr
    summary = json.loads(out.read_text())
    (cap,) = summary["captures"]
    assert (cap["tool"], cap["trigger"], cap["status"]) == ("memray", "launch", "ok"), summary["events"]
    assert cap["pid"] == summary["pid"]  # the monitored root is the program itself
    leak = _by_function(cap["data"]["summary"]["tables"]["peak"])["leak"]
    assert (leak["file"], leak["line"], leak["count"]) == (str(script), 5, 30)
    assert leak["bytes"] == pytest.approx(30 * 2**20, rel=0.001)
    bad = memview("run", "--memray", "--", "/bin/true")
    assert bad.returncode != 0 and "--memray needs COMMAND" in bad.stderr and "Traceback" not in bad.stderr
