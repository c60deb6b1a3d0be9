"""Watching a service through its HTTP memory endpoint: a session from first request to a closed record.

The shape follows :class:`memview.runner.ProcessSession` so the CLI and the GUI drive both the
same way: ``start`` returns at once with the sampler running, ``.recorder`` is the live session,
``close()`` (idempotent, any thread) stops it — aborting a request in flight rather than waiting
for a slow endpoint — and writes the closing figures.

The session's peak is the larger of two figures, and ``peak_source`` says which:
``"sampled"`` — the highest ``rss`` (the service's *current* usage) memview received, which can
miss a spike between polls; ``"endpoint"`` — the service's own reported peak
(``peak_usage_mb``), which covers the service's whole life, including time before the session.
Both are kept in ``meta`` (``sampled_peak_rss_bytes``, ``service_peak_bytes``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from memview.collectors.base import CollectorError
from memview.collectors.endpoint import DEFAULT_MAX_BYTES, EndpointCollector
from memview.meta import MetaCollector
from memview.model import SOURCE_ENDPOINT, SOURCE_SAMPLED
from memview.recorder import Recorder
from memview.store import Store


class WatchSession:
    """An endpoint recorded into the store; used by ``memview watch`` and the GUI."""

    def __init__(self, recorder: Recorder, collector: EndpointCollector, meta: MetaCollector) -> None:
        self.recorder = recorder
        self.collector = collector
        self.meta = meta
        self.closed = False

    @classmethod
    def start(
        cls,
        url: str,
        store: Store | None,
        interval: float,
        fmt: str = "auto",
        headers: object = None,
        fields: object = None,
        unit: str | None = None,
        metric: str | None = None,
        duration: float | None = None,
        timeout: float | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep_query: tuple[str, ...] = (),
        before_start: Callable[[WatchSession], None] | None = None,
        query: str | None = None,
        max_series: int | None = None,
    ) -> WatchSession:
        """Start polling ``url`` every ``interval`` seconds.

        ``headers``: ``["Name: value", …]`` or a mapping, sent on every request, never stored.
        ``fields``: ``["current=path", …]`` or a mapping, for ``fmt="json"``. Raises
        :class:`~memview.collectors.base.CollectorError` (a one-line message) for bad options.
        ``before_start(session)`` runs before the first request (listeners, triggers).
        ``keep_query``: query parameter names whose values may be stored (all others are masked).
        ``query`` (or a ``prometheus+http://`` URL): ask that Prometheus server this PromQL query
        instead (:mod:`memview.collectors.promql`); a query the server refuses raises at once.
        """
        from memview.collectors.promql import DEFAULT_MAX_SERIES, PromQLCollector, is_prometheus_url

        if query is not None or is_prometheus_url(url):
            if not query:
                raise CollectorError("a prometheus+ URL needs a PromQL query (--query)")
            promql = PromQLCollector(
                url, query, interval, headers=headers, timeout=timeout, max_series=max_series or DEFAULT_MAX_SERIES
            )
            promql.check()
            return cls.start_collector(promql, store, interval, duration=duration, before_start=before_start)
        collector = EndpointCollector(
            url,
            interval,
            fmt=fmt,
            headers=headers,
            fields=fields,
            unit=unit,
            metric=metric,
            timeout=timeout,
            max_bytes=max_bytes,
            keep_query=keep_query,
        )
        return cls.start_collector(collector, store, interval, duration=duration, before_start=before_start)

    @classmethod
    def start_collector(
        cls,
        collector: Any,
        store: Store | None,
        interval: float,
        duration: float | None = None,
        before_start: Callable[[WatchSession], None] | None = None,
    ) -> WatchSession:
        """Start recording any watch-kind collector (an endpoint; a Prometheus query: :mod:`.collectors.promql`)."""
        cwd = os.getcwd()
        recorder = Recorder(
            collector,
            store,
            interval=interval,
            duration=duration,
            session_fields={
                "command": collector.command(),
                "target": collector.target,
                "cwd": cwd,
            },
        )
        meta = MetaCollector(cwd)
        session = cls(recorder, collector, meta)
        if before_start:
            before_start(session)
        meta.start()
        recorder.start()
        return session

    def peak_fields(self) -> dict[str, Any]:
        """The session's peak and where it came from (see the module doc)."""
        sampled = self.recorder.stats.max or None
        service = self.collector.service_peak_max
        if service is not None and (sampled is None or service >= sampled):  # a tie: the service's own figure
            return {"peak_rss_bytes": service, "peak_source": SOURCE_ENDPOINT}
        return {"peak_rss_bytes": sampled, "peak_source": SOURCE_SAMPLED}

    def close(self, status: str | None = None) -> None:
        """Stop (aborting a request in flight) and close the session in the store (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.recorder.stop()
        self.collector.cancel()
        self.recorder.wait()
        fields = self.peak_fields()
        stats = self.recorder.stats
        fields["meta"] = (
            self.meta.result()
            | {"watch": self.collector.meta()}
            | {
                "stop_reason": self.recorder.stop_reason,
                "late_samples": stats.late,
                "max_late_s": round(stats.max_late, 6),
            }
        )
        self.recorder.close(status or "completed", **fields)


__all__ = ["WatchSession"]
