"""Short allocation spikes: N spikes of SIZE MiB that live 30 ms each, 200 ms apart.

Usage: spikes.py REPORT_PATH [SIZE_MIB] [N]; writes {"hwm_bytes": …} (the kernel's VmHWM).
VmHWM is also read while each spike is held and the largest reading is reported: under
``memview run`` the envelope resets the mark each sample, so a reading after the last spike
would only cover the time since the last reset.
"""

import sys
import time

from common import hwm_bytes, report, touch

path = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 150
n = int(sys.argv[3]) if len(sys.argv) > 3 else 3
peak = 0
for i in range(n):
    time.sleep(0.2)
    buf = touch((size + 20 * i) * 2**20)
    peak = max(peak, hwm_bytes())
    time.sleep(0.03)
    del buf
time.sleep(0.1)
report(path, {"hwm_bytes": max(peak, hwm_bytes())})
