"""Three phases of different sizes, announced on $MEMVIEW_FD when memview passes one.

Usage: ui_phases.py [HOLD_SECONDS]; phases "load" (+30 MiB), "parse" (+90 MiB), "render"
(+40 MiB), 0.4 s each, then holds until HOLD_SECONDS (default 0) have passed. Without
MEMVIEW_FD it allocates the same and says nothing, like any program run outside memview.
"""

import json
import os
import sys
import time

from common import touch

fd = int(os.environ["MEMVIEW_FD"]) if os.environ.get("MEMVIEW_FD") else None


def say(event: str, name: str) -> None:
    if fd is not None:
        os.write(fd, (json.dumps({"event": event, "name": name}) + "\n").encode())


hold = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
start = time.monotonic()
kept = []
for name, mib in (("load", 30), ("parse", 90), ("render", 40)):
    say("phase_start", name)
    buf = touch(mib * 2**20)
    time.sleep(0.4)
    if name == "load":
        kept.append(buf)  # load's data stays; the others are freed at their end
    del buf
    say("phase_end", name)
print("ready", flush=True)
time.sleep(max(0.0, hold - (time.monotonic() - start)))
