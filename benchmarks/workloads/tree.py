"""A sleeping process tree of N processes in all (root, children, grandchildren) for SECONDS.

Usage: tree.py N SECONDS. The root forks about sqrt(N-1) children and they fork the rest, so the
tree has depth and breadth; every process sleeps to the same deadline, reaps its own children and
exits. Nothing allocates: what a monitor spends here is the cost of walking and reading the tree.
"""

import math
import os
import sys
import time


def sleep_then_reap(deadline: float, kids: list[int]) -> None:
    time.sleep(max(deadline - time.time(), 0.0))
    for pid in kids:
        os.waitpid(pid, 0)


def spawn(count: int, deadline: float) -> list[int]:
    """Fork ``count`` children of this process that just sleep to the deadline."""
    kids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            sleep_then_reap(deadline, [])
            os._exit(0)
        kids.append(pid)
    return kids


def main() -> None:
    n = int(sys.argv[1])
    deadline = time.time() + float(sys.argv[2])
    rest = n - 1
    branches = math.isqrt(rest) if rest > 0 else 0
    kids = []
    for b in range(branches):
        share = (rest - branches) // branches + (1 if b < (rest - branches) % branches else 0)
        pid = os.fork()
        if pid == 0:
            sleep_then_reap(deadline, spawn(share, deadline))
            os._exit(0)
        kids.append(pid)
    sleep_then_reap(deadline, kids)


if __name__ == "__main__":
    main()
