"""Issue 18, the live UI stall: what a live frame costs the UI thread.

A frame used to move the time range (Follow), re-lay and repaint every axis with its tick text,
re-set the lane's ticks, the total's pen and the peak label, and stroke the total as one wide
antialiased polyline: 30-70 ms of software painting per frame. These tests drive a real
SessionView (offscreen) frame by frame, as the live timer does, and check that a frame where only
samples arrived leaves the axes, the lane and the label alone while the newest sample stays in view.
"""

from __future__ import annotations

import numpy as np
import pytest

from memview.ui.time_navigation import FOLLOW_MIN_STEP_S, FOLLOW_STEP, follow_x_range, follow_y_top

MiB = 2**20


def test_follow_x_range_keeps_the_range_while_the_newest_time_is_in_it():
    current = follow_x_range(10.0, None, (0.0, 0.0))
    assert current[0] == 0.0 and current[1] > 10.0
    steps = 0
    for k in range(1, 2000):  # 20 s more at 100 Hz
        last = 10.0 + k * 0.01
        new = follow_x_range(last, None, current)
        assert new[0] <= last <= new[1]  # the newest sample is always in view
        assert new[1] - last <= 2 * max(FOLLOW_STEP * new[1], FOLLOW_MIN_STEP_S) + 1e-9  # nor far from the edge
        steps += new != current
        current = new
    # stepping by 1 s (5 % of the width past 20 s) from 10 s to 30 s: ~ 18 steps, not 2000
    assert 10 <= steps <= 25


def test_follow_x_range_with_a_window_keeps_its_width():
    current = (0.0, 0.0)
    for k in range(0, 10_000, 7):
        last = 100.0 + k * 0.01
        current = follow_x_range(last, 60.0, current)
        assert current[1] - current[0] == pytest.approx(60.0)
        assert current[0] <= last <= current[1]
    # a session younger than the window shows all of itself, not a mostly empty minute
    young = follow_x_range(5.0, 60.0, (0.0, 0.0))
    assert young[0] == 0.0 and 5.0 < young[1] <= 7.0
    assert follow_x_range(5.5, 60.0, young) == young


def test_follow_y_top_leaves_room_for_the_label_and_holds_still():
    top = follow_y_top(100 * MiB, None)
    assert top >= 112 * MiB
    assert follow_y_top(105 * MiB, top) == top  # a little growth: the same scale
    assert follow_y_top(200 * MiB, top) >= 224 * MiB  # past the room: rescaled
    assert follow_y_top(10 * MiB, top) < top  # far below: rescaled down, no wasted plot


