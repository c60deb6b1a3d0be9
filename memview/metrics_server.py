"""``--serve-metrics HOST:PORT``: the live recording as OpenMetrics, for a Prometheus server to scrape.

A desktop monitor becomes one agent of many: run ``memview run|attach|watch --serve-metrics``
on each machine, point Prometheus at them, and Grafana shows the fleet
(``resources/grafana/memview-fleet.json``).

It is a recorder listener, and like every listener it must never slow the sampler: ``on_batch``
keeps only the last value of each series (one dict per batch, swapped in whole), and all the
work of a scrape — formatting, process names — happens on the HTTP server's own thread, which
blocks every signal so a SIGCHLD or SIGTERM meant for memview's main thread never lands there.

What it serves (``/metrics``, always OpenMetrics 1.0):

- ``memview_rss_bytes`` — the recording's total (the process tree, or a watch's current usage);
- ``memview_process_rss_bytes{pid,name}`` — each live process of the tree;
- ``memview_series_value{series}`` — any other series (an endpoint's fields, a PromQL label set);
- ``memview_peak_rss_bytes`` — the session's highest sampled total so far;
- ``memview_phase_info{phase,depth}`` — the phases open now (an info metric, one per open phase);
- ``memview_samples_total``, ``memview_captures_total``, ``memview_late_samples_total`` and
  ``memview_sampler_max_lateness_seconds`` — how the recording itself is doing;
- ``memview_session_info{session_id,kind,target}``.

The address is loopback unless the user names another host: a bare ``9464`` binds 127.0.0.1.
Port 0 picks a free port; :attr:`MetricsServer.url` says which.
"""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from memview.model import RSS_SERIES, Batch, Capture, Event, Phase

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
DEFAULT_HOST = "127.0.0.1"


class MetricsServerError(Exception):
    """The address cannot be served (bad spelling, port in use); the message is for the user."""


def parse_address(text: str) -> tuple[str, int]:
    """``"9464"``, ``":9464"``, ``"127.0.0.1:9464"``, ``"[::1]:9464"``, ``"0.0.0.0:9464"`` -> (host, port)."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        raise MetricsServerError(f"--serve-metrics wants HOST:PORT or PORT (got {text!r})") from None
    if not 0 <= port <= 65535:
        raise MetricsServerError(f"--serve-metrics: port {port} is out of range")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _State:
    """What a scrape reads: replaced or updated by the recorder's threads, read by the server's."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.open_phases: list[tuple[str, int]] = []
        self.captures: set[int] = set()
        self.recorder: Any = None


