"""The desktop app's plot: redraw time with 1,000,000 samples, and the UI thread's longest stall
while recording a real child at 100 Hz.

Run alone (``QT_QPA_PLATFORM=offscreen python -m benchmarks.bench_plot [--smoke]``) or through
``python -m benchmarks`` (case ``plot``, which calls :func:`main` in a fresh interpreter).

*Redraw* is what one frame of the live view costs with a million samples in the buffer: hand the
arrays to the curve (``draw_series``: peak-preserving downsampling, clip-to-view) and paint the
widget into a pixmap (``grab()``: the whole scene, lane and axes included) — once showing the
whole session, once zoomed to the last minute. A single one-sample spike is planted in the
series: the figures are only valid if it is still drawn when zoomed out, so that is checked.

*Day* opens a synthetic day at 1 kHz (86.4M samples; 2M with ``--smoke``) from a real SQLite file
in a session view and zooms through it (see :mod:`benchmarks.bench_day`).

*Stall* is measured from the outside, the way a user feels it: a 5 ms timer on the UI thread
notes how late each of its ticks runs while the real window records ``ui_phases.py`` (three
phases, then holding) at 100 Hz (bridge, 30 fps redraws, phase lane, side panel, library
refresh). The longest lateness is the longest time
the UI thread could not react to input. On a loaded machine most of a stall is waiting for a CPU
(or the GIL), not the UI's own work, so the UI thread's own CPU is reported beside it: per redraw,
per paint of the plot widget, within one timer tick (``ui_busy_*``) and its share of the worst
ticks. Those compare across runs at different loads; the wall-clock stall does not.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
PHASES = ROOT / "tests" / "workloads" / "ui_phases.py"
N_SAMPLES = 1_000_000
MiB = 2**20


def _app() -> Any:
    from PySide6 import QtWidgets

    return QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])


def _series(n: int) -> tuple[Any, Any, int]:
    """n samples at 100 Hz: a slow sawtooth with noise, and one sample-wide spike in the middle."""
    import numpy as np

    rng = np.random.default_rng(1)
    t = np.arange(n, dtype=np.float64) / 100.0
    v = 200 * MiB + 100 * MiB * ((t % 600.0) / 600.0) + rng.integers(0, 4 * MiB, n)
    spike = n // 2 + 7
    v[spike] = 900 * MiB
    return t, v.astype(np.float64), spike


def _time_redraws(view: Any, app: Any, reps: int) -> tuple[list[float], list[float]]:
    """(update + paint, update only) per frame, in ms."""
    frames, updates = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        view._dirty = True
        view.redraw()  # hand the arrays to the curves: downsampling, clip-to-view, lane, side panel
        t1 = time.perf_counter()
        view.plot.grab()  # paint the whole plot widget once (software raster), as the screen would
        t2 = time.perf_counter()
        frames.append((t2 - t0) * 1000)
        updates.append((t1 - t0) * 1000)
        app.processEvents()
    return frames, updates


def redraw_figures(n: int = N_SAMPLES, reps: int = 15) -> dict[str, Any]:
    """Median/max redraw of a view holding ``n`` samples, whole session and zoomed to the last 60 s."""
    from memview.ui.live_view import SessionView
    from memview.ui.series_buffer import SeriesBuffer

    app = _app()
    t, v, spike = _series(n)
    view = SessionView("bench", "run")
    view.resize(1400, 800)
    view.show()
    app.processEvents()
    empty, _ = _time_redraws(view, app, reps)  # the same frame with no data: axes, grid, lane
    view.buffers = {"rss": SeriesBuffer.from_arrays(t, v)}
    view.end_t = float(t[-1])
    view._dirty = True
    view.redraw()  # the first draw builds caches; not what a frame costs
    app.processEvents()
    full, full_update = _time_redraws(view, app, reps)
    shown = view.plot.total.getData()[1]
    spike_drawn = bool(shown is not None and len(shown) and float(shown.max()) >= v[spike])
    drawn_points = 0 if shown is None else len(shown)
    view.plot.set_follow(False)
    view.plot.main.vb.setXRange(float(t[-1]) - 60, float(t[-1]), padding=0)
    app.processEvents()
    zoomed, _ = _time_redraws(view, app, reps)
    view.close()
    return {
        "samples": n,
        "redraw_1M_full_ms_median": round(statistics.median(full), 2),
        "redraw_1M_full_ms_max": round(max(full), 2),
        "redraw_1M_update_only_ms_median": round(statistics.median(full_update), 2),
        "paint_empty_plot_ms_median": round(statistics.median(empty), 2),
        "redraw_1M_zoomed_ms_median": round(statistics.median(zoomed), 2),
        "points_drawn_full": drawn_points,
        "spike_visible_zoomed_out": spike_drawn,
    }


def stall_figures(seconds: float = 10.0, interval: float = 0.01) -> dict[str, Any]:
    """Record ``grow.py`` at ``interval`` in the real window; how late a 5 ms UI timer ran at worst."""
    from PySide6 import QtCore

    from memview.ui.live_session import RunSpec
    from memview.ui.main_window import MainWindow
    from memview.ui.plot_area import PlotArea
    from memview.ui.settings import Settings

    app = _app()
    paints: list[float] = []  # the UI thread's CPU seconds per paint of the plot widget
    plain_paint = PlotArea.paintEvent

    def timed_paint(self: Any, event: Any) -> None:
        c0 = time.thread_time()
        plain_paint(self, event)
        paints.append(time.thread_time() - c0)

    PlotArea.paintEvent = timed_paint  # type: ignore[method-assign]
    tmp = Path(tempfile.mkdtemp(prefix="memview-bench-plot-"))
    win = MainWindow(tmp / "bench.db", Settings.at(tmp / "settings.ini"))
    win.resize(1400, 860)
    win.show()
    while win.store is None:
        app.processEvents()
    tick_ms = 5
    late: list[float] = []
    busy: list[float] = []  # the UI thread's own CPU ms between two ticks: its work, not the machine's load
    last = [time.perf_counter(), time.thread_time()]

    def tick() -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        late.append(max(0.0, (now - last[0]) * 1000 - tick_ms))
        busy.append((cpu - last[1]) * 1000)
        last[0], last[1] = now, cpu

    timer = QtCore.QTimer()
    timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
    timer.setInterval(tick_ms)
    timer.timeout.connect(tick)
    live = win.start_session(
        RunSpec(argv=[sys.executable, str(PHASES), str(seconds)], interval=interval, capture="none")
    )
    assert live is not None

    def run_until(signal: Any, done: Any) -> None:
        """A real event loop (no busy polling: that would steal the CPU being measured)."""
        loop = QtCore.QEventLoop()
        signal.connect(loop.quit)
        if not done():
            loop.exec()

    run_until(live.started, lambda: live.state != "starting")
    last[0], last[1] = time.perf_counter(), time.thread_time()
    timer.start()
    t0 = time.perf_counter()
    cpu0 = time.thread_time()  # CPU time, not wall: meaningful on a loaded machine, where a stall is not
    paints.clear()
    redraws0 = win.views[live.session_id].redraws
    run_until(live.finished, lambda: not live.running)
    wall = time.perf_counter() - t0
    ui_cpu = time.thread_time() - cpu0
    frame_paints = list(paints)
    timer.stop()
    PlotArea.paintEvent = plain_paint  # type: ignore[method-assign]
    view = win.views[live.session_id]
    samples = view.buffers["rss"].count if "rss" in view.buffers else 0
    redraws = view.redraws - redraws0
    win.close()
    while win.isVisible():
        app.processEvents()
    worst = sorted(range(len(late)), key=late.__getitem__)[-max(1, len(late) // 100) :]  # the worst 1 % of ticks
    worst_own = sum(busy[i] for i in worst) / max(sum(late[i] + tick_ms for i in worst), 1e-9) if late else None
    late.sort()
    busy.sort()
    return {
        "recorded_s": round(wall, 2),
        "interval_ms": interval * 1000,
        "samples_plotted": samples,
        "redraws_per_s": round(redraws / wall, 1) if wall else None,
        "ui_stall_max_ms": round(late[-1], 2) if late else None,
        "ui_stall_p99_ms": round(late[int(len(late) * 0.99) - 1], 2) if late else None,
        "ui_stall_p50_ms": round(late[len(late) // 2], 2) if late else None,
        # of the worst 1 % stalls, how much was the UI thread's own work (the rest: waiting for a CPU or the GIL)
        "ui_busy_p99_ms": round(busy[int(len(busy) * 0.99) - 1], 2) if busy else None,
        "ui_busy_max_ms": round(busy[-1], 2) if busy else None,
        "ui_worst_ticks_own_cpu_pct": round(100 * worst_own, 1) if worst_own is not None else None,
        "ui_ticks": len(late),
        "ui_thread_cpu_pct": round(100 * ui_cpu / wall, 1) if wall else None,
        "ui_cpu_ms_per_redraw": round(1000 * ui_cpu / redraws, 2) if redraws else None,
        "plot_paints": len(frame_paints),
        "plot_paint_cpu_ms_median": round(1000 * statistics.median(frame_paints), 2) if frame_paints else None,
        "plot_paint_cpu_ms_max": round(1000 * max(frame_paints), 2) if frame_paints else None,
    }


def main(smoke: bool = False) -> dict[str, Any]:
    figures = redraw_figures(N_SAMPLES, reps=5 if smoke else 15)
    figures.update(stall_figures(seconds=3.0 if smoke else 10.0))
    from benchmarks.bench_day import day_figures  # the day-long session: its own module

    figures.update(day_figures(2_000_000 if smoke else 86_400_000))
    return figures


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import json

    print(json.dumps(main(smoke="--smoke" in sys.argv), indent=2))
