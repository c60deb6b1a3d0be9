"""Figures for the captures feature: crossing -> capture start, capture durations, artefact sizes,
and what a capture costs the target.

Usage: python benchmarks/capture_figures.py [RUNS]         (default 3; needs py-spy, heaptrack+gdb, node, gcc)
       python benchmarks/capture_figures.py --cost [RUNS]  (memray, py-spy on a Python target)

Runs the real ``memview run`` on the test workloads, once per capture kind per run, into a
temporary database, and prints one line per capture kind with min/median/max figures.

``--cost``: ``tests/workloads/steady_alloc.py`` churns small objects, logs its pace every 0.1 s
and steps up by 32 MiB after 6 s (past memview's own start-up work), where a threshold fires and
the tool records 4 s. The slowdown is the pace inside the recording window against the pace in
the 2.5 s before the crossing (same process; the machine's other load is not controlled, so take
the median);
attach latency is the tool's own (memray ``attach_s``); file size per
second is the capture's files over its recording window.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
W = ROOT / "tests" / "workloads"
PY = sys.executable


def memview(db: Path, out: Path, *args: str) -> dict:
    env = {**os.environ, "MEMVIEW_DB": str(db), "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [PY, "-m", "memview", "run", "-q", "--json", str(out), *args],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    return json.loads(out.read_text())


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tmp = Path(tempfile.mkdtemp(prefix="memview-figures-"))
    exe = tmp / "grow_buffers"
    subprocess.run(["gcc", "-O1", "-g", "-o", str(exe), str(W / "grow_buffers.c")], check=True)
    node = shutil.which("node") or "node"
    cases = {
        "py-spy-dump": ["--threshold", "60MB", "--capture", "py-spy-dump", "--", PY, str(W / "grow.py"), "2"],
        "py-spy-record 1s": [
            "--threshold",
            "60MB",
            "--capture",
            "py-spy-record",
            "--capture-duration",
            "1s",
            "--",
            PY,
            str(W / "grow.py"),
            "2.5",
        ],
        "heaptrack attach 1s": [
            "--threshold",
            "20MB",
            "--capture",
            "heaptrack",
            "--capture-duration",
            "1s",
            "--",
            str(exe),
            "300",
        ],
        "node signal": [
            "--threshold",
            "80MB",
            "--capture",
            "node-heap-snapshot",
            "--",
            node,
            "--heapsnapshot-signal=SIGUSR2",
            str(W / "grow.js"),
            "3",
        ],
        "node inspector": [
            "--threshold",
            "80MB",
            "--capture",
            "node-heap-snapshot",
            "--",
            node,
            str(W / "grow.js"),
            "3",
        ],
        "heaptrack launch": ["--heaptrack", "--", str(exe), "50"],
    }
    rows: dict[str, list[tuple[float | None, float, int]]] = {k: [] for k in cases}
    for i in range(runs):
        for name, args in cases.items():
            summary = memview(tmp / f"m{i}.db", tmp / "out.json", *args)
            for cap in summary["captures"]:
                if cap["status"] != "ok":
                    print(f"  {name}: {cap['status']} {cap['stderr_tail'][-200:]}", file=sys.stderr)
                    continue
                crossed = cap["data"].get("crossed_s")
                latency = None if crossed is None else cap["started_s"] - crossed
                size = sum(f["size_bytes"] for f in cap["data"].get("files", []))
                rows[name].append((latency, cap["ended_s"] - cap["started_s"], size))

    def fmt(values: list[float], unit: str, scale: float = 1.0) -> str:
        if not values:
            return "-"
        v = sorted(x * scale for x in values)
        return f"{v[0]:.0f}/{statistics.median(v):.0f}/{v[-1]:.0f} {unit}"

    print(f"{'capture':22} {'crossing->start (min/med/max)':32} {'duration':24} artefacts (all files)")
    for name, got in rows.items():
        lat = [r[0] for r in got if r[0] is not None]
        print(
            f"{name:22} {fmt(lat, 'ms', 1000):32} {fmt([r[1] for r in got], 'ms', 1000):24} "
            f"{fmt([r[2] for r in got], 'KiB', 1 / 1024)}"
        )
    shutil.rmtree(tmp, ignore_errors=True)


def _pace(log: Path, start: float, end: float) -> float | None:
    """Rounds per second between two epoch times, from the workload's log."""
    points = [tuple(map(float, line.split())) for line in log.read_text().splitlines() if line.strip()]
    inside = [(t, n) for t, n in points if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def cost(runs: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="memview-cost-"))
    # heaptrack is left out here: on this busy Python target its gdb call of heaptrack_stop() hung
    # (memview's time limit then kills it); its cost on C programs is in the table above
    tools = {"memray": "attach_s", "py-spy-record": None}
    print(f"{'tool':14} {'attach (min/med/max)':24} {'pace in window / before':26} {'file bytes per s':18}")
    for tool, attach_key in tools.items():
        attach, ratio, rate = [], [], []
        for i in range(runs):
            log = tmp / f"{tool}-{i}.log"
            summary = memview(
                tmp / f"c{i}.db",
                tmp / "out.json",
                "--threshold",
                "30MB",
                "--capture",
                tool,
                "--capture-duration",
                "4s",
                "--",
                PY,
                str(W / "steady_alloc.py"),
                "18",
                str(log),
                "6",
            )
            caps = [c for c in summary["captures"] if c["status"] == "ok"]
            if not caps:
                print(f"  {tool}: no capture {[c['status'] for c in summary['captures']]}", file=sys.stderr)
                continue
            cap = caps[0]
            t0 = summary["started_at"]
            data = cap["data"]
            window_start = t0 + cap["started_s"] + ((data.get(attach_key) or 0.0) if attach_key else 0.0)
            window_end = window_start + (data.get("window_s") or data.get("recorded_s") or 4.0)
            if attach_key and data.get(attach_key) is not None:
                attach.append(data[attach_key])
            inside = _pace(log, window_start + 0.2, window_end - 0.2)
            crossed = t0 + (data.get("crossed_s") or cap["started_s"])
            before = _pace(log, crossed - 2.7, crossed - 0.2)
            if inside and before:
                ratio.append(inside / before)
            size = sum(f["size_bytes"] for f in data.get("files", []))
            seconds = data.get("window_s") or data.get("recorded_s") or (window_end - window_start)
            if seconds:
                rate.append(size / seconds)

        def fmt(values: list[float], spec: str) -> str:
            if not values:
                return "-"
            v = sorted(values)
            return "/".join(format(x, spec) for x in (v[0], statistics.median(v), v[-1]))

        print(
            f"{tool:14} {fmt([a * 1000 for a in attach], '.0f') + ' ms':24} {fmt(ratio, '.2f'):26} "
            f"{fmt([r / 1024 for r in rate], '.0f') + ' KiB/s':18}"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--cost":
        cost(int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    else:
        main()
