"""A real HTTP service whose real memory grows and shrinks on request, reporting it two ways.

Usage: memserver.py [--port N] [--token T] [--limit-mb N]
Prints {"port": N, "pid": P} on stdout once it listens on 127.0.0.1 (port 0 = any free port).

GET  /api/v1/memory/profile  the memory-profile document (RipTide's shape), from this process's
                             own RSS (/proc/self/statm) and VmHWM; MB are MiB truncated to whole
                             numbers as RipTide does, jemalloc figures unrounded
GET  /metrics                Prometheus text from the official prometheus_client (its process
                             collector gives process_resident_memory_bytes) plus
                             memserver_held_bytes{kind="held"|"cache"}
GET  /truth                  {"rss_bytes", "hwm_bytes", "held_bytes", "inflight"}: the kernel's
                             figures now, and how many GETs of the two endpoints are being answered
POST /grow?mb=N              allocate and touch N MiB (really resident); answers /truth
POST /shrink?mb=N            free the last N MiB allocated (all when mb is absent); answers /truth
POST /mode?fail=KIND         make both GET endpoints fail: none, 500, 401, malformed, huge, loop,
                             slow, slowheaders, nan, negative, close
POST /config?limit_mb=N      the limit pressure is computed against (80% warning, 90% critical)
With --token T, both GET endpoints answer 401 unless sent "Authorization: Bearer T" (or Basic
auth whose password is T).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from common import hwm_bytes, rss_bytes, touch
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

MIB = 2**20
STATE = {"fail": "none", "limit_mb": 10_000, "token": None, "inflight": 0}
HELD: list[bytearray] = []
LOCK = threading.Lock()  # guards HELD
COUNT_LOCK = threading.Lock()  # guards STATE["inflight"]

_gauge = Gauge("memserver_held_bytes", "Bytes the test server holds on purpose", ["kind"])
_gauge.labels(kind="held").set_function(lambda: sum(len(b) for b in HELD))
_gauge.labels(kind="cache").set(0)


def held() -> int:
    return sum(len(b) for b in HELD)


def truth() -> dict:
    return {
        "rss_bytes": rss_bytes(),
        "hwm_bytes": hwm_bytes(),
        "held_bytes": held(),
        "wall": time.time(),
        "inflight": STATE["inflight"],
    }


def profile() -> dict:
    rss, hwm, h = rss_bytes(), hwm_bytes(), held()
    usage = rss / (STATE["limit_mb"] * MIB)
    pressure = "critical" if usage >= 0.9 else "warning" if usage >= 0.8 else "normal"
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "total_allocated_mb": h // MIB,
        "peak_usage_mb": hwm // MIB,
        "current_usage_mb": rss // MIB,
        "by_component": {"held": h // MIB, "runtime": max(rss - h, 0) // MIB},
        "pressure": pressure,
        "stats": {
            "usage_percentage": round(usage * 100, 3),
            "is_under_pressure": pressure != "normal",
            "last_cleanup_secs_ago": None,
            "last_gc_secs_ago": None,
            "cleanup_count": 0,
            "gc_count": 0,
        },
        "jemalloc": {"allocated_mb": h / MIB, "resident_mb": rss / MIB, "fragmentation_ratio": rss / h if h else 0.0},
    }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        token = STATE["token"]
        if not token:
            return True
        got = self.headers.get("Authorization", "")
        if got == f"Bearer {token}":
            return True
        if got.startswith("Basic "):
            try:
                _, _, password = base64.b64decode(got[6:]).decode().partition(":")
            except ValueError:
                return False
            return password == token
        return False

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/grow":
            with LOCK:
                HELD.append(touch(int(float(q.get("mb", "50")) * MIB)))
        elif url.path == "/shrink":
            with LOCK:
                if "mb" in q:
                    want = int(float(q["mb"]) * MIB)
                    while HELD and want > 0:
                        want -= len(HELD.pop())
                else:
                    HELD.clear()
        elif url.path == "/mode":
            STATE["fail"] = q.get("fail", "none")
        elif url.path == "/config":
            STATE["limit_mb"] = float(q.get("limit_mb", STATE["limit_mb"]))
        else:
            return self._send(404, b"{}")
        self._send(200, json.dumps(truth()).encode())

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        try:
            if path == "/truth":
                return self._send(200, json.dumps(truth()).encode())
            if path.startswith("/loop/"):  # /loop/a -> /loop/b -> /loop/a ...
                nxt = "/loop/b" if path == "/loop/a" else "/loop/a"
                return self._send(302, b"", extra={"Location": nxt})
            if path not in ("/api/v1/memory/profile", "/metrics"):
                return self._send(404, b'{"error": "not found"}')
            if not self._authorized():
                return self._send(401, b'{"error": "unauthorized"}', extra={"WWW-Authenticate": "Bearer"})
            with COUNT_LOCK:
                STATE["inflight"] += 1
            try:
                fail = STATE["fail"]
                if fail != "none":
                    return self._fail(fail)
                if path == "/metrics":
                    return self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                return self._send(200, json.dumps(profile()).encode())
            finally:
                with COUNT_LOCK:
                    STATE["inflight"] -= 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout or a body cap on its side): expected here

    def _fail(self, fail: str) -> None:
        if fail in ("500", "401"):
            return self._send(int(fail), b'{"error": "failing on purpose"}')
        if fail == "malformed":
            return self._send(200, b'{"current_usage_mb": 12, "by_comp')
        if fail in ("nan", "negative"):
            doc = profile()
            doc["current_usage_mb"] = float("nan") if fail == "nan" else -5
            return self._send(200, json.dumps(doc).encode())  # json.dumps writes NaN, as some servers do
        if fail == "loop":
            return self._send(302, b"", extra={"Location": "/loop/a"})
        if fail == "close":
            self.close_connection = True
            return
        if fail == "huge":  # no Content-Length: the client must stop reading by itself
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"current_usage_mb": 1, "pad": "')
            chunk = b"x" * 65536
            for _ in range(50 * 16):  # up to 50 MiB
                self.wfile.write(chunk)
            return
        if fail == "slow":
            time.sleep(5)
            return self._send(200, json.dumps(profile()).encode())
        if fail == "slowheaders":  # every byte arrives well within any socket timeout; the whole never does
            self.wfile.write(b"HTTP/1.0 200 OK\r\n")
            for _ in range(500):
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(0.02)
            return
        self._send(400, json.dumps({"error": f"unknown failure {fail}"}).encode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token")
    ap.add_argument("--limit-mb", type=float, default=10_000)
    args = ap.parse_args()
    STATE["token"] = args.token
    STATE["limit_mb"] = args.limit_mb
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1], "pid": os.getpid()}), flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
