"""A program started outside memview that announces phases through a FIFO and a log file.

Usage: attach_target.py FIFO_PATH LOG_PATH REPORT_PATH. Prints "ready", waits for memview to
create FIFO_PATH, then runs phase "p40" (40 MiB) announced on the FIFO and "p90" (90 MiB)
announced in the log as "[MEMORY] before/after p90: N MB RSS" lines; each held 0.4 s.
"""

import json
import os
import sys
import time

from common import report, rss_bytes, touch

fifo, log_path, path = sys.argv[1:4]
print("ready", flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(fifo):
    if time.monotonic() > deadline:
        sys.exit("no FIFO")
    time.sleep(0.01)
fd = os.open(fifo, os.O_WRONLY)
truth = {}


def send(obj: dict) -> None:
    os.write(fd, (json.dumps(obj) + "\n").encode())


send({"event": "phase_start", "name": "p40"})
buf = touch(40 * 2**20)
truth["p40"] = rss_bytes()
time.sleep(0.4)
del buf
send({"event": "phase_end", "name": "p40"})
time.sleep(0.1)
with open(log_path, "a", buffering=1) as log:
    log.write(f"INFO [MEMORY] before p90: {rss_bytes() / 2**20:.2f} MB RSS\n")
    buf = touch(90 * 2**20)
    truth["p90"] = rss_bytes()
    time.sleep(0.4)
    del buf
    log.write(f"INFO [MEMORY] after p90: {rss_bytes() / 2**20:.2f} MB RSS\n")
report(path, {"peaks": truth})
time.sleep(0.3)
