"""Case, memory: memview's own memory while it records at 1 kHz (issue 17 item 14).

A real ``memview run --interval 1ms`` of a sleeping child; memview's anonymous memory
(``RssAnon``) is read when the database holds N stored samples (after a warm-up: the writer's
256 KiB SQLite page cache fills in the first ~40k samples) and again after M more. The figure is
bytes per sample; × 86.4 million is a day at 1 kHz.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.context import Context
from benchmarks.measure import CaseResult

ROOT = Path(__file__).resolve().parent.parent


def _anon_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("SELECT coalesce(sum(n), 0) FROM samples WHERE series = 'rss'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _until(db: Path, n: int, proc: subprocess.Popen[bytes]) -> int:
    while (got := _stored(db)) < n:
        if proc.poll() is not None:
            raise RuntimeError("memview ended early")
        time.sleep(0.5)
    return got


def run(ctx: Context) -> CaseResult:
    result = CaseResult("memory")
    # the writer's 256 KiB page cache fills during the first ~40k samples: the window starts after it
    warm, span = (10_000, 20_000) if ctx.smoke else (60_000, 120_000)
    db = ctx.db("memory-1khz")
    env = {**os.environ, "MEMVIEW_DB": str(db), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memview",
            "run",
            "-q",
            "--interval",
            "1ms",
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(100000)",
        ],
        env=env,
    )
    try:
        n0 = _until(db, warm, proc)
        a0 = _anon_kib(proc.pid)
        n1 = _until(db, n0 + span, proc)
        a1 = _anon_kib(proc.pid)
    finally:
        import psutil

        for child in psutil.Process(proc.pid).children():
            child.kill()
        proc.wait(60)
    per = (a1 - a0) * 1024 / (n1 - n0)
    result.add(
        "memview's own memory growth, 1 kHz",
        round(per, 2),
        "B/sample",
        "≤ 1 B/sample",
        None if ctx.smoke else per <= 1,
        ("smoke: inside the page-cache warm-up, not judged; " if ctx.smoke else "")
        + f"RssAnon {a0} -> {a1} KiB over {n1 - n0:,} samples after {n0:,}; a day at 1 kHz: "
        f"{per * 86.4e6 / 2**20:.0f} MiB",
    )
    result.details.update({"anon_kib": [a0, a1], "samples": [n0, n1]})
    return result
