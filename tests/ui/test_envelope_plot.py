"""The exact envelope in the app: a spike shorter than the sampling interval is drawn, and the
side panel frames a tree's peak as sampled floor and upper bound (docs/exactness.md)."""

from __future__ import annotations

import pytest
from support import PY, read_json

from memview.model import ENVELOPE_SERIES, RSS_SERIES
from memview.units import format_bytes

SPIKE = __import__("pathlib").Path(__file__).parent / "workloads" / "tree_spike.py"


@pytest.fixture
def spiked(qtbot, window, tmp_path):
    """A live run at 100 ms of a tree whose child spikes for ~2 ms, to its end."""
    from memview.ui.live_session import RunSpec

    truth_path = tmp_path / "truth.json"
    live = window.start_session(RunSpec(argv=[PY, str(SPIKE), str(truth_path), "24", "5"], interval=0.1))
    qtbot.waitUntil(lambda: window.current_view() is not None and window.current_view().live is live, timeout=30000)
    view = window.current_view()
    qtbot.waitUntil(lambda: view.summary is not None, timeout=120000)
    return view, read_json(truth_path)


def test_the_envelope_reaches_a_2ms_spike_between_100ms_samples(qtbot, spiked):
    view, truth = spiked
    tree = truth["tree_hwm_bytes"]
    curve = view.plot.envelope
    assert curve is not None and curve.isVisible()
    plotted = float(curve.yData.max())
    assert abs(plotted - tree) <= 0.02 * tree, (plotted, tree)
    # the sampled total is drawn too, and is never above the envelope's peak
    assert float(view.plot.total.yData.max()) <= plotted * 1.001
    assert view.buffers[ENVELOPE_SERIES].count and view.buffers[RSS_SERIES].count


def test_the_side_panel_frames_the_trees_peak_with_its_bound(qtbot, spiked):
    view, truth = spiked
    s = view.summary
    row = view.side.values["Tree peak"]
    assert row.isVisibleTo(view.side), row.text()
    if s.get("peak_exact"):
        assert row.text() == f"exact {format_bytes(s['peak_rss_bytes'])}"
    else:
        bound = s["peak_bound_bytes"]
        assert bound is not None and abs(bound - truth["tree_hwm_bytes"]) <= 0.02 * truth["tree_hwm_bytes"], (s, truth)
        assert row.text() == (
            f"sampled floor {format_bytes(s['peak_sampled_bytes'])} · upper bound "
            f"{format_bytes(bound)} ({s['peak_bound_source']})"
        )