def test_a_live_frame_with_new_samples_only_repaints_the_curve(qtbot):
    """Frames of a following live view: the newest sample is in view after every frame, while the
    axes' cached tick pictures survive most frames, and the lane's ticks, an unchanged lane and an
    unchanged peak label every frame."""
    from memview.ui.live_view import SessionView
    from memview.ui.series_buffer import SeriesBuffer

    view = SessionView("frames", "run")
    qtbot.addWidget(view)
    view.resize(1200, 700)
    view.show()
    qtbot.waitExposed(view)
    buf = view.buffers["rss"] = SeriesBuffer()
    view.phases.append(
        {
            "name": "load",
            "depth": 0,
            "start_s": 0.5,
            "end_s": None,
            "peak_rss_bytes": None,
            "peak_source": "sampled",
            "growth_bytes": None,
            "start_rss_bytes": None,
        }
    )
    plot = view.plot
    left, bottom = plot.main.getAxis("left"), plot.lane.getAxis("bottom")
    lane_ticks = plot.lane.getAxis("left")
    kept_axes = kept_lane = kept_label = frames = 0
    t = 0.0
    for frame in range(300):  # 30 s of a process growing slowly, ten samples a frame
        times = t + np.arange(1, 11) * 0.01
        buf.extend(times, 100 * MiB + np.minimum(times, 10.0) * MiB)  # grows for 10 s, then holds
        t = float(times[-1])
        view.end_t = t
        view._dirty = True
        left.picture = bottom.picture = lane_ticks.picture = "painted"  # what paint() would have cached
        label_text = plot.peak_label.textItem.toPlainText()
        view.redraw()
        (x0, x1), (y0, y1) = plot.main.vb.viewRange()
        assert x0 <= t <= x1 and y0 <= float(buf.last) <= y1, f"frame {frame}: the newest sample is out of view"
        if frame < 10:
            continue
        frames += 1
        kept_axes += left.picture == "painted" and bottom.picture == "painted"
        kept_lane += lane_ticks.picture == "painted"
        view.redraw()  # a frame with nothing new (the timer's 5 Hz side-panel refresh): the lane stays
        spans_before = plot.lane_item.spans
        view._dirty = True
        view.redraw()
        assert plot.lane_item.spans is spans_before, f"frame {frame}: the lane was rebuilt with nothing new"
        kept_label += t < 11 or plot.peak_label.textItem.toPlainText() == label_text
    # Follow with a window ("Last 1 min" and the like): the range moves in steps too
    plot.window_s = 20.0
    ranges = set()
    for _ in range(100):
        times = t + np.arange(1, 11) * 0.01
        buf.extend(times, np.full(10, 110.0 * MiB))
        t = float(times[-1])
        view.end_t = t
        view._dirty = True
        view.redraw()
        (x0, x1), _ = plot.main.vb.viewRange()
        assert x1 - x0 == pytest.approx(20.0) and x0 <= t <= x1
        ranges.add((x0, x1))
    assert len(ranges) <= 12, f"the 20 s window moved {len(ranges)} times in 10 s"
    left.picture = bottom.picture = lane_ticks.picture = None  # drawn for real from here on
    assert kept_axes >= frames * 0.8, f"the axes were re-laid in {frames - kept_axes} of {frames} frames"
    assert kept_lane == frames, f"the lane's ticks were re-set in {frames - kept_lane} of {frames} frames"
    assert kept_label == frames  # once the peak holds, its label is not re-set
    assert plot.peak_label.textItem.toPlainText().startswith("peak 110")
    # the growing phase bar still ends at the newest time (within a pixel)
    span = plot.lane_item.spans[-1]
    assert span.end >= t and span.end - t <= plot.main.vb.viewPixelSize()[0] * 1.01
    # the side panel's zero-delay relayout (queued by new phase rows) runs while the panel exists
    from PySide6 import QtWidgets

    QtWidgets.QApplication.processEvents()


def test_the_total_is_stroked_in_segments(qtbot):
    """A wide antialiased polyline is the costliest thing Qt's raster engine strokes; the total is
    drawn as segments, which look the same with an opaque pen."""
    from memview.ui.plot_area import PlotArea

    plot = PlotArea()
    qtbot.addWidget(plot)
    assert plot.total.curve.opts["segmentedLineMode"] == "on"
    assert plot.total.opts["pen"].widthF() > 1


def test_the_side_panel_is_refilled_only_when_its_rows_change(qtbot):
    """The figures and phase table are refreshed at 5 Hz; refilling an unchanged table cost ~3 ms a time."""
    from PySide6 import QtWidgets

    from memview.ui.live_view import SessionView
    from memview.ui.series_buffer import SeriesBuffer

    view = SessionView("side", "run")
    qtbot.addWidget(view)
    view.buffers["rss"] = SeriesBuffer.from_arrays(np.arange(0, 10, 0.01), np.full(1000, 50.0 * MiB))
    view.phases = [
        {
            "name": "load",
            "depth": 0,
            "start_s": 1.0,
            "end_s": 2.0,
            "peak_rss_bytes": 50 * MiB,
            "peak_source": "sampled",
            "growth_bytes": 0,
            "start_rss_bytes": 50 * MiB,
        }
    ]
    view.end_t = 10.0
    calls = []
    fill = view.side.set_phases
    view.side.set_phases = lambda rows, now=None: (calls.append(len(rows)), fill(rows, now=now))
    for _ in range(5):  # five of the 5 Hz refreshes
        view._dirty = True
        view._side_due = 0.0
        view.redraw()
    assert calls == [1]
    view.phases.append(
        {
            "name": "parse",
            "depth": 0,
            "start_s": 3.0,
            "end_s": None,
            "peak_rss_bytes": None,
            "peak_source": "sampled",
            "growth_bytes": None,
            "start_rss_bytes": 50 * MiB,
        }
    )
    view._lane_dirty = True
    view.redraw()
    assert calls == [1, 2]
    assert view.side.phases.rowCount() == 2
    QtWidgets.QApplication.processEvents()  # the panel's queued relayout runs while the panel exists
