"""One HTTP GET with a hard total deadline, a capped body and bounded redirects (stdlib only).

A socket timeout bounds each ``recv``, not the request: a server that drips its headers a byte
at a time would hold the sampler forever. So a small watchdog thread holds a duplicate of the
connection's socket and shuts it down when the request's deadline passes (or when
:meth:`Fetcher.cancel` is called from another thread, which is how a Ctrl-C stops a request in
flight). The body is read in chunks and abandoned as soon as it passes the cap. Redirects are
followed up to a limit; a URL seen twice is a loop. User headers are dropped when a redirect
leaves the origin, as curl and requests do, so a token is never handed to another host.

Every failure is a :class:`FetchError` with a one-line reason for the user; nothing else escapes.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from memview import __version__
from memview.collectors.redact import redact_url

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_ERROR_BODY = 4096


class FetchError(Exception):
    """A request that did not give a usable response; ``kind`` is a stable short name."""

    def __init__(self, reason: str, kind: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status
        self.body = b""  # the start of an error response's body (an API's own error message)


@dataclass(slots=True)
class Response:
    status: int
    content_type: str
    body: bytes
    url: str  # the final URL after redirects, redacted
    elapsed: float


class _Watchdog:
    """Aborts the armed request when its deadline passes; one thread per fetcher, started lazily."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._deadline: float | None = None
        self._closed = False
        self.fired = False
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, deadline: float) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memview-fetch-watchdog", daemon=True)
                self._thread.start()
            self._sock, self._deadline, self.fired = sock, deadline, False
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._sock = self._deadline = None

    def abort(self) -> None:
        """Shut the armed connection now (any thread)."""
        with self._cond:
            self._shutdown()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _shutdown(self) -> None:  # with the lock held
        if self._sock is not None:
            self.fired = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock = self._deadline = None

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left <= 0:
                    self._shutdown()
                else:
                    self._cond.wait(left)


