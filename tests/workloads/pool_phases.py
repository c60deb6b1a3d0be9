"""A multiprocessing pool whose workers announce nested phases at the same time (issue 16 item 4).

Usage: pool_phases.py REPORT_PATH [WORKERS]. Each task runs ``task`` with ``alloc`` nested inside
(holds 10 MiB), in every worker at once; the report lists the worker pids.
"""

import multiprocessing as mp
import os
import sys

from common import report, touch

from memview.probe import phase


def work(i: int) -> int:
    with phase("task", i=i):
        with phase("alloc"):
            buf = touch(10 * 2**20)
            del buf
    return os.getpid()


if __name__ == "__main__":
    path = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with mp.get_context("fork").Pool(workers) as pool:
        pids = pool.map(work, range(workers * 2), chunksize=1)
    report(path, {"worker_pids": sorted(set(pids))})
