"""memview profile + baseline end to end: real child processes over generated inputs, a real database."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support import PY, WORKLOADS, read_json

from memview.store import Store

MiB = 2**20
WORKLOAD = str(WORKLOADS / "from_input.py")


def write_manifest(folder: Path, extra: str = "") -> Path:
    """Three cases over generated inputs: an argv list, a shell-like string (split, never a shell), a glob."""
    inputs = folder / "inputs"
    inputs.mkdir(exist_ok=True)
    for name, mib in {"a.txt": 20, "b.txt": 30, "beta-1.txt": 25, "beta-2.txt": 35, "c.txt": 40}.items():
        (inputs / name).write_text(f"{mib}\n")
    manifest = folder / "profiling" / "memory.toml"
    manifest.parent.mkdir(exist_ok=True)
    manifest.write_text(f"""
root = ".."

[defaults]
interval = "20ms"

[[case]]
name = "alpha"
backend = "python"
command = [{json.dumps(PY)}, {json.dumps(WORKLOAD)}, "{{input}}"]
inputs = ["inputs/a.txt", "inputs/b.txt"]

[[case]]
name = "beta"
backend = "rust"
command = {json.dumps(f"{PY} {WORKLOAD} {{input}}")}
inputs = "inputs/beta-*.txt"

[[case]]
name = "gamma"
backend = "node"
command = [{json.dumps(PY)}, {json.dumps(WORKLOAD)}, "{{input}}"]
inputs = "inputs/c.txt"
tolerance = "+10% or +5MB"
{extra}""")
    return manifest


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def mv(memview: Runner, tmp_path: Path) -> Runner:
    """``memview ARGS`` run in the project folder (tmp_path), with the test's own database."""
    return lambda *args, **kw: memview(*args, cwd=tmp_path, **kw)


def truth(folder: Path, name: str) -> int:
    return read_json(folder / "inputs" / f"{name}.truth.json")["hwm_bytes"]


