"""Case 5, plot: the live view's redraw time and the UI thread's longest stall.

The GUI's own benchmark, ``benchmarks/bench_plot.py``, is written with the GUI: its ``main()``
returns a dict of figures (and takes ``smoke=`` if it supports a short run). It runs in a fresh
interpreter here, offscreen, so Qt never loads into the runner and a crash in it is contained.
Figures whose names mention a 1M redraw or a stall are checked against the issue's goals.
"""

from __future__ import annotations

import json
import os
import subprocess

from benchmarks.context import Context
from benchmarks.measure import BENCH, PY, CaseResult, env

MARK = "@@bench_plot@@"
_CALL = (
    "import inspect, json, sys\n"
    "from benchmarks import bench_plot\n"
    "kw = {'smoke': True} if sys.argv[1] == '1' and 'smoke' in inspect.signature(bench_plot.main).parameters else {}\n"
    "figures = bench_plot.main(**kw)\n"
    f"print({MARK!r} + json.dumps(figures, default=str))\n"
)


def _goal(name: str, value: object) -> tuple[str, bool | None]:
    low = name.lower()
    if not isinstance(value, (int, float)):
        return "", None
    if low.startswith("day_") and ("frame" in low or "open_ui" in low):
        return "< 200 ms", value < 200
    if low == "day_peak_rss_mib":
        return "< 500 MiB", value < 500
    if "stall" in low:
        return "≤ 50 ms", value <= 50
    if "redraw" in low and ("1m" in low or "1000000" in low or "1_000_000" in low):
        return "≤ 16 ms median", value <= 16
    return "", None


def run(ctx: Context) -> CaseResult:
    result = CaseResult("plot")
    if not (BENCH / "bench_plot.py").exists():
        result.add("plot", "not run: GUI not merged yet", note="benchmarks/bench_plot.py is written with the GUI")
        return result
    res = subprocess.run(
        [PY, "-c", _CALL, "1" if ctx.smoke else "0"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env(QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen")),
    )
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(MARK)]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"bench_plot failed (exit {res.returncode}): {res.stderr.strip()[-500:]}")
    figures = json.loads(lines[-1][len(MARK) :])
    result.details["figures"] = figures
    for name, value in figures.items() if isinstance(figures, dict) else []:
        goal, met = _goal(name, value)
        result.add(name, round(value, 3) if isinstance(value, float) else value, goal=goal, met=met)
    return result
