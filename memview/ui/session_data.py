"""A stored session, read in one go for display (runs on the database worker, never the UI thread).

The view shows a stored session exactly like a live one; this is the stored side of that: the
summary (the same JSON ``memview show --json`` prints) and every plottable series as numpy
columns, so the view only copies arrays into its buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memview.analysis import session_summary
from memview.store import Store

#: Series the view can draw; others (e.g. jemalloc internals) stay in the store and the bundle.
PLOTTED_PREFIXES = ("rss", "pid:", "component:", "service_peak", "pressure", "prom:")


@dataclass(slots=True)
class SessionData:
    summary: dict[str, Any]
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def session_id(self) -> int:
        return int(self.summary["session_id"])


def load_session(store: Store, sid: int, with_series: bool = True) -> SessionData:
    """Summary, events and (optionally) all plotted series of session ``sid``."""
    summary = session_summary(store, sid)
    data = SessionData(summary=summary, units=store.series_units(sid), events=store.events(sid))
    if with_series:
        for name in store.series_names(sid):
            if not name.startswith(PLOTTED_PREFIXES):
                continue
            times, values = store.load_series(sid, name)
            data.series[name] = (np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64))
    return data
