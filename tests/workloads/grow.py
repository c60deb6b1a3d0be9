"""Keep allocating in ``allocate_pages`` for SECONDS: RSS climbs STEP MiB at a time up to CAP MiB, then drops.

Usage: grow.py SECONDS [STEP_MIB] [CAP_MIB]. Busy in Python code (touching every page), so a
sampling profiler sees ``allocate_pages`` on the stack. Prints "ready" first.
"""

import sys
import time

seconds = float(sys.argv[1])
step = int(sys.argv[2]) if len(sys.argv) > 2 else 4
cap = int(sys.argv[3]) if len(sys.argv) > 3 else 200


def allocate_pages(chunks, n_bytes):
    if (len(chunks) + 1) * n_bytes > cap * 2**20:
        chunks.clear()  # here, not in the loop: a profiler sampling at any moment finds this function
    buf = bytearray(n_bytes)
    for i in range(0, n_bytes, 4096):
        buf[i] = 1
    chunks.append(buf)


chunks = []
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    allocate_pages(chunks, step * 2**20)
