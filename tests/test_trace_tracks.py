"""trace.json of a worker pool: one track per announcing process, checked by a strict Trace Event
Format checker (issue 16 item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from collections import defaultdict

from support import PY, read_json, workload

from memview.chrome_trace import _nested

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
PHASES = {"M", "C", "X", "i"}


def check_trace_event_format(doc: dict) -> None:
    """The JSON Object Format of the Trace Event Format, strictly: required keys and types per phase
    type, metadata names, monotonic timestamps, and complete events that nest per (pid, tid)."""
    assert set(doc) >= {"traceEvents"} and isinstance(doc["traceEvents"], list)
    assert doc.get("displayTimeUnit") in (None, "ms", "ns")
    named_threads, named_procs = set(), set()
    last_ts = -1
    per_thread: dict[tuple[int, int], list[tuple[int, int, str]]] = defaultdict(list)
    for e in doc["traceEvents"]:
        assert e["ph"] in PHASES, e
        assert isinstance(e["name"], str) and e["name"], e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name"), e
            assert isinstance(e["args"]["name"], str) and e["args"]["name"], e
            (named_procs if e["name"] == "process_name" else named_threads).add(
                e["pid"] if e["name"] == "process_name" else (e["pid"], e["tid"])
            )
            continue
        assert isinstance(e["ts"], int) and e["ts"] >= 0, e
        assert e["ts"] >= last_ts, "timestamps must not go backwards"
        last_ts = e["ts"]
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 0, e
            per_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"], e["name"]))
        elif e["ph"] == "C":
            assert e["args"] and all(isinstance(v, (int, float)) for v in e["args"].values()), e
        elif e["ph"] == "i":
            assert e["s"] in ("g", "p", "t"), e
    for (pid, tid), slices in per_thread.items():
        assert pid in named_procs and (pid, tid) in named_threads, (pid, tid)
        stack: list[tuple[int, int, str]] = []
        for start, end, name in slices:  # in file order: sorted by start, outer first
            while stack and start >= stack[-1][1]:
                stack.pop()
            if stack:
                assert end <= stack[-1][1], f"{name} [{start}, {end}] overlaps {stack[-1]} on {pid}/{tid}"
            stack.append((start, end, name))


def test_a_pool_with_phases_per_worker_gets_one_nested_track_per_worker(db_path, tmp_path):
    env = {**os.environ, "MEMVIEW_DB": str(db_path), "PYTHONPATH": str(ROOT)}
    truth_path, out, bundle = tmp_path / "truth.json", tmp_path / "out.json", tmp_path / "pool.memview.zip"
    res = subprocess.run(
        [PY, "-m", "memview", "run", "-q", "--json", str(out), "--", *workload("pool_phases.py", truth_path, 3)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    truth = read_json(truth_path)
    workers = set(truth["worker_pids"])
    # the workers share the inherited channel: each got memview's answer to each of its boundaries
    assert truth["missed"] == 0 and truth["sync_on"], truth
    assert {p["pid"] for p in summary["phases"]} == workers
    res = subprocess.run(
        [PY, "-m", "memview", "export", str(summary["session_id"]), "-o", str(bundle)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(zipfile.ZipFile(bundle).read("trace.json"))
    check_trace_event_format(doc)
    slices = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {(e["pid"], e["tid"]) for e in slices} == {(w, w) for w in workers}  # one track per worker
    assert len(slices) == 12
    names = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    assert all(f"({w})" in names[w] for w in workers)
    for w in workers:  # on each track: task, with alloc inside it, as often as the pool gave it a task
        mine = [(e["name"], e["ts"], e["ts"] + e["dur"]) for e in slices if e["pid"] == w]
        assert mine and [m[0] for m in mine] == ["task", "alloc"] * (len(mine) // 2)
        for task, alloc in zip(mine[::2], mine[1::2]):
            assert task[1] <= alloc[1] and alloc[2] <= task[2]


def test_overlapping_slices_of_one_track_are_clipped_to_nest():
    """Two clocks (the log's, memview's) can make a child end a few µs after its parent."""
    out = _nested([(0, 100, {"n": "outer"}), (10, 105, {"n": "inner"}), (100, 150, {"n": "next"})])
    assert [(s, d, b["n"]) for s, d, b in out] == [(0, 100, "outer"), (10, 90, "inner"), (100, 50, "next")]
