"""Case 6, start-up: ``memview --help`` wall time (no Qt imported), and launch → first sample.

``memview --help`` is timed as ``python -m memview --help`` with this checkout on the path, next
to a bare ``python -c pass`` measured the same way: the difference is memview's own share, the
rest is the interpreter and its site packages on this machine. Imports are checked with
``python -X importtime``. Launch → first sample runs in a fresh interpreter
(:mod:`benchmarks.first_sample`); "command → first sample" adds the interpreter, imports and
opening the database, from spawning ``memview run`` to the first sample of its child.
"""

from __future__ import annotations

import json
import subprocess
import time

from benchmarks.context import Context
from benchmarks.measure import PY, CaseResult, Proc, env, median, memview_argv

HEAVY = ("PySide6", "pyqtgraph", "shiboken6", "sqlite_utils", "numpy")


def _wall(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def imported(argv: list[str]) -> set[str]:
    """Top-level packages a command imports, from ``-X importtime``."""
    res = subprocess.run([PY, "-X", "importtime", *argv[1:]], env=env(), capture_output=True, text=True)
    names = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def run(ctx: Context) -> CaseResult:
    from memview.store import Store

    result = CaseResult("startup")
    reps = 3 if ctx.smoke else 15
    help_argv = memview_argv("--help")
    base, help_ = [], []
    for _ in range(reps):  # interleaved: both see the same machine
        base.append(_wall([PY, "-c", "pass"]))
        help_.append(_wall(help_argv))
    ms, base_ms = median(help_) * 1000, median(base) * 1000
    result.add(
        "memview --help, wall",
        round(ms, 1),
        "ms",
        "≤ 150 ms",
        ms <= 150,
        f"python -c pass alone: {base_ms:.1f} ms, so memview's share is {ms - base_ms:.1f} ms",
    )
    mods = imported(help_argv)
    heavy = sorted(m for m in HEAVY if m in mods)
    result.add(
        "memview --help imports Qt",
        "yes" if {"PySide6", "pyqtgraph"} & mods else "no",
        "",
        "no",
        not ({"PySide6", "pyqtgraph"} & mods),
        f"heavy packages imported: {', '.join(heavy) or 'none'}",
    )
    db = ctx.db("startup")
    run_mods = imported(memview_argv("run", "-q", "--db", db, "--", "true"))
    heavy_run = sorted(m for m in HEAVY if m in run_mods)
    result.add(
        "memview run imports (existing database)",
        ", ".join(heavy_run) or "none of " + "/".join(HEAVY),
        note="sqlite_utils is needed only to create or migrate a database",
    )
    cost = [
        Proc([PY, "-c", "import sqlite_utils"]).finish().cpu_s - Proc([PY, "-c", "pass"]).finish().cpu_s
        for _ in range(1 if ctx.smoke else 3)
    ]
    result.add("CPU of importing sqlite_utils", round(median(cost), 3), "s", note="kept off every path but migrations")

    out = subprocess.run(
        [PY, "-m", "benchmarks.first_sample", str(db), str(5 if ctx.smoke else 15)],
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    )
    first = json.loads(out.stdout)
    lat = median([f["launch_to_first_sample_s"] for f in first]) * 1000
    result.add(
        "launch → first sample of the child",
        round(lat, 2),
        "ms",
        "≤ 5 ms",
        lat <= 5,
        f"launch → recorder ready {median([f['launch_to_recorder_s'] for f in first]) * 1000:.2f} ms, "
        f"recorder → first sample {median([f['recorder_to_first_sample_s'] for f in first]) * 1000:.2f} ms; "
        f"worst {max(f['launch_to_first_sample_s'] for f in first) * 1000:.1f} ms",
    )
    e2e = []
    for _ in range(3 if ctx.smoke else 7):
        before = time.time()
        Proc(memview_argv("run", "-q", "--db", db, "--", "sleep", "0.1")).finish()
        store = Store(db)
        s = store.sessions(limit=1)[0]
        times, _ = store.load_series(s["id"])
        store.close()
        e2e.append(s["started_at"] + times[0] - before)
    result.add(
        "memview run command → first sample",
        round(median(e2e) * 1000, 1),
        "ms",
        note="interpreter + imports + opening the database + launch; no goal",
    )
    result.details.update(
        {
            "help_s": help_,
            "python_pass_s": base,
            "first_sample": first,
            "command_to_first_s": e2e,
            "help_imports": sorted(mods),
            "run_imports": sorted(run_mods),
        }
    )
    return result
