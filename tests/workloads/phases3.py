"""Three phases whose own peaks differ, announced through memview.probe; reports its own truth.

Usage: phases3.py REPORT_PATH [MIB_A MIB_B MIB_C]. Phase "a" holds MIB_A, "b" holds MIB_B for
a 50 ms burst, "c" holds MIB_C; everything is freed between phases. The truth for each phase is
the program's own RSS read right after it touched its last page (the moment of its peak), read
from /proc/self/statm by this program, independent of memview's code.
"""

import sys
import time

from common import report, rss_bytes, touch

from memview.probe import phase

path = sys.argv[1]
sizes = [int(x) for x in sys.argv[2:5]] if len(sys.argv) > 4 else [40, 160, 90]
holds = [0.3, 0.05, 0.3]
truth = {}
time.sleep(0.1)
for name, size, hold in zip("abc", sizes, holds):
    with phase(name):
        buf = touch(size * 2**20)
        truth[name] = rss_bytes()
        time.sleep(hold)
        del buf
report(path, {"peaks": truth, "final_rss": rss_bytes()})
