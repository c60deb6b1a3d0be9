"""A simulated day at 10 Hz (864k samples) through the real recorder and store, at accelerated time.

The collector is synthetic because a 24-hour process cannot run here; everything downstream of it
(the sampler loop, batching, the writer thread, SQLite) is the real thing. memview's own memory
must stay flat: buffers are bounded by the batch interval, not by the session length.
"""

from __future__ import annotations

import threading

from memview.model import Reading
from memview.recorder import Recorder
from memview.store import Store

DAY_AT_10HZ = 864_000


def own_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class SyntheticDay:
    """Readings of a slowly breathing process: a sawtooth between 200 and 300 MiB."""

    kind = "run"

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0
        self.rss_at: dict[int, int] = {}
        self.halfway = threading.Event()

    def read(self, t: float) -> Reading | None:
        if self.n >= self.total:
            return None
        self.n += 1
        if self.n in (self.total // 4, self.total):
            self.rss_at[self.n] = own_rss()
        value = 200 * 2**20 + (self.n % 6000) * 4096 * 4
        return Reading(t, {"rss": value})

    def series_units(self) -> dict[str, tuple[str, str]]:
        return {"rss": ("bytes", "RSS")}

    def drain_events(self) -> list:
        return []

    def close(self) -> None:
        pass


def test_a_simulated_day_keeps_memview_memory_flat(db_path):
    store = Store(db_path)
    collector = SyntheticDay(DAY_AT_10HZ)
    recorder = Recorder(collector, store, interval=1e-6).start()
    assert recorder.wait(timeout=240)
    recorder.close()
    quarter, end = collector.rss_at[DAY_AT_10HZ // 4], collector.rss_at[DAY_AT_10HZ]
    # the last three quarters of the day added (almost) nothing to memview's own memory
    assert end - quarter < 16 * 2**20, (quarter, end)
    session = store.session(recorder.session_id)
    assert session["samples"] == DAY_AT_10HZ and session["status"] == "completed"
    times, values = store.load_series(recorder.session_id)
    assert len(values) == DAY_AT_10HZ and max(values) == session["peak_rss_bytes"]
    size = db_path.stat().st_size + (
        db_path.with_name(db_path.name + "-wal").stat().st_size
        if db_path.with_name(db_path.name + "-wal").exists()
        else 0
    )
    assert size / DAY_AT_10HZ < 24  # bytes per sample on disk
