"""A two-process tree whose child spikes briefly, between samples: what a sampled total misses.

Usage: tree_spike.py OUT_JSON [SIZE_MIB] [N]. The parent starts the child and waits. The child,
N times: sleeps 0.3-0.4 s, maps and touches SIZE MiB at once (~2 ms on an idle machine; a page
fault costs ~10 µs on a loaded VM, so 24 MiB can take 60 ms there), reads its own VmHWM and its
parent's while the memory is held, then unmaps it; it exits 0.6 s after the last spike. OUT_JSON
gets the largest ``child + parent`` VmHWM read at one spike (the kernel's figures: the tree's
true peak, which the envelope must reach) and the child's own.
"""

import json
import mmap
import os
import random
import subprocess
import sys
import time


def hwm(pid: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


if len(sys.argv) > 1 and sys.argv[1] == "child":
    out, size, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tree = child = 0
    rng = random.Random(os.getpid())
    for _ in range(n):
        time.sleep(0.3 + rng.random() * 0.1)  # off the 100 ms sampling grid
        # an anonymous map, unmapped after: malloc would keep the freed pages (glibc raises its mmap
        # threshold after the first free), and the "spike" would stay resident
        buf = mmap.mmap(-1, size * 2**20)
        buf[::4096] = b"\1" * len(range(0, len(buf), 4096))  # every page resident, in a few ms
        mine, parent = hwm("self"), hwm(str(os.getppid()))
        buf.close()
        child = max(child, mine)
        tree = max(tree, mine + parent)
    # not exiting at once: the VmHWM read at the exit stop would carry the last spike into the total
    time.sleep(0.6)
    with open(out, "w") as f:
        json.dump({"tree_hwm_bytes": tree, "child_hwm_bytes": child}, f)
else:
    size = sys.argv[2] if len(sys.argv) > 2 else "24"
    n = sys.argv[3] if len(sys.argv) > 3 else "5"
    subprocess.run([sys.executable, __file__, "child", sys.argv[1], size, n], check=True)
