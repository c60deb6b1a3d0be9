"""Flood MEMVIEW_FD with N phase pairs (start, end) as fast as possible, with times from this program's
clock ("t"), then report. Usage: phase_flood.py REPORT_PATH [N].

Writes {"pairs": N, "first_t": …, "last_t": …, "lifetime_s": …}: the Unix times of the first and last
line and this process's own lifetime (from its start time in /proc/self/stat to just before exit).
"""

import os
import sys
import time

from common import report

path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
fd = int(os.environ["MEMVIEW_FD"])
first = time.time()
for i in range(n):
    t = time.time()
    os.write(
        fd,
        b'{"event":"phase_start","name":"p%d","t":%.6f}\n{"event":"phase_end","name":"p%d","t":%.6f}\n' % (i, t, i, t),
    )
last = time.time()
with open("/proc/self/stat") as f:
    start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
with open("/proc/uptime") as f:
    uptime = float(f.read().split()[0])
report(
    path, {"pairs": n, "first_t": first, "last_t": last, "lifetime_s": uptime - start_ticks / os.sysconf("SC_CLK_TCK")}
)
