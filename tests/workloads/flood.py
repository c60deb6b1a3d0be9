"""Flood the marker channel with N marks as fast as this program can write them, then report.

Usage: flood.py REPORT_PATH [N] [raw|probe]. "raw" writes ready-made JSON lines straight to
MEMVIEW_FD (about the fastest a program can flood); "probe" goes through memview.probe.mark.
Writes {"elapsed_s": …, "marks": N} measured by this program around its loop alone.
"""

import os
import sys
import time

from common import report

path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
mode = sys.argv[3] if len(sys.argv) > 3 else "raw"
t0 = time.perf_counter()
if mode == "raw":
    fd = int(os.environ["MEMVIEW_FD"])
    lines = [b'{"event":"mark","name":"tick","data":{"i":%d}}\n' % i for i in range(n)]
    t0 = time.perf_counter()
    for line in lines:
        os.write(fd, line)
else:
    from memview.probe import mark

    for i in range(n):
        mark("tick", i=i)
elapsed = time.perf_counter() - t0
report(path, {"elapsed_s": elapsed, "marks": n})
