"""A command that leaves a daemon behind: double fork + setsid, then the command returns at once.

``daemonize.py OUT MIB SECONDS``: the daemon touches MIB MiB, writes ``{"pid": …}`` to OUT.pid
(so a test knows it before it ends), holds the memory for SECONDS, then writes its own VmHWM to
OUT and exits. ``daemonize.py orphan OUT``: the same shape with no memory, holding for an hour:
its parent is gone at once, so its PPid says who adopted it (init, or a child subreaper).
"""

import os
import sys
import time

from common import hwm_bytes, report, touch

if sys.argv[1] == "orphan":
    out, mib, secs = sys.argv[2], 0, 3600.0
else:
    out, mib, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        buf = touch(mib * 2**20)
        report(out + ".tmp", {"pid": os.getpid()})
        os.rename(out + ".tmp", out + ".pid")  # whole or absent for a reader
        time.sleep(secs)
        report(out, {"hwm_bytes": hwm_bytes(), "pid": os.getpid()})
        os._exit(0)
    os._exit(0)
os.wait()
