"""``memview profile … --pushgateway URL``: each case's footprint pushed into the team's Prometheus.

CI jobs end before any Prometheus could scrape them, so the results go through a Pushgateway
(the tool Prometheus provides for batch jobs). One push per record of the results document,
grouped by ``job`` = the case's name and ``instance`` = its input (``-`` for a case without one),
so each case/input keeps its own latest figures and a later run replaces them (a PUT: a phase
that no longer exists does not linger). The metrics:

- ``memview_profile_peak_rss_bytes``, ``memview_profile_avg_rss_bytes``,
  ``memview_profile_final_rss_bytes``, ``memview_profile_wall_seconds``;
- ``memview_profile_ok`` (1 when the run exited 0), ``memview_profile_timestamp_seconds``;
- ``memview_profile_phase_peak_rss_bytes{phase}``, ``memview_profile_phase_growth_bytes{phase}``
  and ``memview_profile_phase_duration_seconds{phase}`` (repeated phase names numbered
  ``load``, ``load#2``, as the baseline names them);

each also labelled with the case's ``backend``. Pushing happens after the results JSON is
written, so a Pushgateway that is down costs the push, never the results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

NO_INPUT_INSTANCE = "-"


class PushError(Exception):
    """The push did not reach the Pushgateway; the message is one line for the user."""


def registry_for(record: dict[str, Any], now: float | None = None) -> Any:
    """The metrics of one results record, in a registry of their own."""
    from prometheus_client import CollectorRegistry, Gauge

    from memview.results import phase_peaks

    reg = CollectorRegistry()
    backend = str(record.get("backend") or "")
    families: dict[str, Gauge] = {}

    def gauge(name: str, doc: str, value: Any, labels: dict[str, str] | None = None) -> None:
        if value is None:
            return
        g = families.get(name)
        if g is None:
            g = families[name] = Gauge(name, doc, ["backend", *(labels or {})], registry=reg)
        g.labels(backend, *(labels or {}).values()).set(value)

    gauge(
        "memview_profile_peak_rss_bytes",
        "the run's peak RSS (the kernel's exact figure where it has one)",
        record.get("peak_rss_bytes"),
    )
    gauge("memview_profile_avg_rss_bytes", "the run's average sampled RSS", record.get("avg_rss_bytes"))
    gauge("memview_profile_final_rss_bytes", "the last sampled RSS", record.get("final_rss_bytes"))
    gauge("memview_profile_wall_seconds", "the run's wall time", record.get("wall_s"))
    gauge("memview_profile_ok", "1 when the run exited 0", 1 if record.get("ok") else 0)
    gauge("memview_profile_timestamp_seconds", "when memview pushed these figures", time.time() if now is None else now)
    phases = record.get("phases") or []
    for key, ph in zip(phase_peaks(phases), phases):
        label = {"phase": key}
        gauge("memview_profile_phase_peak_rss_bytes", "each phase's own peak RSS", ph.get("peak_rss_bytes"), label)
        gauge(
            "memview_profile_phase_growth_bytes",
            "RSS at a phase's end minus at its start",
            ph.get("growth_bytes"),
            label,
        )
        gauge("memview_profile_phase_duration_seconds", "each phase's duration", ph.get("duration_s"), label)
    return reg


def grouping(record: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(job, {"instance": …}) for one record: the case and its input."""
    return str(record["case"]), {"instance": str(record.get("input") or NO_INPUT_INSTANCE)}


def check_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"--pushgateway wants an http(s):// URL (got {url!r})")
    return url.strip().rstrip("/")


def push_results(url: str, results: dict[str, Any], timeout: float = 10.0) -> int:
    """Push every record of a results document; returns how many were pushed, or raises PushError."""
    from prometheus_client import push_to_gateway

    url = check_url(url)
    pushed = 0
    for record in results.get("records") or []:
        job, key = grouping(record)
        try:
            push_to_gateway(url, job=job, registry=registry_for(record), grouping_key=key, timeout=timeout)
        except OSError as exc:  # URLError and HTTPError are OSErrors
            reason = getattr(exc, "reason", None) or exc.strerror or exc
            raise PushError(
                f"cannot push {job} {key['instance']} to {url}: {reason} ({pushed} of {len(results['records'])} pushed)"
            ) from None
        pushed += 1
    return pushed


def push_and_tell(
    url: str, results: dict[str, Any], progress: Callable[[str], None], error: Callable[[str], None]
) -> bool:
    """The CLI's push: says what happened in one line; False when the push failed (the results are kept)."""
    try:
        n = push_results(url, results)
    except PushError as exc:
        error(str(exc))
        return False
    progress(f"pushed {n} record(s) to {url}")
    return True


__all__ = ["PushError", "grouping", "push_and_tell", "push_results", "registry_for"]
