"""A multiprocessing pool whose workers each hold SIZE MiB at the same time.

Usage: pool.py REPORT_PATH [WORKERS] [SIZE_MIB]; writes each worker's own VmHWM.
"""

import multiprocessing as mp
import sys
import time

from common import hwm_bytes, report, touch


def work(args):
    size, barrier = args
    buf = touch(size * 2**20)
    held = hwm_bytes()  # read while held too: memview's envelope resets the mark each sample
    time.sleep(1.0)  # all workers hold their memory together
    del buf
    return max(held, hwm_bytes())


if __name__ == "__main__":
    path = sys.argv[1]
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        hwms = pool.map(work, [(size, None)] * workers, chunksize=1)
    report(path, {"worker_hwm_bytes": hwms, "parent_hwm_bytes": hwm_bytes()})
