"""Helpers the workload programs share: touch memory for real and read the kernel's own figures."""

from __future__ import annotations

import json
import os
import sys


def hwm_bytes() -> int:
    """This process's VmHWM, in bytes, as the kernel reports it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def touch(n_bytes: int) -> bytearray:
    """Allocate and write every page, so the memory is really resident."""
    buf = bytearray(n_bytes)
    for i in range(0, n_bytes, 4096):
        buf[i] = 1
    return buf


def report(path: str | None, data: dict) -> None:
    text = json.dumps(data)
    if path:
        with open(path, "w") as f:
            f.write(text)
    else:
        print(text, file=sys.stderr)
