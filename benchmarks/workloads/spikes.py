"""Short allocation spikes; writes the kernel's own VmHWM (the truth every monitor is judged by).

Usage: spikes.py REPORT [--size MIB] [--step MIB] [--count N] [--hold S] [--gap S] [--delay S] [--go-stdin]
Spike i holds SIZE + i*STEP MiB, every page written, for HOLD seconds, GAP seconds apart, so the
last spike is the peak. ``--go-stdin`` waits for a line on stdin first: a monitor that attaches by
PID (psrecord) is then watching before anything happens.
"""

import argparse
import json
import sys
import time


def touch(n_bytes: int) -> bytearray:
    buf = bytearray(n_bytes)
    for i in range(0, n_bytes, 4096):
        buf[i] = 1
    return buf


def hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--size", type=int, default=150)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--hold", type=float, default=0.03)
    ap.add_argument("--gap", type=float, default=0.15)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--go-stdin", action="store_true")
    args = ap.parse_args()
    if args.go_stdin:
        sys.stdin.readline()
    time.sleep(args.delay)
    peak = 0  # read while each spike is held too: memview's envelope resets the mark each sample
    for i in range(args.count):
        buf = touch((args.size + args.step * i) * 2**20)
        peak = max(peak, hwm_bytes())
        time.sleep(args.hold)
        del buf
        time.sleep(args.gap)
    with open(args.report, "w") as f:
        json.dump({"hwm_bytes": max(peak, hwm_bytes())}, f)


if __name__ == "__main__":
    main()
