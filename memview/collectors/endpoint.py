"""Polling an HTTP endpoint that reports a service's memory: one GET per sampler tick.

A tick that cannot produce a reading (the service is down, answers 401/500, sends malformed or
oversized JSON, redirects in a loop, takes longer than the timeout, reports NaN) returns a
reading with no values: a gap, never a zero, and never the end of the session. The first
failure of a streak becomes one ``gap`` event with the reason; while the streak lasts the
collector backs off (it lets 0, 1, 3, 7, … ticks pass without a request, up to ``backoff_cap``
seconds) and when the endpoint answers again a ``gap_end`` event says how long it lasted. The
sampler itself keeps its deadline schedule throughout.

Times: a sample's ``t`` is when memview *received* the response (on the recorder's clock), so a
slow endpoint's figures are not placed earlier than they were known. The document's own time,
when it has one, is kept as the ``doc_time`` series (Unix milliseconds).

Credentials (``--header`` values, URL userinfo, secret query values) are used on requests and
kept out of everything this module hands on: :attr:`target`, :meth:`command`, :meth:`meta`
and every event message pass through :mod:`memview.collectors.redact`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from memview.collectors.base import CollectorError, RemoteCollector
from memview.collectors.fetch import Fetcher, FetchError
from memview.collectors.formats import FormatError, Parsed, Reader
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

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_BYTES = 10 * 2**20
TIMEOUT_SHARE = 0.8  # of the interval, when the interval is shorter than DEFAULT_TIMEOUT
#: series one watch session may create. A document's keys (``by_component``, ``stats``) come from
#: the service: one that invents 5,000 new names per tick made 105k series in 10 s. Past the cap,
#: new names are counted and left out (one warning); the series already recorded go on.
MAX_SERIES = 1000
MAX_INVALID_EVENTS = 50  # field_invalid events per session; more are counted


class EndpointCollector(RemoteCollector):
    """Reads one URL per tick into series (``rss`` and whatever else the format yields)."""

    kind = "watch"

    def __init__(
        self,
        url: str,
        interval: float,
        fmt: str = "auto",
        headers: object = None,
        fields: object = None,
        unit: str | None = None,
        metric: str | None = None,
        timeout: float | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        keep_query: tuple[str, ...] = (),
        max_series: int = MAX_SERIES,
    ) -> None:
        if interval <= 0:
            raise CollectorError("the interval must be positive")
        url = check_url(url)
        user_headers = parse_headers(headers)
        sent = {**userinfo_header(url), **user_headers}  # an explicit Authorization header wins
        self.keep_query = tuple(keep_query)
        self.secrets = secrets_of(url, sent, self.keep_query)
        self.target = redact_url(url, self.keep_query)
        self.header_names = sorted(user_headers) + (
            ["Authorization (URL userinfo)"]
            if userinfo_header(url) and "authorization" not in {h.lower() for h in user_headers}
            else []
        )
        if timeout is None:
            timeout = min(DEFAULT_TIMEOUT, interval * TIMEOUT_SHARE)
        elif not 0 < timeout < interval:
            raise CollectorError(f"the timeout ({timeout:g} s) must be above 0 and below the interval ({interval:g} s)")
        if max_bytes <= 0:
            raise CollectorError("the body size cap must be positive")
        try:
            self.reader = Reader(fmt, fields, unit, metric)
        except ValueError as exc:
            raise CollectorError(str(exc)) from None
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.backoff_cap = min(30.0, max(10 * interval, 1.0))
        self._max_skip = max(0, math.ceil(self.backoff_cap / interval) - 1)
        self._fetcher = Fetcher(timeout, max_bytes, max_redirects, sent)
        self._units: dict[str, tuple[str, str]] = {RSS_SERIES: ("bytes", "current usage (endpoint)")}
        self._events: list[Event] = []
        self._skip = 0
        self._streak = 0  # failed requests in the current streak
        self._gap: dict[str, Any] | None = None
        self._bad_fields: set[str] = set()
        self.max_series = max_series
        self._series: set[str] = {RSS_SERIES}
        self.series_dropped = 0  # names left out by the cap (each counted once)
        self.invalid_reported = 0
        self._dropped_names: set[str] = set()
        self.pressure: str | None = None
        self.cancelled = False
        # figures for the session's meta
        self.requests = 0
        self.failures = 0
        self.gaps = 0
        self.latency_total = 0.0
        self.latency_max = 0.0
        self.answered = 0
        self.rss_max = 0
        self.service_peak_max: int | None = None
        self.last_reason: str | None = None

    # -- what the stored session may say about the target --------------------------------------
    def command(self) -> list[str]:
        """The command line to watch this again, with every credential masked."""
        argv = ["memview", "watch", self.target, "--interval", f"{self.interval:g}", "--timeout", f"{self.timeout:g}"]
        if self.reader.requested != "auto":
            argv += ["--format", self.reader.requested]
        if self.reader.selector.text and self.reader.requested == "prometheus":
            argv += ["--metric", self.reader.selector.text]
        for f in self.reader.fields:
            argv += ["--field", f"{f.key}={f.where}"]
        for name in self.header_names:
            if not name.endswith("(URL userinfo)"):
                argv += ["--header", f"{name}: {MASK}"]
        for name in self.keep_query:
            argv += ["--keep-query", name]
        return argv

    def meta(self) -> dict[str, Any]:
        answered = self.answered
        return {
            "url": self.target,
            "format": self.reader.chosen or self.reader.requested,
            "header_names": self.header_names,
            "timeout_s": round(self.timeout, 6),
            "max_body_bytes": self.max_bytes,
            "backoff_cap_s": self.backoff_cap,
            "requests": self.requests,
            "answered": answered,
            "failed_requests": self.failures,
            "gaps": self.gaps,
            "latency_avg_s": round(self.latency_total / answered, 6) if answered else None,
            "latency_max_s": round(self.latency_max, 6) if answered else None,
            "sampled_peak_rss_bytes": self.rss_max or None,
            "service_peak_bytes": self.service_peak_max,
            "last_failure": self.last_reason,
            "series": len(self._series),
            "series_dropped": self.series_dropped,
            "invalid_fields": self.invalid_reported,
        }

    # -- the sampler's calls ---------------------------------------------------------------------
    def read(self, t: float) -> Reading:
        if self._skip > 0:
            self._skip -= 1
            return Reading(t, {})
        start = time.perf_counter()
        self.requests += 1
        try:
            resp = self._fetcher.get(self.url)
            parsed = self.reader.parse(resp.body, resp.content_type)
        except FetchError as exc:
            return self._failed(t, exc.reason, exc.kind, exc.status, start)
        except FormatError as exc:
            return self._failed(t, exc.reason, exc.kind, None, start)
        except Exception as exc:  # a reading must never end the session
            log.exception("reading %s failed", self.target)
            return self._failed(t, f"internal error: {type(exc).__name__}: {exc}", "internal", None, start)
        elapsed = time.perf_counter() - start
        received = t + elapsed
        self._cap_series(received, parsed)
        self._answered(received, parsed, elapsed)
        return Reading(received, parsed.values)

    def _cap_series(self, t: float, parsed: Parsed) -> None:
        """Leave out names beyond :attr:`max_series` (the known ones are a set lookup each)."""
        known = self._series
        new = [name for name in parsed.values if name not in known]
        if not new:
            return
        room = self.max_series - len(known)
        for name in new[max(room, 0) :]:
            del parsed.values[name]
            parsed.units.pop(name, None)
            if name not in self._dropped_names and len(self._dropped_names) < 100_000:
                self._dropped_names.add(name)
                self.series_dropped += 1
        known.update(new[: max(room, 0)])
        if room < len(new) and not getattr(self, "_cap_warned", False):
            self._cap_warned = True
            self._event(
                t,
                "series_cap",
                f"the endpoint reports more than {self.max_series} series: new names "
                "are left out from now on (the series already recorded go on)",
                "warning",
                {"max_series": self.max_series},
            )

    def _answered(self, t: float, parsed: Parsed, elapsed: float) -> None:
        self.answered += 1
        self.latency_total += elapsed
        self.latency_max = max(self.latency_max, elapsed)
        if self._gap is not None:
            gap = self._gap
            self._event(
                t,
                "gap_end",
                f"the endpoint answered again after {t - gap['start_s']:.1f} s ({self._streak} failed requests)",
                "info",
                {
                    "start_s": gap["start_s"],
                    "gap_s": t - gap["start_s"],
                    "failures": self._streak,
                    "reason": gap["reason"],
                    "kind": gap["kind"],
                },
            )
            self._gap = None
        self._streak = 0
        self._units.update(parsed.units)
        rss = parsed.values[RSS_SERIES]
        self.rss_max = max(self.rss_max, rss)
        peak = parsed.values.get("service_peak")
        if peak is not None and (self.service_peak_max is None or peak > self.service_peak_max):
            self.service_peak_max = peak
        if parsed.pressure is not None and parsed.pressure != self.pressure:
            if self.pressure is not None or parsed.pressure != "normal":
                change = f"{self.pressure} -> {parsed.pressure}" if self.pressure else f"{parsed.pressure} at the start"
                self._event(
                    t,
                    "pressure",
                    f"memory pressure {change}",
                    "info" if parsed.pressure == "normal" else "warning",
                    {"from": self.pressure, "to": parsed.pressure, "level": parsed.values.get("pressure")},
                )
            self.pressure = parsed.pressure
        for where, reason in parsed.problems.items():
            if where not in self._bad_fields:
                self.invalid_reported += 1
                if self.invalid_reported <= MAX_INVALID_EVENTS:
                    self._event(
                        t,
                        "field_invalid",
                        f"{reason}: that series has no samples while it lasts",
                        "warning",
                        {"field": where},
                    )
                elif self.invalid_reported == MAX_INVALID_EVENTS + 1:
                    self._event(
                        t,
                        "field_invalid",
                        f"more than {MAX_INVALID_EVENTS} invalid fields: the rest "
                        "are counted in the session's meta (invalid_fields), not reported one by one",
                        "warning",
                        {},
                    )
        self._bad_fields = set(list(parsed.problems)[: self.max_series])

    def _failed(self, t: float, reason: str, kind: str, status: int | None, start: float) -> Reading:
        if kind == "cancelled" or self.cancelled:
            return Reading(t, {})
        self.failures += 1
        self._streak += 1
        reason = scrub_text(reason, self.secrets)
        self.last_reason = reason
        if self._gap is None:
            self.gaps += 1
            self._gap = {"start_s": t, "reason": reason, "kind": kind}
            self._event(
                t,
                "gap",
                f"no reading from the endpoint: {reason} (retrying with backoff)",
                "warning",
                {
                    "reason": reason,
                    "kind": kind,
                    "status": status,
                    "detected_after_s": round(time.perf_counter() - start, 6),
                },
            )
        self._skip = min(2 ** min(self._streak - 1, 30) - 1, self._max_skip)
        return Reading(t, {})

    def _event(self, t: float, kind: str, message: str, level: str, data: dict[str, Any]) -> None:
        message = scrub_text(message, self.secrets)
        data = {k: scrub_text(v, self.secrets) if isinstance(v, str) else v for k, v in data.items()}
        self._events.append(Event(t, kind, message, level, data))

    @property
    def failing(self) -> bool:
        """True while the endpoint is in a failure streak (a gap is open)."""
        return self._gap is not None

    def _transport(self) -> Fetcher:
        return self._fetcher


__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_TIMEOUT", "CollectorError", "EndpointCollector"]