def test_first_run_baseline_then_a_heavier_case_fails_and_an_unchanged_run_passes(
    mv: Runner, tmp_path: Path, db_path: Path
) -> None:
    manifest = write_manifest(tmp_path)
    res = mv("profile", "--manifest", str(manifest), "--output-json", "results/memory/first.json")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert sum(line.startswith("[") for line in lines) == 5, res.stderr  # one progress line per case x input
    assert any(
        re.match(r"\[3/5\] beta · inputs/beta-1\.txt +peak [0-9.]+ MiB +avg [0-9.]+ MiB .* session \d+$", line)
        for line in lines
    ), lines
    first = read_json(tmp_path / "results/memory/first.json")
    assert first["format"] == "memview-profile-results" and not first["interrupted"]
    records = {(r["case"], r["input"]): r for r in first["records"]}
    assert list(records) == [
        ("alpha", "inputs/a.txt"),
        ("alpha", "inputs/b.txt"),
        ("beta", "inputs/beta-1.txt"),
        ("beta", "inputs/beta-2.txt"),
        ("gamma", "inputs/c.txt"),
    ]
    for (case, inp), r in records.items():
        # the exact peak: what the kernel told the workload itself, to within 1%
        kernel = truth(tmp_path, Path(inp).name)
        assert r["peak_source"].startswith("kernel:"), r
        assert abs(r["peak_rss_bytes"] - kernel) / kernel < 0.01, (case, inp, r["peak_rss_bytes"], kernel)
        assert r["ok"] and r["exit_code"] == 0 and r["wall_s"] > 0 and r["avg_rss_bytes"] > 0
        assert r["command"][-1] == inp and r["phases"] == [] and r["captures"] == []
    assert records[("beta", "inputs/beta-1.txt")]["backend"] == "rust"
    assert records[("gamma", "inputs/c.txt")]["tolerance"] == "+10% or +5MB"
    assert first["metadata"]["python"] and "platform" in first["metadata"] and "rustc" in first["metadata"]
    # every run is a stored session, tagged with its case
    store = Store(db_path)
    sessions = {s["id"]: s for s in store.sessions()}
    for r in records.values():
        s = sessions[r["session_id"]]
        assert f"case:{r['case']}" in s["tags"] and f"input:{r['input']}" in s["tags"]
        assert s["peak_rss_bytes"] == r["peak_rss_bytes"]
        assert Path(r["logs"][0]).is_file()

    res = mv("baseline", "update", "results/memory/first.json", "-o", "profiling/baselines/memory.json")
    assert res.returncode == 0, res.stderr
    base = read_json(tmp_path / "profiling/baselines/memory.json")
    assert base["default_tolerance"] == "+10%"
    a_peak = records[("alpha", "inputs/a.txt")]["peak_rss_bytes"]
    assert base["cases"]["alpha"]["inputs/a.txt"] == {"peak_rss_bytes": a_peak}
    assert base["cases"]["gamma"]["inputs/c.txt"]["tolerance"] == "+10% or +5MB"

    (tmp_path / "inputs/beta-1.txt").write_text("60\n")  # a regression: 25 -> 60 MiB
    res = mv("profile", "-q", "--manifest", str(manifest), "--output-json", "results/memory/heavier.json")
    assert res.returncode == 0, res.stderr
    res = mv("baseline", "check", "profiling/baselines/memory.json", "results/memory/heavier.json")
    assert res.returncode == 1, res.stdout + res.stderr
    regressed = [line for line in res.stdout.splitlines() if re.match(r"REGRESSED \S", line)]  # verdicts, not rows
    assert len(regressed) == 1 and regressed[0].startswith("REGRESSED beta inputs/beta-1.txt peak:"), res.stdout
    assert "FAIL — 5 compared, 1 regressed" in res.stdout

    (tmp_path / "inputs/beta-1.txt").write_text("25\n")
    res = mv("profile", "-q", "--manifest", str(manifest), "--output-json", "results/memory/unchanged.json")
    assert res.returncode == 0, res.stderr
    res = mv("baseline", "check", "profiling/baselines/memory.json", "results/memory/unchanged.json")
    assert res.returncode == 0, res.stdout
    assert "pass — 5 compared" in res.stdout and "REGRESSED" not in res.stdout

    # the same check from stored session ids instead of the JSON file
    unchanged = read_json(tmp_path / "results/memory/unchanged.json")
    ids = [str(r["session_id"]) for r in unchanged["records"]]
    res = mv("baseline", "check", "profiling/baselines/memory.json", *ids)
    assert res.returncode == 0, res.stdout + res.stderr

    # memview compare --baseline is the same check, and takes bundles too
    heavier = read_json(tmp_path / "results/memory/heavier.json")
    heavy_ids = [str(r["session_id"]) for r in heavier["records"]]
    bundles = []
    for sid in heavy_ids:
        res = mv("export", sid, "-o", f"b{sid}.memview.zip")
        assert res.returncode == 0, res.stderr
        bundles.append(f"b{sid}.memview.zip")
    res = mv("compare", "--baseline", "profiling/baselines/memory.json", *bundles)
    assert res.returncode == 1, res.stdout + res.stderr
    assert [line.split(" peak:")[0] for line in res.stdout.splitlines() if re.match(r"REGRESSED \S", line)] == [
        "REGRESSED beta inputs/beta-1.txt"
    ], res.stdout
    res = mv("compare", "--baseline", "profiling/baselines/memory.json", "results/memory/unchanged.json")
    assert res.returncode == 0 and "pass — 5 compared" in res.stdout, res.stdout + res.stderr


