"""Edge cases of the marker protocol, written as raw lines to MEMVIEW_FD.

Usage: phase_edges.py REPORT_PATH MODE
  malformed: garbage lines of every kind between two good phases ("good1", "good2")
  unclosed:  "outer" > "inner"; "outer" ends (inner closed with it); an end without a start;
             then "never" holds 50 MiB and the program exits without ending it
The report holds the program's own RSS at the peak of each phase (from /proc/self/statm).
"""

import os
import sys
import time

from common import report, rss_bytes, touch

path, mode = sys.argv[1], sys.argv[2]
fd = int(os.environ["MEMVIEW_FD"])


def send(raw: bytes) -> None:
    os.write(fd, raw)


truth = {}
if mode == "malformed":
    send(b'{"event": "phase_start", "name": "good1"}\n')
    buf = touch(20 * 2**20)
    truth["good1"] = rss_bytes()
    del buf
    send(b'{"event": "phase_end", "name": "good1"}\n')
    for junk in (
        b"this is not json\n",
        b"[1, 2, 3]\n",
        b'{"event": "explode", "name": "x"}\n',
        b'{"name": "no event"}\n',
        b'{"event": "phase_start"}\n',
        b'{"event": "mark", "name": "bad t", "t": "yesterday"}\n',
        b'{"event": "mark", "name": "bad pid", "pid": "me"}\n',
        b"\xff\xfe\x00binary\n",
        b'{"event": "mark", "name": "truncated\n',
        b"x" * 100_000 + b"\n",
        b"\n\n   \n",
    ):
        send(junk)
    for i in range(200):  # more warnings than are stored one by one
        send(b"junk %d\n" % i)
    send(b'{"event": "phase_start", "name": "good2", "data": {"n": 1}}\n')
    buf = touch(60 * 2**20)
    truth["good2"] = rss_bytes()
    time.sleep(0.05)
    del buf
    send(b'{"event": "phase_end", "name": "good2"}\n')
    send(b'{"event": "mark", "name": "no newline at the end"}')
elif mode == "unclosed":
    send(b'{"event": "phase_start", "name": "outer"}\n')
    send(b'{"event": "phase_start", "name": "inner"}\n')
    buf = touch(30 * 2**20)
    truth["outer"] = truth["inner"] = rss_bytes()
    del buf
    send(b'{"event": "phase_end", "name": "outer"}\n')
    send(b'{"event": "phase_end", "name": "ghost"}\n')
    send(b'{"event": "phase_start", "name": "never"}\n')
    time.sleep(0.1)
    keep = touch(50 * 2**20)
    truth["never"] = rss_bytes()
    report(path, {"peaks": truth})
    os._exit(0)  # exits holding the memory, with "never" still open
report(path, {"peaks": truth})
