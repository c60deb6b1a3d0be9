"""A stored session, read for display (runs on the database worker, never the UI thread).

The view shows a stored session exactly like a live one; this is the stored side of that: the
summary (the same JSON ``memview show --json`` prints) and every plottable series as numpy
columns, so the view only copies arrays into its buffers. A series of MIN_SAMPLES or more (a day
at 1 kHz is 86 million) is not read whole: its figures come from the chunks' bounds and its
columns are the overview of a :class:`~memview.ui.envelope.StoredEnvelope`, which reads the
visible range from the store as the view moves; what memview holds stays bounded at any length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memview.analysis import session_summary
from memview.store import Store
from memview.ui.envelope import MIN_SAMPLES, OVERVIEW_COLUMNS, StoredEnvelope, WindowReader
from memview.ui.series_buffer import series_stats

#: Series the view can draw; others (e.g. jemalloc internals) stay in the store and the bundle.
PLOTTED_PREFIXES = ("rss", "pid:", "component:", "service_peak", "pressure", "prom:")


@dataclass(slots=True)
class SessionData:
    summary: dict[str, Any]
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    units: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    envelopes: dict[str, StoredEnvelope] = field(default_factory=dict)  # long series, read per view
    stats: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # (max, its time, sum)

    @property
    def session_id(self) -> int:
        return int(self.summary["session_id"])


def load_session(store: Store, sid: int, with_series: bool = True) -> SessionData:
    """Summary, events and (optionally) the plotted series of session ``sid``: short ones whole,
    long ones (total and per process) as an overview read per view (see the module docstring)."""
    summary = session_summary(store, sid)
    data = SessionData(summary=summary, units=store.series_units(sid), events=store.events(sid))
    if not with_series:
        return data
    gaps = [(g["start_s"], g["end_s"], g.get("reason") or "") for g in summary.get("gaps") or []]
    reader: WindowReader | None = None
    for name in store.series_names(sid):
        if not name.startswith(PLOTTED_PREFIXES):
            continue
        figures = store.series_figures(sid, name) if name == "rss" or name.startswith("pid:") else None
        if figures is not None and figures["samples"] >= MIN_SAMPLES:
            reader = reader or WindowReader(store, sid)
            overview = store.window(sid, name, -np.inf, np.inf, OVERVIEW_COLUMNS, whole_chunks=True)
            env = StoredEnvelope(reader, name, overview, gaps)
            data.envelopes[name] = env
            data.series[name] = env.overview_points
            data.stats[name] = (float(figures["peak"]), float(figures["peak_s"]), float(figures["sum"]))
            continue
        times, values = store.load_series(sid, name)
        t, v = np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)
        data.series[name] = (t, v)
        if len(t):
            data.stats[name] = series_stats(t, v)
    return data
