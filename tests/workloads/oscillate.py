"""Swing RSS between a base and base + SIZE MiB, N times, PERIOD seconds per swing.

Usage: oscillate.py SIZE_MIB N PERIOD. A process that crosses a threshold again and again.
"""

import sys
import time

from common import touch

size, n, period = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
for _ in range(n):
    buf = touch(size * 2**20)
    time.sleep(period / 2)
    del buf
    time.sleep(period / 2)
