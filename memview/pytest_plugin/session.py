"""A measured test as a stored memview session (``--memview-db``): sampled while it runs, closed with its body.

Apart from the runners because it is the plugin's only use of the recorder, the collector and
the store: a run without ``--memview-db`` never imports them (the plugin loads in every pytest
run of a project with memview installed). The session's "test body" phase carries the exact
figure the child measured, so ``memview show`` and ``compare`` read the same peak pytest judged.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from .state import MARK, PluginState

if TYPE_CHECKING:
    from memview.collectors.process import ProcessTreeCollector
    from memview.recorder import Recorder


def start_recorder(item: pytest.Function, pid: int, state: PluginState) -> tuple[Recorder, ProcessTreeCollector]:
    """Sample ``pid`` (the child running ``item``) into ``state.store`` from now on."""
    from memview.collectors.process import ProcessTreeCollector
    from memview.recorder import Recorder

    collector = ProcessTreeCollector(pid, kind="pytest")
    recorder = Recorder(
        collector,
        state.store,
        interval=state.interval,
        session_fields={
            "name": item.nodeid,
            "command": ["pytest", item.nodeid],
            "target": item.nodeid,
            "pid": pid,
            "cwd": os.getcwd(),
            "tags": ["pytest", MARK],
        },
    )
    recorder.start()
    return recorder, collector


def close_session(
    recorder: Recorder,
    report: dict[str, Any],
    m: dict[str, Any],
    abs_peak: int | None,
    t_go: float,
    sig: int | None,
    state: PluginState,
) -> int | None:
    """Close the stored session: the body as a phase whose own peak is the exact figure."""
    from memview.model import Phase

    recorder.stop("exited")
    recorder.wait(5)
    wall = report.get("wall_s") or 0.0
    recorder.add_phase(
        Phase(
            "test body",
            0,
            t_go,
            t_go + wall,
            start_rss_bytes=report.get("start_rss_bytes"),
            end_rss_bytes=report.get("end_rss_bytes"),
            peak_rss_bytes=abs_peak,
            peak_source=m["source"],
        )
    )
    outcome = (m.get("result") or {}).get("outcome", "killed")
    recorder.close(
        "completed",
        peak_rss_bytes=abs_peak,
        peak_source=m["source"],
        exit_code=None if sig else 0,
        signal=sig,
        meta={
            "test_outcome": outcome,
            "body_peak_bytes": m["peak_bytes"],
            "body_start_rss_bytes": report.get("start_rss_bytes"),
        },
    )
    return recorder.session_id if state.store is not None else None


__all__ = ["close_session", "start_recorder"]
