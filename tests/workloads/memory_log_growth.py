"""Log phases in the program's own words (issue 16 item 2). Usage: memory_log_growth.py REPORT_PATH.

Logs ``%(asctime)s [MEMORY] {operation}: {mb:.2f} MB RSS`` lines like the user's pipeline. ``load``
keeps 20 MiB; right after its ``after`` line the program allocates 100 MiB more (not load's);
``upload`` is started twice without an ``after`` the first time (an exception in between), then
``chunk`` runs; the report holds the figures it printed (bytes) and its own peaks.
"""

import logging
import sys

from common import report, rss_bytes, touch

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
log = logging.getLogger("pipeline")
printed: dict[str, int] = {}


def memory(operation: str) -> None:
    rss = rss_bytes()
    text = f"{rss / 1024 / 1024:.2f}"
    printed[operation] = round(float(text) * 2**20)
    log.info(f"[MEMORY] {operation}: {text} MB RSS")


memory("before load")
kept = [touch(20 * 2**20)]
load_peak = rss_bytes()
memory("after load")
kept.append(touch(100 * 2**20))  # after load's "after" line: not load's memory
memory("before upload")
try:
    raise RuntimeError("upload failed")  # the "after upload" line is never printed
except RuntimeError:
    pass
memory("before upload")
kept.append(touch(5 * 2**20))
memory("after upload")
memory("before chunk")
kept.append(touch(10 * 2**20))
memory("after chunk")
report(sys.argv[1], {"printed": printed, "load_peak": load_peak, "after_load_peak": rss_bytes()})
