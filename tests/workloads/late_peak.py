"""A harness whose workers reach their peak in their last milliseconds, then exit at once.

``late_peak.py harness OUTDIR N MIB``: runs N workers one after another with ``subprocess.run``
(the shape of an extraction harness). ``late_peak.py worker OUT MIB``: holds a few MiB for a
while, then touches MIB MiB (a few ms to 20 ms), writes its own VmHWM to OUT and exits. A
sampler reading every 100 ms sees the small figure; only a reading at the exit sees the peak.
``late_peak.py daemon OUT MIB SECONDS``: double fork + setsid, the grandchild holds MIB MiB for
SECONDS, writes its VmHWM to OUT and exits; the command itself returns at once.
"""

import os
import subprocess
import sys
import time

from common import hwm_bytes, report, touch

mode = sys.argv[1]
if mode == "harness":
    out, n, mib = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    for i in range(n):
        subprocess.run([sys.executable, __file__, "worker", os.path.join(out, f"w{i}.json"), mib], check=True)
elif mode == "worker":
    base = touch(4 * 2**20)
    time.sleep(0.25)
    buf = touch(int(sys.argv[3]) * 2**20)
    report(sys.argv[2], {"hwm_bytes": hwm_bytes(), "pid": os.getpid()})
    os._exit(0)
elif mode == "daemon":
    out, mib, secs = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            buf = touch(mib * 2**20)
            time.sleep(secs)
            report(out, {"hwm_bytes": hwm_bytes(), "pid": os.getpid()})
            os._exit(0)
        os._exit(0)
    os.wait()