class _Collector:
    """A prometheus_client collector built fresh from the state at each scrape."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self._names: dict[int, str] = {}

    def _name(self, pid: int) -> str:
        name = self._names.get(pid)
        if name is None:
            try:
                import psutil

                name = psutil.Process(pid).name()
            except Exception:  # gone, or not ours to read: the pid still identifies it
                name = ""
            self._names[pid] = name
        return name

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            InfoMetricFamily,
        )

        st = self.state
        rec = st.recorder
        last = st.last
        if rec is not None:
            from memview.redact import redact_text

            # what leaves the machine loses credentials, as in a bundle: "--token abc" -> "<redacted>"
            target, _hidden = redact_text(str(rec.fields.get("target") or ""))
            info = InfoMetricFamily(
                "memview_session", "the recording this agent serves", labels=["session_id", "kind", "target"]
            )
            info.add_metric([str(rec.session_id), str(rec.fields.get("kind", "")), target], {})
            yield info
        total = GaugeMetricFamily(
            "memview_rss_bytes", "the recording's current total (process tree or watched service)", unit="bytes"
        )
        if RSS_SERIES in last:
            total.add_metric([], last[RSS_SERIES])
        yield total
        procs = GaugeMetricFamily(
            "memview_process_rss_bytes", "RSS of each live process in the tree", labels=["pid", "name"], unit="bytes"
        )
        other = GaugeMetricFamily(
            "memview_series_value", "the last value of each other recorded series", labels=["series"]
        )
        for series, value in sorted(last.items()):
            if series.startswith("pid:"):
                pid = int(series[4:])
                procs.add_metric([str(pid), self._name(pid)], value)
            elif series != RSS_SERIES:
                other.add_metric([series], value)
        if len(self._names) > 4 * len(last) + 64:  # a build spawns thousands of short processes
            self._names = {pid: n for pid, n in self._names.items() if f"pid:{pid}" in last}
        yield procs
        yield other
        phases = InfoMetricFamily("memview_phase", "the phases open now", labels=["phase", "depth"])
        for name, depth in list(st.open_phases):
            phases.add_metric([name, str(depth)], {})
        yield phases
        yield CounterMetricFamily("memview_captures", "captures started in this session", value=len(st.captures))
        if rec is not None:
            stats = rec.stats
            yield GaugeMetricFamily(
                "memview_peak_rss_bytes", "the highest total sampled so far", value=stats.max, unit="bytes"
            )
            yield CounterMetricFamily("memview_samples", "samples of the total taken", value=stats.count)
            yield CounterMetricFamily(
                "memview_late_samples", "samples taken more than half an interval late", value=stats.late
            )
            yield GaugeMetricFamily(
                "memview_sampler_max_lateness_seconds",
                "the latest a sample has been",
                value=stats.max_late,
                unit="seconds",
            )


class MetricsServer:
    """Binds at construction (so a bad address fails before anything starts); serves after :meth:`attach`."""

    def __init__(self, address: str) -> None:
        from prometheus_client import CollectorRegistry

        host, port = parse_address(address)
        self.state = _State()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self.state))
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                from prometheus_client.openmetrics.exposition import generate_latest

                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics is served here")
                    return
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:  # scrapes are not news
                pass

        try:
            server_cls = ThreadingHTTPServer
            if ":" in host:
                import socket

                class V6(ThreadingHTTPServer):
                    address_family = socket.AF_INET6

                server_cls = V6
            self.httpd = server_cls((host, port), Handler)
        except OSError as exc:
            raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        self.public = not is_loopback(host)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def attach(self, recorder: Any) -> None:
        """Serve ``recorder``'s session (call before it starts, e.g. in ``before_start``)."""
        self.state.recorder = recorder
        recorder.add_listener(self)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="memview-metrics", daemon=True)
            self._thread.start()

    def attach_session(self, session: Any) -> None:
        """``before_start`` hook form of :meth:`attach` (a session has ``.recorder``)."""
        self.attach(session.recorder)

    def _serve(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.Signals))  # signals are the main thread's
        self.httpd.serve_forever(poll_interval=0.5)

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread = None
        self.httpd.server_close()

    # -- the recorder listener: O(series) per batch, nothing else --------------------------------
    def on_batch(self, batch: Batch) -> None:
        last = dict(self.state.last)
        for name, (_times, values) in batch.series.items():
            if values:
                last[name] = values[-1]
        if not any(k.startswith("pid:") for k in batch.series):
            self.state.last = last
            return
        # a process missing from the newest batch has exited: drop it rather than serve a stale RSS
        self.state.last = {k: v for k, v in last.items() if not k.startswith("pid:") or k in batch.series}

    def on_event(self, event: Event) -> None:
        if event.kind == "phase_start":
            self.state.open_phases = [
                *self.state.open_phases,
                (str(event.data.get("name", event.message)), int(event.data.get("depth", 0))),
            ]

    def on_phase(self, phase: Phase) -> None:
        phases = list(self.state.open_phases)
        key = (phase.name, phase.depth)
        if key in phases:
            phases.remove(key)
        self.state.open_phases = phases

    def on_capture(self, capture: Capture) -> None:
        self.state.captures.add(id(capture))


__all__ = ["MetricsServer", "MetricsServerError", "parse_address"]
