"""memview compare on real recorded sessions, bundles and summary files; phase matching rules."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import PY, read_json, workload

from memview.compare import (
    PhaseStat,
    change,
    changes,
    comparable_from_summary,
    compare,
    load_comparable,
    match_phases,
)
from memview.model import Phase
from memview.recorder import phase_row
from memview.store import Store, StoreWriter


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEMVIEW_DB": str(db)}
    return subprocess.run([PY, "-m", "memview", *args], capture_output=True, text=True, timeout=120, env=env)


def add_phases(store: Store, sid: int, phases: list[Phase]) -> None:
    writer = StoreWriter(store.path, sid)
    writer.start()
    for seq, ph in enumerate(phases):
        writer.insert("phases", phase_row(ph, seq))
    assert writer.close()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ "before" (60 MiB spikes) and "after" (110 MiB spikes), recorded for real, with phases."""
    base = tmp_path_factory.mktemp("compare")
    db = base / "c.db"
    out = {"db": db, "base": base}
    for label, size in (("before", 60), ("after", 110)):
        truth, summary = base / f"{label}-truth.json", base / f"{label}.json"
        res = cli(
            db,
            "run",
            "-q",
            "--interval",
            "0.01",
            "--name",
            label,
            "--json",
            str(summary),
            "--",
            *workload("spikes.py", truth, size, 2),
        )
        assert res.returncode == 0, res.stderr
        out[label] = read_json(summary)
        out[label + "_truth"] = read_json(truth)["hwm_bytes"]
        out[label + "_json"] = summary
    store = Store(db)
    add_phases(
        store,
        out["before"]["session_id"],
        [
            Phase("load", 0, 0.0, 0.2, peak_rss_bytes=50_000_000),
            Phase("parse", 0, 0.2, 0.3, peak_rss_bytes=60_000_000),
            Phase("parse", 0, 0.3, 0.5, peak_rss_bytes=80_000_000),
        ],
    )
    add_phases(
        store,
        out["after"]["session_id"],
        [
            Phase("load", 0, 0.0, 0.1, peak_rss_bytes=40_000_000),
            Phase("parse", 0, 0.1, 0.3, peak_rss_bytes=90_000_000),
            Phase("render", 0, 0.3, 0.35, peak_rss_bytes=95_000_000),
            Phase("parse", 0, 0.35, 0.6, peak_rss_bytes=120_000_000),
            Phase("parse", 0, 0.6, 0.7, peak_rss_bytes=100_000_000),
        ],
    )
    out["store"] = store
    return out


def test_compare_json_has_absolute_and_relative_changes(two_runs):
    a, b = two_runs["before"]["session_id"], two_runs["after"]["session_id"]
    res = cli(two_runs["db"], "compare", str(a), str(b), "--json")
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    store = two_runs["store"]
    sa, sb = store.session(a), store.session(b)
    assert [i["session_id"] for i in result["inputs"]] == [a, b]
    assert [i["name"] for i in result["inputs"]] == ["before", "after"]
    metrics = {m["key"]: m for m in result["metrics"]}
    assert list(metrics) == ["peak_rss_bytes", "avg_rss_bytes", "final_rss_bytes", "wall_s"]
    for key in metrics:
        va, vb = sa[key], sb[key]
        assert metrics[key]["values"] == [va, vb]
        assert metrics[key]["changes"][0] is None
        assert metrics[key]["changes"][1]["abs"] == pytest.approx(vb - va)
        # no relative change from 0 (a final RSS read after the process left is 0 on a loaded machine)
        assert metrics[key]["changes"][1]["rel"] == (pytest.approx((vb - va) / va) if va else None)
    # the peaks are the kernel's: the change is the workloads' real difference (~ +60 MiB)
    truth_change = two_runs["after_truth"] - two_runs["before_truth"]
    assert abs(metrics["peak_rss_bytes"]["changes"][1]["abs"] - truth_change) < 0.02 * two_runs["after_truth"]
    assert 40 * 2**20 < metrics["peak_rss_bytes"]["changes"][1]["abs"] < 80 * 2**20
    phases = [(p["label"], p["present"]) for p in result["phases"]]
    assert phases == [
        ("load", [True, True]),
        ("parse #1", [True, True]),
        ("render", [False, True]),
        ("parse #2", [True, True]),
        ("parse #3", [False, True]),
    ]
    parse2 = result["phases"][3]["figures"]
    peak = next(f for f in parse2 if f["key"] == "peak_rss_bytes")
    assert peak["values"] == [80_000_000, 120_000_000]
    assert peak["changes"][1] == {"abs": 40_000_000, "rel": 0.5}
    dur = next(f for f in parse2 if f["key"] == "duration_s")
    assert dur["values"] == pytest.approx([0.2, 0.25]) and dur["changes"][1]["rel"] == pytest.approx(0.25)
    render = next(f for f in result["phases"][2]["figures"] if f["key"] == "peak_rss_bytes")
    assert render["values"] == [None, 95_000_000] and render["changes"][1] == {"abs": None, "rel": None}


