"""Reading a fleet's memory from a Prometheus server through its HTTP API (PromQL).

Our users' services already have their memory collected by Prometheus; memview asks the server
instead of polling every machine. Two ways, one stored shape:

- **live** (:class:`PromQLCollector`): an instant query (``/api/v1/query``) at each sampler tick;
- **a past window** (:func:`record_window`): one ``/api/v1/query_range`` over ``--start/--end``,
  written as one finished session.

Either way each returned label set is its own series, named ``prom:`` and the label set as PromQL
prints it (``prom:process_resident_memory_bytes{instance="a:9464",job="app"}``; its legend is the
label set), and ``rss`` is the sum of the
series that answered at that moment (the fleet's total), so summaries, the library and ``compare``
treat the session like any other. The API sends values as strings ("123456", "NaN", "+Inf"):
they are parsed, and a value that is not a finite number is a gap in its series, never a zero.
A label set that stops answering is a gap in its series (``series_gone`` / ``series_back``
events say when). A query that matches thousands of series is capped (``max_series``, the
label sets seen first are kept) with one warning, so a typo like ``{job=~".+"}`` cannot flood the
database. The server's own error text for bad PromQL is what the user sees, on one line.

Credentials (``--header``, URL userinfo) go through :mod:`memview.collectors.redact` exactly as
for an endpoint: used on requests, never stored.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from memview.collectors.base import CollectorError, RemoteCollector
from memview.collectors.fetch import Fetcher, FetchError
from memview.collectors.redact import (
    MASK,
    check_url,
    parse_headers,
    redact_url,
    scrub_text,
    secrets_of,
    userinfo_header,
)
from memview.model import RSS_SERIES, Event, Reading

#: the URL prefix that says "this is a Prometheus server, ask it PromQL"
SCHEME_PREFIX = "prometheus+"
SERIES_PREFIX = "prom:"
DEFAULT_MAX_SERIES = 100
DEFAULT_MAX_BYTES = 50 * 2**20  # a window of 100 series x 11,000 points is ~30 MiB of JSON
#: Prometheus refuses a range query of more than 11,000 points per series
MAX_POINTS = 11_000


class PromQLError(Exception):
    """The server answered, but refused the query; ``message`` is its own explanation, one line."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


def is_prometheus_url(url: str) -> bool:
    """True for ``prometheus+http(s)://…``: a server to ask PromQL, not an endpoint to poll."""
    return url.strip().lower().startswith(SCHEME_PREFIX)


def server_url(url: str) -> str:
    """The server's plain http(s) base URL (``prometheus+`` dropped, no trailing slash)."""
    url = url.strip()
    if is_prometheus_url(url):
        url = url[len(SCHEME_PREFIX) :]
    url = check_url(url)
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def label_text(metric: dict[str, str]) -> str:
    """A label set as PromQL prints it: ``name{a="x",b="y"}`` (labels sorted): the legend of its series."""
    name = metric.get("__name__", "")
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}"


