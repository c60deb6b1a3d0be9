"""A minimal Chrome DevTools protocol client over a stdlib WebSocket: just what a heap snapshot needs.

Why not a library: the protocol use here is one command whose answer arrives as a stream of
events, and the client side of RFC 6455 it needs (handshake, masked text frames out, unmasked
frames in, ping/close) is a hundred lines; a dependency would be larger than the code it saves.
Messages are read one frame at a time, so a snapshot of any size streams straight to disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class DevToolsError(Exception):
    """The inspector could not be reached or answered something unexpected."""


def targets(host: str, port: int, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The inspector's ``/json/list``: one entry per debuggable target (node has one)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/json/list", timeout=timeout) as resp:
            return json.loads(resp.read().decode())
    except (OSError, ValueError) as exc:
        raise DevToolsError(f"no inspector answers on {host}:{port} ({exc})") from None


class WebSocket:
    """Client side of RFC 6455 for text messages; blocking, with a deadline per receive."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise DevToolsError(f"refusing to connect to {url!r}: only a local ws:// inspector is used")
        port = parts.port or 80
        try:
            self.sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        except OSError as exc:
            raise DevToolsError(f"cannot connect to {url} ({exc})") from None
        self._buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = self._read_until(b"\r\n\r\n", time.monotonic() + timeout)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise DevToolsError(f"the inspector refused the WebSocket upgrade: {status.decode(errors='replace')}")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest())
        if accept not in head:
            raise DevToolsError("the inspector's WebSocket handshake did not match")

    # -- bytes ---------------------------------------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from the inspector in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise DevToolsError("the inspector closed the connection")
        self._buf += chunk

    def _read_until(self, marker: bytes, deadline: float) -> bytes:
        while marker not in self._buf:
            self._fill(deadline)
        head, _, self._buf = self._buf.partition(marker)
        return head

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    # -- frames --------------------------------------------------------------------------------------
    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        # XOR with the mask through int arithmetic: fast enough for the small commands sent here
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        self.sock.sendall(head + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv_text(self, deadline: float) -> str | None:
        """The next text message (fragments joined); None when the peer closed the connection."""
        parts: list[bytes] = []
        while True:
            b1, b2 = self._read(2, deadline)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8, deadline))[0]
            mask = self._read(4, deadline) if b2 & 0x80 else b""
            payload = self._read(n, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b1 & 0x0F
            if opcode == 0x8:
                return None
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x1, 0x2, 0x0):
                parts.append(payload)
                if b1 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, struct.pack(">H", 1000))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class DevTools:
    """Commands and events of the DevTools protocol over one WebSocket."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.ws = WebSocket(url, timeout)
        self._id = 0

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        deadline: float | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Send a command and wait for its answer, passing every event that arrives first to ``on_event``."""
        self._id += 1
        msg_id = self._id
        self.ws.send_text(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = deadline or time.monotonic() + 30.0
        while True:
            text = self.ws.recv_text(deadline)
            if text is None:
                raise DevToolsError(f"the inspector closed the connection during {method}")
            msg = json.loads(text)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise DevToolsError(f"{method} failed: {msg['error'].get('message', msg['error'])}")
                return msg.get("result") or {}
            if "method" in msg and on_event is not None:
                on_event(msg["method"], msg.get("params") or {})

    def send(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a command without waiting for its answer (one that ends the connection)."""
        self._id += 1
        self.ws.send_text(json.dumps({"id": self._id, "method": method, "params": params or {}}))

    def close(self) -> None:
        self.ws.close()
