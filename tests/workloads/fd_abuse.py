"""A program that mistreats its MEMVIEW_FD channel; it reports how long its own writes took.

Usage: fd_abuse.py REPORT_PATH MODE
  close: writes half a marker line, closes the channel, then allocates 80 MiB for a second
  junk:  a 10 MB line, binary garbage, a marker split into three writes with pauses between,
         a phase around a 40 MiB allocation; then closes the channel and keeps running 0.5 s
The report holds ``write_s`` (seconds spent in os.write) and ``hwm_bytes`` (its kernel peak).
"""

import os
import sys
import time

from common import hwm_bytes, report, touch

path, mode = sys.argv[1], sys.argv[2]
fd = int(os.environ["MEMVIEW_FD"])
spent = 0.0


def send(raw: bytes) -> None:
    global spent
    start = time.perf_counter()
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view) :]
    spent += time.perf_counter() - start


if mode == "close":
    send(b'{"event": "phase_start", "na')
    os.close(fd)
    buf = touch(80 * 2**20)
    time.sleep(1.0)
elif mode == "junk":
    send(b"y" * 10_000_000 + b"\n")
    send(bytes(range(256)) * 64 + b"\n")
    for part in (b'{"event": "ma', b'rk", "name": "split', b' across writes"}\n'):
        send(part)
        time.sleep(0.1)
    send(b'{"event": "phase_start", "name": "work"}\n')
    buf = touch(40 * 2**20)
    time.sleep(0.1)
    del buf
    send(b'{"event": "phase_end", "name": "work"}\n')
    os.close(fd)
    time.sleep(0.5)
report(path, {"write_s": spent, "hwm_bytes": hwm_bytes()})