def series_name(metric: dict[str, str]) -> str:
    """The stored series of a label set: ``prom:`` + :func:`label_text` (the GUI draws ``prom:`` as lines)."""
    return SERIES_PREFIX + label_text(metric)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_value(text: Any) -> int | None:
    """A sample value as the API sends it (a string) in bytes; None when it is not a finite number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    return round(value)


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PromQLClient:
    """The two API calls memview needs, with the endpoint fetcher's deadline, body cap and redaction."""

    def __init__(
        self, url: str, headers: object = None, timeout: float = 5.0, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.base = server_url(url)
        user_headers = parse_headers(headers)
        sent = {**userinfo_header(self.base), **user_headers}
        self.secrets = secrets_of(self.base, sent)
        self.target = SCHEME_PREFIX + redact_url(self.base)
        self.header_names = sorted(user_headers)
        self.fetcher = Fetcher(timeout, max_bytes, 5, sent)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query: ``[{"metric": {...}, "value": [ts, "v"]}, …]`` (scalars as one series)."""
        data = self._get("/api/v1/query", {"query": promql})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar" and isinstance(result, list):
            return [{"metric": {}, "value": result}]
        if kind != "vector" or not isinstance(result, list):
            raise PromQLError(
                f"it returns a {kind}, not an instant vector (a range selector like [5m] "
                "needs a function such as max_over_time)",
                "result_type",
            )
        return result

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query: ``[{"metric": {...}, "values": [[ts, "v"], …]}, …]``."""
        data = self._get(
            "/api/v1/query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        )
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PromQLError(f"it returns a {data.get('resultType')}, not a range of series", "result_type")
        return data["result"]

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base}{path}?{urlencode(params)}"
        try:
            body = self.fetcher.get(url).body
        except FetchError as exc:
            explained = self._api_error(exc.body) if exc.status else None
            if explained is not None:
                raise explained from None
            raise FetchError(scrub_text(exc.reason, self.secrets), exc.kind, exc.status) from None
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise FetchError("the server's answer is not JSON (is this a Prometheus server?)", "format") from None
        if not isinstance(doc, dict) or doc.get("status") != "success" or not isinstance(doc.get("data"), dict):
            raise self._api_error(body) or FetchError("the server's answer is not a Prometheus API response", "format")
        return doc["data"]

    def _api_error(self, body: bytes) -> PromQLError | None:
        """The server's explanation from an error body (``{"status":"error","error":…}``), if it has one."""
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(doc, dict) or doc.get("status") != "error":
            return None
        kind = str(doc.get("errorType") or "error")
        return PromQLError(scrub_text(one_line(f"{kind}: {doc.get('error', '')}"), self.secrets), kind)

    def cancel(self) -> None:
        self.fetcher.cancel()

    def close(self) -> None:
        self.fetcher.close()


@dataclass(slots=True)
class SeriesCap:
    """Which label sets a session keeps when a query matches more than ``limit``."""

    limit: int
    kept: set[str]
    dropped: set[str]

    def admit(self, name: str) -> bool:
        if name in self.kept:
            return True
        if len(self.kept) < self.limit:
            self.kept.add(name)
            return True
        self.dropped.add(name)
        return False


def cap_event(t: float, cap: SeriesCap, returned: int) -> Event:
    return Event(
        t,
        "series_capped",
        f"the query returned {returned} series; keeping {cap.limit} (--max-series), the rest are not recorded",
        "warning",
        {"returned": returned, "kept": cap.limit},
    )


class PromQLCollector(RemoteCollector):
    """Asks a Prometheus server one instant query per sampler tick; one series per label set."""

    kind = "watch"

    def __init__(
        self,
        url: str,
        query: str,
        interval: float,
        headers: object = None,
        timeout: float | None = None,
        max_series: int = DEFAULT_MAX_SERIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if interval <= 0:
            raise CollectorError("the interval must be positive")
        if not query.strip():
            raise CollectorError("--query is empty")
        if max_series <= 0:
            raise CollectorError("--max-series must be above 0")
        if timeout is None:
            timeout = min(5.0, interval * 0.8)
        elif not 0 < timeout < interval:
            raise CollectorError(f"the timeout ({timeout:g} s) must be above 0 and below the interval ({interval:g} s)")
        self.client = PromQLClient(url, headers, timeout, max_bytes)
        self.query = query
        self.interval = interval
        self.timeout = timeout
        self.target = self.client.target
        self.cap = SeriesCap(max_series, set(), set())
        self._units: dict[str, tuple[str, str]] = {RSS_SERIES: ("bytes", "sum of the query's series")}
        self._events: list[Event] = []
        self._present: set[str] = set()
        self._capped_warned = False
        self._gap: float | None = None
        self.cancelled = False
        self.requests = self.answered = self.failures = 0
        self.rss_max = 0
        self.service_peak_max: int | None = None  # WatchSession reads it; a fleet has no "own peak"
        self.last_reason: str | None = None

    def check(self) -> None:
        """One query before the session starts: bad PromQL is the user's error at once, not a gap."""
        try:
            self.client.query(self.query)
        except PromQLError as exc:
            raise CollectorError(refused(exc)) from None
        except FetchError:
            pass  # the server is down now: the session records gaps until it answers

    def command(self) -> list[str]:
        argv = ["memview", "watch", self.target, "--query", self.query, "--interval", f"{self.interval:g}"]
        for name in self.client.header_names:
            argv += ["--header", f"{name}: {MASK}"]
        return argv

    def meta(self) -> dict[str, Any]:
        return {
            "url": self.target,
            "format": "promql",
            "query": self.query,
            "header_names": self.client.header_names,
            "requests": self.requests,
            "answered": self.answered,
            "failed_requests": self.failures,
            "series_kept": len(self.cap.kept),
            "series_dropped": len(self.cap.dropped),
            "max_series": self.cap.limit,
            "sampled_peak_rss_bytes": self.rss_max or None,
            "service_peak_bytes": None,
            "last_failure": self.last_reason,
        }

    def read(self, t: float) -> Reading:
        start = time.perf_counter()
        self.requests += 1
        try:
            result = self.client.query(self.query)
        except (FetchError, PromQLError) as exc:
            return self._failed(t, getattr(exc, "reason", None) or str(exc))
        received = t + time.perf_counter() - start
        self.answered += 1
        if self._gap is not None:
            self._events.append(
                Event(
                    received,
                    "gap_end",
                    f"the server answered again after {received - self._gap:.1f} s",
                    "info",
                    {"start_s": self._gap},
                )
            )
            self._gap = None
        values: dict[str, int] = {}
        for item in result:
            name = series_name(item.get("metric") or {})
            value = item.get("value")
            if not self.cap.admit(name):
                continue
            parsed = parse_value(value[1]) if isinstance(value, list) and len(value) == 2 else None
            if parsed is not None:
                values[name] = parsed
        if self.cap.dropped and not self._capped_warned:
            self._capped_warned = True
            self._events.append(cap_event(received, self.cap, len(result)))
        self._track(received, set(values))
        for name in values:
            self._units.setdefault(name, ("bytes", name[len(SERIES_PREFIX) :]))
        if values:
            values[RSS_SERIES] = total = sum(values.values())
            self.rss_max = max(self.rss_max, total)
        return Reading(received, values)

    def _track(self, t: float, now: set[str]) -> None:
        for name in sorted(self._present - now):
            self._events.append(
                Event(t, "series_gone", f"{name} stopped answering (a gap in its series)", "warning", {"series": name})
            )
        for name in sorted(now - self._present):
            if name in self._units:  # seen before: it is back
                self._events.append(Event(t, "series_back", f"{name} answers again", "info", {"series": name}))
        self._present = now

    def _failed(self, t: float, reason: str) -> Reading:
        if self.cancelled:
            return Reading(t, {})
        self.failures += 1
        self.last_reason = reason
        if self._gap is None:
            self._gap = t
            self._events.append(
                Event(t, "gap", f"no answer from the Prometheus server: {reason}", "warning", {"reason": reason})
            )
        self._present = set()
        return Reading(t, {})

    def _transport(self) -> PromQLClient:
        return self.client


def refused(exc: PromQLError) -> str:
    if exc.kind == "result_type":
        return f"cannot record this query: {exc.message}"
    return f"Prometheus refused the query: {exc.message}"


__all__ = [
    "DEFAULT_MAX_SERIES",
    "PromQLClient",
    "PromQLCollector",
    "PromQLError",
    "SeriesCap",
    "cap_event",
    "is_prometheus_url",
    "label_text",
    "parse_value",
    "refused",
    "series_name",
    "server_url",
]