def test_compare_text_table(two_runs):
    a, b = two_runs["before"]["session_id"], two_runs["after"]["session_id"]
    res = cli(two_runs["db"], "compare", str(a), str(b))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"A = #{a} before") and lines[1].startswith(f"B = #{b} after")
    peak = next(line for line in lines if line.startswith("peak "))
    assert "(+" in peak and "%)" in peak
    render = next(line for line in lines if line.startswith("phase render: peak"))
    assert "(absent)" in render and "only in B" in render
    parse2 = next(line for line in lines if line.startswith("phase parse #2: peak"))
    assert "+38.1 MiB (+50.0%)" in parse2


def test_bundles_and_summary_files_compare_like_sessions(two_runs, tmp_path):
    db = two_runs["db"]
    a, b = two_runs["before"]["session_id"], two_runs["after"]["session_id"]
    bundle = tmp_path / "after.memview.zip"
    assert cli(db, "export", str(b), "-o", str(bundle)).returncode == 0
    by_id = json.loads(cli(db, "compare", str(a), str(b), "--json").stdout)
    mixed = cli(db, "compare", str(two_runs["before_json"]), str(bundle), str(a), "--json")
    assert mixed.returncode == 0, mixed.stderr
    result = json.loads(mixed.stdout)
    assert [i["label"] for i in result["inputs"]] == ["before.json", "after.memview.zip", f"#{a} before"]
    # the summary JSON written by `run --json` has no phases (they were added later), the bundle does
    assert result["metrics"][0]["values"][:2] == by_id["metrics"][0]["values"]
    assert result["metrics"][0]["changes"][1] == by_id["metrics"][0]["changes"][1]
    assert result["metrics"][0]["changes"][2] == {"abs": 0, "rel": 0.0}
    assert [p["present"][1] for p in result["phases"]] == [True] * 5


def test_compare_errors_are_one_line(two_runs, tmp_path):
    db = two_runs["db"]
    a = str(two_runs["before"]["session_id"])
    res = cli(db, "compare", a, "999")
    assert res.returncode == 1 and res.stderr.strip() == f"memview: no session 999 in {db}"
    res = cli(db, "compare", a, str(tmp_path / "missing.zip"))
    assert res.returncode == 1 and "no such session or file" in res.stderr
    junk = tmp_path / "junk.txt"
    junk.write_text("not json")
    res = cli(db, "compare", a, str(junk))
    assert res.returncode == 1 and "neither a memview bundle nor a summary JSON" in res.stderr
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: no manifest
    res = cli(db, "compare", a, str(fake))
    assert res.returncode == 1 and res.stderr.strip() == "memview: fake.zip: not a memview bundle (no manifest.json)"
    res = cli(db, "compare", a)
    assert res.returncode == 2 and "at least two" in res.stderr
    for r in (res,):
        assert "Traceback" not in r.stderr


def _stats(*names: str) -> list[PhaseStat]:
    return comparable_from_summary(
        {"phases": [{"name": n, "start_s": i, "end_s": i + 1, "peak_rss_bytes": i} for i, n in enumerate(names)]}
    ).phases


def test_match_phases_by_name_and_order():
    a = _stats("load", "parse", "parse", "save")
    b = _stats("load", "parse", "validate", "parse", "parse")
    matched = match_phases(a, b)
    assert [(m.label, [s is not None for s in m.stats]) for m in matched] == [
        ("load", [True, True]),
        ("parse #1", [True, True]),
        ("validate", [False, True]),
        ("parse #2", [True, True]),
        ("parse #3", [False, True]),
        ("save", [True, False]),
    ]
    # the 2nd parse pairs with the 2nd parse (by order), not with the first of that name
    parse2 = matched[3]
    assert parse2.stats[0].start_s == 2 and parse2.stats[1].start_s == 3
    # three inputs: the union, in the order they ran
    c = _stats("init", "load", "save")
    assert [m.label for m in match_phases(a, b, c)] == [
        "init",
        "load",
        "parse #1",
        "validate",
        "parse #2",
        "parse #3",
        "save",
    ]


