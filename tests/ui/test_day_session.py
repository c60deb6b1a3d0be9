"""A day-long stored session (864k samples at 10 Hz, through the real recorder and store) opens in
the real window reading only an overview, its one-sample spike is drawn zoomed out and zoomed in,
and zooming reads the visible range from the store (per pixel column) instead of holding the day.

How long the UI thread stalls is a timing, so it is measured (printed here; bounded in
``benchmarks/bench_day.py``), not asserted.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from memview.model import Reading
from memview.recorder import Recorder
from memview.store import Store

N = 864_000
SPIKE_AT = N // 2 + 7
MiB = 2**20


class _Day:
    """A sawtooth between 200 and 300 MiB with one sample of 900 MiB in the middle."""

    kind = "run"

    def __init__(self) -> None:
        self.n = 0

    def read(self, t: float) -> Reading | None:
        if self.n >= N:
            return None
        self.n += 1
        value = 900 * MiB if self.n == SPIKE_AT else 200 * MiB + (self.n % 6000) * 4096 * 4
        return Reading(t, {"rss": value})  # accelerated time: the whole day in a few seconds

    def series_units(self) -> dict[str, tuple[str, str]]:
        return {"rss": ("bytes", "RSS")}

    def drain_events(self) -> list:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def day_session(tmp_path: Path) -> int:
    store = Store(tmp_path / "memview.db")  # the database the window fixture opens
    recorder = Recorder(_Day(), store, interval=1e-6).start()
    assert recorder.wait(timeout=240)
    recorder.close()
    assert store.session(recorder.session_id)["samples"] == N
    return recorder.session_id


@pytest.mark.slow
def test_a_day_long_session_opens_from_its_overview_and_zooms_from_the_store(day_session, window, qtbot):
    from PySide6 import QtCore

    from memview.ui.envelope import OVERVIEW_COLUMNS

    late: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        late.append(now - last[0] - 0.010)
        last[0] = now

    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    view = window.open_session(day_session)
    qtbot.waitUntil(lambda: "rss" in view.plot.envelopes, timeout=120_000)
    qtbot.waitUntil(
        lambda: view.plot.total.getData()[1] is not None and len(view.plot.total.getData()[1]) > 0, timeout=60_000
    )
    timer.stop()
    held = view.buffers["rss"]
    assert len(held.v) <= 2 * OVERVIEW_COLUMNS + 64  # the overview, not the day's 864k samples
    assert held.max == 900 * MiB  # the exact peak, from the chunks' bounds
    shown = view.plot.total.getData()[1]
    assert 0 < len(shown) < 20_000  # per pixel, not 864k points
    assert float(np.nanmax(shown)) == 900 * MiB  # the one-sample spike, zoomed out
    spike_t = held.max_t
    env = view.plot.envelopes["rss"]
    view.plot.zoom_to(spike_t - 0.5, spike_t + 0.5)

    def drawn_from_the_store() -> bool:
        (x0, x1), width = view.plot.main.vb.viewRange()[0], int(view.plot.main.vb.width())
        return env.exact(x0, x1, width) and view.plot.total.getData()[0] is not None

    qtbot.waitUntil(drawn_from_the_store, timeout=60_000)
    xs, ys = view.plot.total.getData()
    (x0, x1), width = view.plot.main.vb.viewRange()[0], int(view.plot.main.vb.width())
    assert float(np.nanmax(ys)) == 900 * MiB  # the spike, zoomed in
    assert xs[1] >= x0 and xs[-2] <= x1 and len(xs) <= 4 * max(width, 100) + 2  # this view, per pixel
    print(
        f"day session: longest UI stall while opening {max(late) * 1000:.0f} ms over {len(late)} ticks; "
        f"zoomed to {x0:.6f}..{x1:.6f} at {width} px"
    )