def test_missing_cases_are_reported_and_fail_unless_allowed_new_ones_are_reported(mv: Runner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    res = mv("profile", "-q", "-m", str(manifest), "--only", "alpha", "--only", "gamma", "-o", "r1.json")
    assert res.returncode == 0, res.stderr
    assert mv("baseline", "update", "r1.json", "-o", "base.json").returncode == 0
    assert set(read_json(tmp_path / "base.json")["cases"]) == {"alpha", "gamma"}
    res = mv("profile", "-q", "-m", str(manifest), "--only", "alpha", "--only", "beta", "-o", "r2.json")
    assert res.returncode == 0, res.stderr
    assert read_json(tmp_path / "r2.json")["only"] == ["alpha", "beta"]
    res = mv("baseline", "check", "base.json", "r2.json")
    assert res.returncode == 1
    assert "MISSING gamma inputs/c.txt peak: not in the results" in res.stdout
    new = [line for line in res.stdout.splitlines() if line.startswith("new ")]
    assert [line.split()[1:3] for line in new] == [["beta", "inputs/beta-1.txt"], ["beta", "inputs/beta-2.txt"]]
    res = mv("baseline", "check", "--allow-missing", "base.json", "r2.json")
    assert res.returncode == 0 and "missing" in res.stdout and "gamma" in res.stdout
    # updating merges: gamma is kept (and said so) unless --prune
    res = mv("baseline", "update", "r2.json", "-o", "base.json")
    assert res.returncode == 0 and "kept gamma" in res.stderr
    assert set(read_json(tmp_path / "base.json")["cases"]) == {"alpha", "beta", "gamma"}
    assert mv("baseline", "update", "r2.json", "-o", "base.json", "--prune").returncode == 0
    assert set(read_json(tmp_path / "base.json")["cases"]) == {"alpha", "beta"}


def test_repeat_records_min_median_max_and_uses_the_median(mv: Runner, tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        extra=f"""
[[case]]
name = "noinput"
command = [{json.dumps(PY)}, "-c", "import random; x = bytearray(random.choice([10, 30, 50]) * 2**20)"]
""",
    )
    res = mv("profile", "-m", str(manifest), "--only", "noinput", "--repeat", "5", "-o", "r.json")
    assert res.returncode == 0, res.stderr
    (r,) = read_json(tmp_path / "r.json")["records"]
    assert r["input"] is None and r["case"] == "noinput"
    spread = r["repeat"]["peak_rss_bytes"]
    values = spread["values"]
    assert r["repeat"]["n"] == 5 and len(values) == 5 and len(r["session_ids"]) == 5
    assert spread["min"] == min(values) and spread["max"] == max(values)
    assert r["peak_rss_bytes"] == spread["median"] == sorted(values)[2]
    assert r["session_id"] in r["session_ids"]
    assert "over 5)" in res.stderr


def test_a_failing_case_is_recorded_fails_the_run_and_the_check(mv: Runner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    assert mv("profile", "-q", "-m", str(manifest), "--only", "alpha", "-o", "r1.json").returncode == 0
    assert mv("baseline", "update", "r1.json", "-o", "base.json").returncode == 0
    (tmp_path / "inputs/b.txt").write_text("30 3\n")  # the command now exits 3
    res = mv("profile", "-m", str(manifest), "--only", "alpha", "-o", "r2.json")
    assert res.returncode == 1
    assert "[2/2] alpha · inputs/b.txt  FAILED (exit 3)" in res.stderr and "1 failed: alpha inputs/b.txt" in res.stderr
    rec = read_json(tmp_path / "r2.json")["records"][1]
    assert rec["ok"] is False and rec["exit_code"] == 3
    res = mv("baseline", "check", "base.json", "r2.json")
    assert res.returncode == 1 and "FAILED alpha inputs/b.txt peak: the run failed: exit code 3" in res.stdout
    res = mv("baseline", "update", "r2.json", "-o", "base.json")
    assert res.returncode == 2 and "failed runs" in res.stderr


def test_a_case_past_its_timeout_is_killed_and_failed(mv: Runner, tmp_path: Path) -> None:
    hold = str(WORKLOADS / "hold.py")
    manifest = write_manifest(
        tmp_path,
        extra=f"""
[[case]]
name = "hang"
command = [{json.dumps(PY)}, {json.dumps(hold)}, "15", "60"]
timeout = "1s"
""",
    )
    res = mv("profile", "-m", str(manifest), "--only", "hang", "-o", "r.json", timeout=30)
    assert res.returncode == 1, res.stderr
    (r,) = read_json(tmp_path / "r.json")["records"]
    assert r["timed_out"] and not r["ok"] and r["signal"] == 9
    assert 1.0 <= r["wall_s"] < 5 and r["peak_rss_bytes"] > 15 * MiB
    assert "FAILED (timed out)" in res.stderr and "ready" in res.stderr  # the log's tail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[[case]\nname = 'x'", "invalid TOML"),
        ("[[case]]\nname = 'x'\ncomand = ['true']", "unknown key 'comand' (did you mean 'command'?)"),
        ("[[cases]]\nname = 'x'", "unknown key 'cases' (did you mean 'case'?)"),
        ("[[case]]\nname = 'x'\ncommand = ['cat', '{input}']\ninputs = 'nothing/*.pdf'", "matches no file"),
        ("[[case]]\nname = 'x'\ncommand = ['cat']\ninputs = ['m.toml']", "has no {input} placeholder"),
        ("[[case]]\nname = 'x'\ncommand = 'cat \"{input}'\ninputs = ['m.toml']", "cannot split the command string"),
        ("[[case]]\nname = 'x'\ncommand = ['true']\ninterval = 'soon'", "not a duration: 'soon'"),
        ("[[case]]\nname = 'x'\ncommand = ['true']\ntolerance = '+ten%'", "not a tolerance"),
        (
            "[[case]]\nname = 'x'\ncommand = ['true']\n[[case]]\nname = 'x'\ncommand = ['true']",
            "two cases are named 'x'",
        ),
        ("title = 'no cases'", "unknown key 'title'"),
    ],
)
def test_malformed_manifests_exit_2_with_one_clear_line(mv: Runner, tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "m.toml").write_text(body)
    res = mv("profile", "-m", "m.toml", "-o", "r.json")
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and res.stderr.startswith("memview: m.toml") and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_unknown_only_names_and_missing_manifests_exit_2(mv: Runner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    res = mv("profile", "-m", str(manifest), "--only", "delta")
    assert res.returncode == 2 and "no case named 'delta' (cases: alpha, beta, gamma)" in res.stderr
    res = mv("profile", "-m", "nowhere.toml")
    assert res.returncode == 2 and res.stderr.strip() == "memview: manifest not found: nowhere.toml"


def test_malformed_baselines_and_results_exit_2(mv: Runner, tmp_path: Path) -> None:
    good = {
        "format": "memview-profile-results",
        "version": 1,
        "records": [{"case": "a", "input": "x", "ok": True, "exit_code": 0, "peak_rss_bytes": 10 * MiB}],
    }
    (tmp_path / "r.json").write_text(json.dumps(good))
    assert mv("baseline", "update", "r.json", "-o", "base.json").returncode == 0
    cases = {
        "notjson.json": ("{not json", "is not valid JSON"),
        "other.json": (json.dumps({"hello": 1}), "is not a memview baseline"),
        "badtol.json": (
            json.dumps(
                {
                    "format": "memview-baseline",
                    "version": 1,
                    "cases": {"a": {"x": {"peak_rss_bytes": 1, "tolerance": "lots"}}},
                }
            ),
            "cases['a']['x'].tolerance: not a tolerance",
        ),
        "badpeak.json": (
            json.dumps({"format": "memview-baseline", "version": 1, "cases": {"a": {"x": {"peak_rss_bytes": "12MB"}}}}),
            "peak_rss_bytes must be a number of bytes",
        ),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        res = mv("baseline", "check", name, "r.json")
        assert res.returncode == 2 and message in res.stderr, (name, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = mv("baseline", "check", "base.json", "base.json")  # a baseline given as results
    assert res.returncode == 2 and "is not a memview profile results file" in res.stderr
    res = mv("baseline", "check", "base.json", "nothere.json")
    assert res.returncode == 2 and "results file not found: nothere.json" in res.stderr
    before = (tmp_path / "base.json").read_text()
    res = mv("baseline", "update", "r.json", "-o", "base.json", "--tolerance", "+5 parsecs")
    assert res.returncode == 2 and "not a tolerance" in res.stderr
    assert (tmp_path / "base.json").read_text() == before  # nothing lost


def test_child_output_goes_to_the_log_not_the_terminal(mv: Runner, tmp_path: Path, db_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        extra=f"""
[[case]]
name = "chatty"
command = [{json.dumps(PY)}, "-c", "import sys,time; print('to stdout'); sys.stderr.write('to stderr'); time.sleep(.5)"]
env = {{ MEMVIEW_TEST_MARK = "x" }}
thresholds = "1MB"
captures = ["none"]
""",
    )
    res = mv("profile", "-m", str(manifest), "--only", "chatty", "-o", "r.json")
    assert res.returncode == 0 and "to stdout" not in res.stdout + res.stderr
    (r,) = read_json(tmp_path / "r.json")["records"]
    # the manifest's rule is armed like --threshold: the interpreter alone crosses 1 MB, one firing
    assert r["thresholds"] == ["1MB"] and r["captures_requested"] == ["none"]
    fired = [e for e in Store(db_path).events(r["session_id"]) if e["kind"] == "trigger"]
    assert len(fired) == 1 and "1MB" in fired[0]["message"], fired
    log = Path(r["logs"][0]).read_text()
    assert "to stdout" in log and "to stderr" in log
    assert os.path.dirname(r["logs"][0]).endswith(f"session-{r['session_id']}")


def test_ctrl_c_stops_the_batch_and_keeps_what_completed(db_path: Path, tmp_path: Path) -> None:
    import signal

    hold = str(WORKLOADS / "hold.py")
    manifest = write_manifest(
        tmp_path,
        extra=f"""
[[case]]
name = "hang"
command = [{json.dumps(PY)}, {json.dumps(hold)}, "15", "60"]
""",
    )
    env = {**os.environ, "MEMVIEW_DB": str(db_path)}
    proc = subprocess.Popen(
        [PY, "-m", "memview", "profile", "-m", str(manifest), "--only", "gamma", "--only", "hang", "-o", "r.json"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # its own process group, as a terminal's foreground job
    assert proc.stderr.readline().startswith("memview profile:")
    assert proc.stderr.readline().startswith("[1/2] gamma")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets it
    rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == 130, rest
    doc = read_json(tmp_path / "r.json")
    assert doc["interrupted"] is True and [r["case"] for r in doc["records"]] == ["gamma"]
    assert "interrupted" in rest and "Traceback" not in rest
    assert all(s["status"] != "running" for s in Store(db_path).sessions())