def test_changes_is_the_reusable_core():
    a = comparable_from_summary(
        {
            "peak_rss_bytes": 100,
            "avg_rss_bytes": 0,
            "final_rss_bytes": None,
            "wall_s": 2.0,
            "phases": [{"name": "x", "start_s": 0, "end_s": 1, "peak_rss_bytes": 10}],
        },
        "a",
    )
    b = comparable_from_summary(
        {
            "peak_rss_bytes": 150,
            "avg_rss_bytes": 5,
            "final_rss_bytes": 7,
            "wall_s": 1.0,
            "phases": [{"name": "y", "start_s": 0, "end_s": 1, "peak_rss_bytes": 10}],
        },
        "b",
    )
    rows = {c.metric: c for c in changes(a, b)}
    assert (rows["peak_rss_bytes"].abs, rows["peak_rss_bytes"].rel) == (50, 0.5)
    assert rows["avg_rss_bytes"].rel is None  # no relative change from zero
    assert rows["final_rss_bytes"].abs is None
    assert rows["wall_s"].rel == -0.5
    assert rows["phase:x#0:peak_rss_bytes"].present == "a" and rows["phase:y#0:peak_rss_bytes"].present == "b"
    assert change(None, 3) == (None, None) and change(4, 3) == (-1, -0.25)
    with pytest.raises(Exception, match="at least two"):
        compare([a])


def test_load_comparable_reads_a_store(two_runs):
    rec = load_comparable(str(two_runs["after"]["session_id"]), two_runs["store"])
    assert rec.peak_rss_bytes == two_runs["after"]["peak_rss_bytes"] and rec.name == "after"
    assert len(rec.phases) == 5 and rec.phases[4].occurrence == 2


def test_only_the_phase_whose_own_use_grew_is_flagged(tmp_path):
    """Issue 16 item 3, on real runs: only the worker's ``extract`` keeps more (45 -> 130 MiB); the later
    ``chunk`` phase's absolute peak rises with it, but its own use does not: compare and baseline check
    name extract alone."""
    from memview.baseline import check as baseline_check
    from memview.baseline import update
    from memview.profile import record_from_summary, results_document

    db = tmp_path / "own.db"
    summaries = []
    for label, extract in (("before", 45), ("after", 130)):
        out = tmp_path / f"{label}.json"
        res = cli(
            db,
            "run",
            "-q",
            "--name",
            label,
            "--json",
            str(out),
            "--",
            *workload("harness_worker.py", tmp_path / f"{label}-truth.json", extract),
        )
        assert res.returncode == 0, res.stderr
        summaries.append(read_json(out))
    a, b = (str(s["session_id"]) for s in summaries)
    result = json.loads(cli(db, "compare", a, b, "--json").stdout)
    assert {(r["phase"], r["figure"]) for r in result["regressions"]} == {
        ("extract", "footprint_bytes"),
        ("extract", "growth_bytes"),
    }
    chunk = next(p for p in result["phases"] if p["name"] == "chunk")
    peak = next(f for f in chunk["figures"] if f["key"] == "peak_rss_bytes")
    assert peak["changes"][1]["abs"] > 80 * 2**20  # what the old absolute-peak rule blamed on chunk
    assert chunk["pids"][0] == next(p["pid"] for p in summaries[0]["phases"] if p["name"] == "chunk")
    text = cli(db, "compare", a, b).stdout
    verdicts = [line for line in text.splitlines() if line.startswith("REGRESSED")]
    assert len(verdicts) == 2 and all(line.startswith("REGRESSED phase extract (B)") for line in verdicts), text
    assert any(line.startswith("phase chunk: footprint") for line in text.splitlines())
    # the same two runs through a baseline: extract alone (and the session's total peak) regress
    base, _ = update(results_document([record_from_summary(summaries[0], "doc", "a.pdf")], meta={}))
    report, code = baseline_check(base, results_document([record_from_summary(summaries[1], "doc", "a.pdf")], meta={}))
    assert code == 1
    flagged = [line.split(":")[0] for line in report.splitlines() if line.startswith("REGRESSED doc")]
    assert flagged == [
        "REGRESSED doc a.pdf peak",
        "REGRESSED doc a.pdf phase extract footprint",
        "REGRESSED doc a.pdf phase extract growth",
    ], report
