"""Allocate small objects at a steady pace for SECONDS and log the pace: the capture-cost workload.

Usage: steady_alloc.py SECONDS LOG [WARMUP]. Every 0.1 s appends "EPOCH_SECONDS ROUNDS" to LOG
(rounds of ``churn`` done so far), so a benchmark can compare the pace inside a capture window with
the pace before it. After WARMUP seconds (default 3) it takes 32 MiB more, for a threshold to fire.
"""

import sys
import time


def churn():
    rows = [{"id": i, "name": str(i)} for i in range(200)]
    return len(rows)


seconds = float(sys.argv[1])
log = open(sys.argv[2], "w", buffering=1)  # noqa: SIM115 - held for the whole run
warmup = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
kept = []
start = time.monotonic()
end = start + seconds
rounds = 0
next_log = time.monotonic()
while time.monotonic() < end:
    churn()
    rounds += 1
    if not kept and time.monotonic() - start > warmup:
        kept.append(bytearray(32 << 20))  # touched: a visible RSS step for the threshold
        kept[0][::4096] = b"x" * len(kept[0][::4096])
    now = time.monotonic()
    if now >= next_log:
        log.write(f"{time.time():.4f} {rounds}\n")
        next_log = now + 0.1
log.write(f"{time.time():.4f} {rounds}\n")
