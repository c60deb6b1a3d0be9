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
from memview.ui.envelope import MIN_SAMPLES, Envelope, with_gaps
from memview.ui.series_buffer import series_stats

#: Series the view can draw; others (e.g. jemalloc internals) stay in the store and the bundle.
PLOTTED_PREFIXES = ("rss", "pid:", "component:", "service_peak", "pressure", "prom:")


@dataclass(slots=True)
class SessionData:
    summary: dict[str, Any]
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    envelopes: dict[str, Envelope] = field(default_factory=dict)  # long series, computed here (not on the UI thread)
    stats: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # (max, its time, sum)

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
    add_envelopes(data)
    return data


def add_envelopes(data: SessionData) -> None:
    """Min/max pyramids for the long series the plot draws as curves (total and per process), and
    every series' figures, so the UI thread scans none of them."""
    gaps = [(g["start_s"], g["end_s"], g.get("reason") or "") for g in data.summary.get("gaps") or []]
    for name, (t, v) in data.series.items():
        if len(t):
            data.stats[name] = series_stats(t, v)
        if (name == "rss" or name.startswith("pid:")) and len(t) >= MIN_SAMPLES:
            data.envelopes[name] = Envelope(*with_gaps(t, v, gaps))
