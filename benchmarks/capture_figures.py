"""Figures for the captures feature: crossing -> capture start, capture durations, artefact sizes.

Usage: python benchmarks/capture_figures.py [RUNS]   (default 3; needs py-spy, heaptrack+gdb, node, gcc)

Runs the real ``memview run`` on the test workloads, once per capture kind per run, into a
temporary database, and prints one line per capture kind with min/median/max figures.
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
    subprocess.run([PY, "-m", "memview", "run", "-q", "--json", str(out), *args], env=env, check=False,
                   stdout=subprocess.DEVNULL, timeout=120)
    return json.loads(out.read_text())


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tmp = Path(tempfile.mkdtemp(prefix="memview-figures-"))
    exe = tmp / "grow_buffers"
    subprocess.run(["gcc", "-O1", "-g", "-o", str(exe), str(W / "grow_buffers.c")], check=True)
    node = shutil.which("node") or "node"
    cases = {
        "py-spy-dump": ["--threshold", "60MB", "--capture", "py-spy-dump", "--", PY, str(W / "grow.py"), "2"],
        "py-spy-record 1s": ["--threshold", "60MB", "--capture", "py-spy-record", "--capture-duration", "1s",
                             "--", PY, str(W / "grow.py"), "2.5"],
        "heaptrack attach 1s": ["--threshold", "20MB", "--capture", "heaptrack", "--capture-duration", "1s",
                                "--", str(exe), "300"],
        "node signal": ["--threshold", "80MB", "--capture", "node-heap-snapshot", "--", node,
                        "--heapsnapshot-signal=SIGUSR2", str(W / "grow.js"), "3"],
        "node inspector": ["--threshold", "80MB", "--capture", "node-heap-snapshot", "--", node,
                           str(W / "grow.js"), "3"],
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
        print(f"{name:22} {fmt(lat, 'ms', 1000):32} {fmt([r[1] for r in got], 'ms', 1000):24} "
              f"{fmt([r[2] for r in got], 'KiB', 1 / 1024)}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
