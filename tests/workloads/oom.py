"""Join the memory cgroup given as argv[1] (limit already set by the test) and allocate past it."""

import os
import sys

with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
chunks = []
while True:
    chunks.append(bytearray(16 * 2**20))
    for i in range(0, len(chunks[-1]), 4096):
        chunks[-1][i] = 1
