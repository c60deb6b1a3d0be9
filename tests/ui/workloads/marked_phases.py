"""Two phases with a mark in each, announced through memview.probe; writes its own VmHWM at the end.

Usage: marked_phases.py OUT_JSON; "load" (+30 MiB, kept), "parse" (+90 MiB, freed, a short spike
in its middle), each ~0.5 s, a mark in each, a line on stdout and one on stderr, then
{"hwm_bytes": ...} (the kernel's figure for the parse phase, the session's peak) to OUT_JSON.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # this checkout's memview (the probe)
from memview.probe import mark, phase  # noqa: E402


def touch(n: int) -> bytearray:
    buf = bytearray(n)
    for i in range(0, n, 4096):
        buf[i] = 1
    return buf


def hwm() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


kept = []
with phase("load"):
    kept.append(touch(30 * 2**20))
    mark("loaded")
    time.sleep(0.5)
with phase("parse"):
    buf = touch(90 * 2**20)
    time.sleep(0.25)
    mark("half parsed")
    time.sleep(0.25)
    peak = hwm()  # parse's own peak (memview resets the high-water mark at each phase start)
    del buf
print("stdout line from the child", flush=True)
print("stderr line from the child", file=sys.stderr, flush=True)
time.sleep(0.3)
Path(sys.argv[1]).write_text(json.dumps({"hwm_bytes": peak}))
