"""Log phase lines on two streams, read by memview in the wrong order (issue 16 item 2).

Usage: log_two_streams.py MODE REPORT_PATH. Lines are ``<ISO time> [MEMORY] before|after X: N MB RSS``.
What goes to stdout is held back until ``flush_stdout()`` (as a block-buffered pipe holds it, but
not left to PYTHONUNBUFFERED); stderr goes out at once.
``sync()`` waits until memview has handled every line written so far (two acknowledged marks on
MEMVIEW_FD: the second is read after the reader's pass that took the earlier lines), so the order in
which memview reads the lines is fixed, not a race.

* ``reversed``: ``before load`` on stdout (held), 40 MiB, ``after load`` on stderr, sync, 60 MiB
  more (not load's), then the
  stdout line is written at the end: memview reads ``after`` first.
* ``nested``: ``before outer`` on stdout (held), ``before inner`` on stderr, sync, flush stdout, sync,
  10 MiB, ``after inner`` and ``after outer`` on stderr: memview reads inner's start before outer's.
* ``siblings``: ``before first`` on stderr, 10 MiB, ``after first`` on stdout (held), ``before second``
  on stderr, sync, flush stdout, sync, 20 MiB, ``after second`` on stderr: memview reads first's end
  while second (which it does not contain) is open.
"""

import datetime
import json
import os
import socket
import sys

from common import hwm_bytes, report, rss_bytes, touch

printed: dict[str, int] = {}
held: list[str] = []
channel = socket.socket(fileno=int(os.environ["MEMVIEW_FD"]))


def line(what: str, stream) -> None:
    rss = rss_bytes()
    text = f"{rss / 1024 / 1024:.2f}"
    printed[what] = round(float(text) * 2**20)
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")
    text = f"{stamp} [MEMORY] {what}: {text} MB RSS\n"
    if stream is sys.stdout:
        held.append(text)
    else:
        os.write(2, text.encode())


def flush_stdout() -> None:
    os.write(1, "".join(held).encode())
    held.clear()


def sync() -> None:
    for token in ("a", "b"):
        channel.sendall(json.dumps({"event": "mark", "name": "sync", "sync": token}).encode() + b"\n")
        got = b""
        while not got.endswith(b"\n"):
            got += channel.recv(64)


mode, path = sys.argv[1], sys.argv[2]
kept = []
peaks: dict[str, int] = {}
if mode == "reversed":
    line("before load", sys.stdout)
    kept.append(touch(40 * 2**20))
    peaks["load"] = hwm_bytes()
    line("after load", sys.stderr)
    sync()  # handled (and held) before the 60 MiB: a sample stamped before the line cannot hold them
    kept.append(touch(60 * 2**20))
elif mode == "siblings":
    line("before first", sys.stderr)
    kept.append(touch(10 * 2**20))
    line("after first", sys.stdout)
    line("before second", sys.stderr)
    sync()
    flush_stdout()
    sync()
    kept.append(touch(20 * 2**20))
    line("after second", sys.stderr)
else:
    line("before outer", sys.stdout)
    line("before inner", sys.stderr)
    sync()
    flush_stdout()
    sync()
    kept.append(touch(10 * 2**20))
    line("after inner", sys.stderr)
    line("after outer", sys.stderr)
flush_stdout()
report(path, {"printed": printed, "peaks": peaks})
