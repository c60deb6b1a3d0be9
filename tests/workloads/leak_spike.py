"""Leak in one function, spike in another, until STOP_FILE exists: the memray judge.

Usage: leak_spike.py LEAK_KIB SPIKE_MIB STOP_FILE [MAX_LEAK_MIB]. Each round ``leak`` keeps one
LEAK_KIB buffer (until MAX_LEAK_MIB are kept) and ``spike`` holds a SPIKE_MIB buffer, touches every
page and frees it. Prints one JSON line first: the sizes it allocates (its own truth), and the
line numbers of the two allocations.
"""

import json
import os
import sys
import time

leak_bytes = int(sys.argv[1]) * 1024
spike_bytes = int(sys.argv[2]) * 2**20
stop_file = sys.argv[3]
max_leak = int(sys.argv[4]) * 2**20 if len(sys.argv) > 4 else 256 * 2**20
kept = []
LEAK_LINE = 24
SPIKE_LINE = 28


def leak():
    kept.append(bytearray(leak_bytes))  # line 24: LEAK_LINE


def spike():
    buf = bytearray(spike_bytes)  # line 28: SPIKE_LINE
    for i in range(0, len(buf), 4096):
        buf[i] = 1
    return len(buf)


print(
    json.dumps(
        {
            "leak_bytes": leak_bytes,
            "spike_bytes": spike_bytes,
            "file": os.path.abspath(__file__),
            "leak_line": LEAK_LINE,
            "spike_line": SPIKE_LINE,
        }
    ),
    flush=True,
)
while not os.path.exists(stop_file):
    if len(kept) * leak_bytes < max_leak:
        leak()
    spike()
    time.sleep(0.02)
