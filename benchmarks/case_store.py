"""Case 4, store: ingest through the real StoreWriter, bytes on disk per sample, loading for display.

The samples are synthetic but shaped like a real recording (seeded): times on a 1 kHz grid with
a few tens of µs of jitter and an occasional late sample, an RSS that mostly holds still and
moves by whole pages, with now and then a large step. They are written as the sampler hands them
on: one batch per flush (0.25 s), so 250-sample chunks at 1 kHz and 25-sample chunks at 100 Hz.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from benchmarks.context import Context
from benchmarks.measure import CaseResult, median, timed

PAGE = 4096


def synthetic(n: int, hz: float, seed: int = 11) -> tuple[list[float], list[int]]:
    rnd = random.Random(seed)
    times, values = [], []
    rss = 200 * 2**20
    dt = 1 / hz
    for i in range(n):
        jitter = rnd.gauss(0, 20e-6)
        if rnd.random() < 0.001:
            jitter += rnd.uniform(0.5, 3) * dt  # a late wake-up
        times.append(max(i * dt + jitter, 0.0))
        r = rnd.random()
        if r < 0.05:
            rss += rnd.randint(-64, 256) * PAGE
        elif r < 0.0502:
            rss += rnd.choice((-1, 1)) * rnd.randint(1, 100) * 2**20
        rss = max(rss, 10 * 2**20)
        values.append(rss)
    return sorted(times), values


def _db_bytes(path: Path) -> int:
    from memview.store import connect

    conn = connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return os.path.getsize(path)


def ingest(path: Path, times: list[float], values: list[int], chunk: int) -> tuple[int, float, int]:
    """(session id, seconds from the first batch to everything committed, bytes added to the file)."""
    from memview.model import Batch
    from memview.store import Store, StoreWriter

    store = Store(path)
    sid = store.create_session(kind="run", target="bench", started_at=time.time(), interval_s=0.001)
    store.close()
    before = _db_bytes(path)
    batches = [Batch(sid, {"rss": (times[i : i + chunk], values[i : i + chunk])}) for i in range(0, len(times), chunk)]
    writer = StoreWriter(path, sid)
    writer.start()
    t = time.perf_counter()
    for b in batches:
        writer.write_batch(b)
    if not writer.close(timeout=120):
        raise RuntimeError(f"the writer did not finish: {writer.error}")
    seconds = time.perf_counter() - t
    return sid, seconds, _db_bytes(path) - before


def run(ctx: Context) -> CaseResult:
    from memview.store import Store

    result = CaseResult("store")
    n = 100_000 if ctx.smoke else 1_000_000
    times, values = synthetic(n, 1000)
    runs = []
    for _ in range(ctx.reps):
        path = ctx.db("store-1khz")
        sid, secs, size = ingest(path, times, values, 250)
        runs.append({"seconds": secs, "bytes": size, "db": path, "sid": sid})
    rate = median([n / r["seconds"] for r in runs])
    result.add(
        "ingest, 250-sample batches (1 kHz)",
        round(rate),
        "samples/s",
        "≥ 200k samples/s",
        rate >= 200_000,
        f"{n:,} samples; per run " + ", ".join(f"{n / r['seconds'] / 1000:.0f}k" for r in runs),
    )
    per = runs[0]["bytes"] / n
    result.add(
        "database bytes per sample, 1 kHz",
        round(per, 2),
        "B",
        "≤ 24 B",
        per <= 24,
        f"{runs[0]['bytes']:,} bytes for {n:,} samples, after a WAL checkpoint",
    )
    n100 = n // 10
    t100, v100 = synthetic(n100, 100)
    _, secs100, size100 = ingest(ctx.db("store-100hz"), t100, v100, 25)
    per100 = size100 / n100
    result.add(
        "database bytes per sample, 100 Hz",
        round(per100, 2),
        "B",
        "≤ 24 B",
        per100 <= 24,
        f"25-sample batches; ingest {n100 / secs100 / 1000:.0f}k samples/s",
    )
    store = Store(runs[0]["db"])
    sid = runs[0]["sid"]
    got: list[list[int]] = []
    loads = timed(lambda: got.append(store.load_series(sid)[1]), 1 if ctx.smoke else 5)
    store.close()
    if got[-1] != values:
        raise RuntimeError("the loaded series differs from what was written")
    ms = median(loads) * 1000
    result.add(
        f"load a {n:,}-sample series",
        round(ms, 1),
        "ms",
        "≤ 300 ms (1M)",
        ms <= 300,
        f"Store.load_series, lists of floats and ints; first {loads[0] * 1000:.0f} ms",
    )
    result.details.update(
        {"samples": n, "runs": [{k: v for k, v in r.items() if k != "db"} for r in runs], "load_s": loads}
    )
    return result