class Fetcher:
    """GETs one URL per call; not shared between threads except for :meth:`cancel`."""

    def __init__(
        self, timeout: float, max_bytes: int, max_redirects: int = 5, headers: dict[str, str] | None = None
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.headers = dict(headers or {})
        self._watchdog = _Watchdog()
        self._cancelled = False
        self._context: ssl.SSLContext | None = None

    def cancel(self) -> None:
        """Abort the request in flight, if any, and every later one (from any thread)."""
        self._cancelled = True
        self._watchdog.abort()

    def close(self) -> None:
        self._watchdog.close()

    def get(self, url: str) -> Response:
        start = time.monotonic()
        deadline = start + self.timeout
        seen = [url]
        headers = self.headers
        origin = _origin(url)
        while True:
            status, ctype, location, body = self._one(url, headers, deadline)
            if status not in REDIRECTS:
                break
            if not location:
                raise FetchError(f"HTTP {status} redirect without a Location header", "bad_redirect", status)
            nxt = urljoin(url, location)
            if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                raise FetchError(f"redirected to a non-HTTP URL ({redact_url(nxt)})", "bad_redirect", status)
            if nxt in seen:
                chain = " -> ".join(urlsplit(u).path or "/" for u in [*seen[seen.index(nxt) :], nxt])
                raise FetchError(f"redirect loop ({chain})", "redirect_loop", status)
            if len(seen) > self.max_redirects:
                raise FetchError(f"more than {self.max_redirects} redirects", "redirect_loop", status)
            seen.append(nxt)
            if _origin(nxt) != origin:
                headers = {}  # never hand the user's credentials to another host
            url = nxt
        if not 200 <= status < 300:
            hint = ""
            if status in (401, 403):
                hint = (
                    " (does the endpoint need a --header 'Authorization: …'?)"
                    if not headers
                    else " (the credentials given were refused)"
                )
            error = FetchError(f"HTTP {status} {_reason_phrase(status)}{hint}", "http_status", status)
            error.body = body
            raise error
        if not body:
            raise FetchError(f"HTTP {status} with an empty body", "empty", status)
        return Response(status, ctype, body, redact_url(url), time.monotonic() - start)

    # -- one request ---------------------------------------------------------------------------
    def _one(self, url: str, headers: dict[str, str], deadline: float) -> tuple[int, str, str | None, bytes]:
        if self._cancelled:
            raise FetchError("cancelled", "cancelled")
        self._watchdog.fired = False
        parts = urlsplit(url)
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError(f"timed out after {self.timeout:g} s", "timeout")
        host = parts.hostname or ""
        if parts.scheme.lower() == "https":
            if self._context is None:
                self._context = ssl.create_default_context()
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port, timeout=left, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(host, parts.port, timeout=left)
        dup: list[socket.socket] = []
        create = conn._create_connection  # type: ignore[attr-defined]

        def create_and_arm(*args: object, **kw: object) -> socket.socket:
            sock = create(*args, **kw)
            handle = sock.dup()  # shutting down a dup aborts the connection, TLS-wrapped or not
            dup.append(handle)
            self._watchdog.arm(handle, deadline)
            return sock

        conn._create_connection = create_and_arm  # type: ignore[attr-defined]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        send = {
            "User-Agent": f"memview/{__version__}",
            "Accept": "application/json, text/plain;q=0.9, */*;q=0.5",
            "Connection": "close",
            **headers,
        }
        resp: http.client.HTTPResponse | None = None
        try:
            conn.request("GET", path, headers=send)
            resp = conn.getresponse()
            status = resp.status
            ctype = resp.getheader("Content-Type", "") or ""
            if status in REDIRECTS:
                return status, ctype, resp.getheader("Location"), b""
            if not 200 <= status < 300:  # keep the start of the body: APIs explain their errors there
                return status, ctype, None, resp.read(_ERROR_BODY) if deadline > time.monotonic() else b""
            return status, ctype, None, self._read_body(resp, deadline)
        except FetchError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise self._error(exc, parts.hostname or "", parts.port) from None
        finally:
            self._watchdog.disarm()
            if resp is not None:  # with "Connection: close" the response owns the socket's file: close it,
                resp.close()  # or the socket is freed (and warned about) whenever the collector runs
            conn.close()
            for handle in dup:
                handle.close()

    def _read_body(self, resp: http.client.HTTPResponse, deadline: float) -> bytes:
        length = resp.getheader("Content-Length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            raise FetchError(
                f"response body of {int(length):,} bytes is larger than the {self.max_bytes:,}-byte cap", "too_large"
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            if time.monotonic() > deadline:
                raise FetchError(f"timed out after {self.timeout:g} s", "timeout")
            chunk = resp.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > self.max_bytes:
                raise FetchError(
                    f"response body larger than the {self.max_bytes:,}-byte cap (stopped reading)", "too_large"
                )
            chunks.append(chunk)
        if self._watchdog.fired:  # a shut-down socket reads as a clean end of a close-delimited body
            raise self._error(TimeoutError(), "", None)
        return b"".join(chunks)

    def _error(self, exc: BaseException, host: str, port: int | None) -> FetchError:
        if self._cancelled:
            return FetchError("cancelled", "cancelled")
        if self._watchdog.fired or isinstance(exc, (TimeoutError, socket.timeout)):
            return FetchError(f"timed out after {self.timeout:g} s", "timeout")
        where = f"{host}:{port}" if port else host
        if isinstance(exc, ConnectionRefusedError):
            return FetchError(f"connection refused by {where} (is the service running?)", "refused")
        if isinstance(exc, socket.gaierror):
            return FetchError(f"cannot resolve the host {host!r}", "dns")
        if isinstance(exc, ssl.SSLError):
            return FetchError(f"TLS error: {getattr(exc, 'reason', None) or exc}", "tls")
        if isinstance(exc, http.client.RemoteDisconnected):
            return FetchError("the server closed the connection without answering", "disconnected")
        if isinstance(exc, (http.client.IncompleteRead, ConnectionResetError, BrokenPipeError)):
            return FetchError("the connection was cut before the response was complete", "disconnected")
        if isinstance(exc, http.client.HTTPException):
            return FetchError(f"malformed HTTP response ({type(exc).__name__})", "bad_http")
        if isinstance(exc, OSError):
            return FetchError(f"connection to {where} failed: {exc.strerror or exc}", "connection")
        return FetchError(f"request failed: {exc}", "connection")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _reason_phrase(status: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(status).phrase
    except ValueError:
        return ""
