"""Issue 20 in the desktop app: the watch dialog takes a PromQL query, and a fleet session draws
one line per label set with the label set as its legend, live and reopened from the library.

Real parts: a real ``prometheus`` scraping a real ``memview run --serve-metrics`` agent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fleet_servers, conftest helpers

from fleet_servers import Agent, Prometheus, have, vm_rss  # noqa: E402

from memview.store import Store  # noqa: E402

pytestmark = pytest.mark.skipif(not have("prometheus"), reason="needs Debian's prometheus (scripts/test-deps.sh)")

QUERY = '{__name__=~"memview_rss_bytes|memview_process_rss_bytes"}'


def test_watch_dialog_query_draws_a_line_per_label_set(qtbot, window, tmp_path: Path):
    from memview.ui.dialogs import InputError, WatchDialog

    agent = Agent(tmp_path / "agent.db", 30)
    prom = Prometheus(tmp_path / "prometheus", [agent.target])
    try:
        prom.series_of(QUERY, 2)
        dialog = WatchDialog(window)
        qtbot.addWidget(dialog)
        dialog.url.setCurrentText("prometheus+" + prom.base)
        dialog.interval.setText("0.5")
        with pytest.raises(InputError, match="PromQL: a prometheus\\+ URL needs a query"):
            dialog.build_spec()
        dialog.query.setText(QUERY)
        spec = dialog.build_spec()
        assert spec.query == QUERY
        live = window.start_session(spec)
        qtbot.waitUntil(lambda: live.session_id in window.views, timeout=30000)
        view = window.views[live.session_id]
        view.per_process_button.setChecked(True)  # "per process" shows each label set
        qtbot.waitUntil(lambda: len([c for c in view.plot.proc_curves.values() if c.isVisible()]) == 2, timeout=60000)
        legends = sorted(label.text for _sample, label in view.plot.legend.items)
        assert any(t.startswith("memview_process_rss_bytes{") and f'pid="{agent.child_pid()}"' in t for t in legends)
        assert any(t.startswith("memview_rss_bytes{") and agent.target in t for t in legends)
        name = next(n for n in view.buffers if n.startswith("prom:memview_process_rss_bytes"))
        qtbot.waitUntil(lambda: view.buffers[name].count >= 2, timeout=30000)
        drawn = float(view.buffers[name].v[view.buffers[name].count - 1])
        assert abs(drawn - vm_rss(agent.child_pid())) <= 0.02 * vm_rss(agent.child_pid())
        live.stop()
        qtbot.waitUntil(lambda: view.summary is not None, timeout=30000)
    finally:
        prom.stop()
        agent.stop()
    sid = live.session_id
    assert Store(window.db_path).session(sid)["status"] == "completed"
    window.close_tab(window.tabs.indexOf(view))
    reopened = window.open_session(sid)
    qtbot.waitUntil(lambda: reopened.summary is not None, timeout=10000)
    reopened.per_process_button.setChecked(True)
    qtbot.waitUntil(lambda: len([c for c in reopened.plot.proc_curves.values() if c.isVisible()]) == 2, timeout=10000)
    assert sorted(label.text for _s, label in reopened.plot.legend.items if label.text.startswith("memview")) == [
        t for t in legends if t.startswith("memview")
    ]
