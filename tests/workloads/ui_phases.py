"""Three phases of different sizes, announced through memview.probe (MEMVIEW_FD) when memview runs it.

Usage: ui_phases.py [HOLD_SECONDS]; phases "load" (+30 MiB, kept), "parse" (+90 MiB), "render"
(+40 MiB), 0.4 s each, then holds until HOLD_SECONDS (default 0) have passed. The probe waits
for memview's acknowledgement at each phase start, so a phase's start figures are taken before
it allocates. Run outside memview it allocates the same and says nothing.
"""

import sys
import time
from pathlib import Path

from common import touch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's memview (the probe)
from memview.probe import phase  # noqa: E402

hold = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
start = time.monotonic()
kept = []
for name, mib in (("load", 30), ("parse", 90), ("render", 40)):
    with phase(name):
        buf = touch(mib * 2**20)
        time.sleep(0.4)
        if name == "load":
            kept.append(buf)  # load's data stays; the others are freed at their end
        del buf
print("ready", flush=True)
time.sleep(max(0.0, hold - (time.monotonic() - start)))
