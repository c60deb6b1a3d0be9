"""The store writer's CPU for a tree: 51 series (the total and 50 processes) at 100 Hz, in process.

Feeds the writer what the recorder hands it (one batch every 0.25 s of 25 samples per series) as
fast as it takes them and reads the CPU time of the writer thread and of the caller. Per second of
recording, so it reads as "% of a core" directly; then the sampler's cost of turning readings into
columns per flush. ``python -m benchmarks.writer_tree [seconds]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
import timeit
from pathlib import Path

from memview.model import Batch, proc_series
from memview.store import Store, StoreWriter


def measure(seconds: int = 120, procs: int = 50, rate: int = 100, flush: float = 0.25) -> dict[str, float]:
    """CPU seconds per recorded second spent by the writer thread and by the submitting thread."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "w.db")
        sid = store.create_session(kind="bench")
        writer = StoreWriter(store.path, sid)
        writer.start()
        per_batch = round(rate * flush)
        base = [100_000_000 + 4096 * i for i in range(procs)]
        t = 0.0
        submit_cpu = 0.0
        for b in range(round(seconds / flush)):
            times = [t + k / rate for k in range(per_batch)]
            series = {
                proc_series(1000 + i): (times, [v + 4096 * ((b + k) % 7 == 0) for k in range(per_batch)])
                for i, v in enumerate(base)
            }
            series["rss"] = (times, [sum(base) + k for k in range(per_batch)])
            t += flush
            c0 = time.thread_time()
            writer.write_batch(Batch(sid, series))
            submit_cpu += time.thread_time() - c0
        c0 = time.process_time()
        w0 = time.perf_counter()
        ok = writer.close(timeout=600)
        total = time.process_time() - c0  # the writer thread (this one waits)
        n = sum(store.load_series(sid, name)[0].__len__() for name in store.series_names(sid)) if ok else 0
        store.close()
    return {
        "writer_pct": round(total / seconds * 100, 3),
        "submit_pct": round(submit_cpu / seconds * 100, 3),
        "wall_s": round(time.perf_counter() - w0, 2),
        "samples": n,
    }


def recorder_per_flush(procs: int = 50, per: int = 25, n: int = 2000) -> dict[str, float]:
    """µs the sampler spends per flush (``per`` readings of ``procs`` + 1 series) turning readings
    into columns: two appends per series per reading (before) against ``recorder.columns``."""
    from memview.recorder import columns

    rows = [
        (k * 0.01, {**{proc_series(1000 + i): 100_000_000 + i for i in range(procs)}, "rss": k}) for k in range(per)
    ]

    def per_series() -> dict[str, tuple[list[float], list[int]]]:
        bufs: dict[str, tuple[list[float], list[int]]] = {}
        for t, values in rows:
            for name, value in values.items():
                buf = bufs.get(name)
                if buf is None:
                    buf = bufs[name] = ([], [])
                buf[0].append(t)
                buf[1].append(value)
        return bufs

    assert per_series() == columns(rows)
    return {
        "per_series_us": round(timeit.timeit(per_series, number=n) / n * 1e6, 1),
        "columns_us": round(timeit.timeit(lambda: columns(rows), number=n) / n * 1e6, 1),
    }


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 120))
    print(recorder_per_flush())
