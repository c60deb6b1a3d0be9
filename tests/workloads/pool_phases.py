"""A multiprocessing pool whose workers announce nested phases at the same time (issue 16 item 4).

Usage: pool_phases.py REPORT_PATH [WORKERS]. Each task runs ``task`` with ``alloc`` nested inside
(holds 10 MiB), in every worker at once; the report lists the worker pids and how many boundary
answers from memview the workers missed (the channel is shared: one must not take another's).
"""

import multiprocessing as mp
import os
import sys

from common import report, touch

from memview import probe
from memview.probe import phase


def work(i: int) -> tuple[int, int, bool]:
    with phase("task", i=i):
        with phase("alloc"):
            buf = touch(10 * 2**20)
            del buf
    # how many of its boundaries memview's answer never reached (another worker took it)
    return os.getpid(), probe._state.get("missed_total", 0), bool(probe._state["sync"])


if __name__ == "__main__":
    path = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with mp.get_context("fork").Pool(workers) as pool:
        results = pool.map(work, range(workers * 2), chunksize=1)
    report(
        path,
        {
            "worker_pids": sorted({r[0] for r in results}),
            "missed": sum(r[1] for r in results),
            "sync_on": all(r[2] for r in results),
        },
    )
