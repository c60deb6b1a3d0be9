"""A program that cannot be changed but logs its memory like the user's upload pipeline does:

    logger.info(f"[MEMORY] {operation}: {mem_mb:.2f} MB RSS")

Operations are "before X" / "after X" around each step, plus a "High memory usage" warning.
Log lines go to stderr (logging's default), progress text to stdout. Usage:
memory_log.py REPORT_PATH; the report holds what it printed on each stream, byte for byte, and
its own RSS at the peak of each step (read from /proc/self/statm).
"""

import logging
import sys
import time

from common import report, rss_bytes, touch

logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
log = logging.getLogger("pipeline")
printed: dict[str, list[str]] = {"stdout": [], "stderr": []}


class Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        printed["stderr"].append(logging.root.handlers[0].format(record) + "\n")


log.addHandler(Keep())


def memory(operation: str) -> None:
    log.info(f"[MEMORY] {operation}: {rss_bytes() / 1024 / 1024:.2f} MB RSS")


def say(text: str) -> None:
    printed["stdout"].append(text + "\n")
    print(text, flush=True)


peaks = {}
say("uploading … ünïcode ok")
for step, mib in (("chunk creation", 30), ("embedding generation", 80)):
    memory(f"before {step}")
    buf = touch(mib * 2**20)
    peaks[step] = rss_bytes()
    say(f"{step}: {mib} MiB held")
    time.sleep(0.2)
    del buf
    memory(f"after {step}")
log.warning(f"[MEMORY] High memory usage: {rss_bytes() / 1024 / 1024:.2f} MB")
say("done")
report(sys.argv[1], {"printed": {k: "".join(v) for k, v in printed.items()}, "peaks": peaks})
