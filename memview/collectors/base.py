"""The Collector protocol: what the recorder's sampler thread drives.

The methods below are called from one thread at a time (the sampler; after it ended, the
closing thread), so they need no locks. A collector that other threads also query guards that
state itself (the process collector's HWM lock: see docs/architecture.md, "Locks"). ``read``
returns a :class:`~memview.model.Reading` per call, or ``None`` when there is nothing more to
read (the process tree is gone). Anything the recorder should store besides the samples, such as
the processes seen and their exact peaks, the collector keeps and hands over at the end.
"""

from __future__ import annotations

from typing import Protocol

from memview.model import Event, Reading


class CollectorError(Exception):
    """A collector cannot start (no such process, access denied); the message is for the user."""


class Collector(Protocol):
    #: the kind of session this collector records: "run", "attach" or "watch"
    kind: str

    def read(self, t: float) -> Reading | None:
        """One reading at ``t`` seconds since the session start; None when the source is gone.

        A reading with no values is a tick with nothing to read (an endpoint that failed): a gap
        in every series, and the session goes on. The reading's own ``t`` is the samples' time.
        """

    def series_units(self) -> dict[str, tuple[str, str]]:
        """{series: (unit, label)} for the series this collector produced so far."""

    def drain_events(self) -> list[Event]:
        """Events noticed while reading (a gap, a process that appeared); cleared on return."""

    def close(self) -> None:
        """Release what the collector holds (file descriptors, connections)."""


class Cancellable(Protocol):
    """A remote collector's transport (a :class:`~memview.collectors.fetch.Fetcher`, a PromQL client)."""

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class RemoteCollector:
    """What the collectors reading over HTTP (an endpoint, a Prometheus server) share: their series'
    units, their pending events, and a request in flight that stopping may abort from any thread."""

    cancelled = False
    _units: dict[str, tuple[str, str]]
    _events: list[Event]

    def _transport(self) -> Cancellable:
        raise NotImplementedError

    def series_units(self) -> dict[str, tuple[str, str]]:
        return dict(self._units)

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def cancel(self) -> None:
        """Abort the request in flight (any thread): stopping must not wait for a slow server."""
        self.cancelled = True
        self._transport().cancel()

    def close(self) -> None:
        self._transport().close()
