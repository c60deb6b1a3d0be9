"""The movable threshold line (the GUI's draggable line) moves the trigger engine's rule."""

from __future__ import annotations

from memview.model import Batch, Event
from memview.triggers import ThresholdLine, TriggerEngine, parse_rule

MiB = 2**20


class _Rec:
    """Just enough recorder for the engine: it records the events it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def add_event(
        self, kind: str, message: str, level: str = "info", data: dict | None = None, t: float | None = None
    ) -> None:
        self.events.append((kind, data or {}))


def _batch(t0: float, values: list[int]) -> Batch:
    times = [t0 + i * 0.1 for i in range(len(values))]
    return Batch(1, {"rss": (times, values)})


def test_a_moved_line_fires_at_the_new_value_and_keeps_the_rules_options():
    rec = _Rec()
    rule = parse_rule("parse:120MB,max=2,cooldown=1s")
    engine = TriggerEngine(rec, [rule])
    engine.on_event(Event(0.0, "phase_start", "parse", data={"name": "parse", "depth": 0}))
    line = ThresholdLine(engine, ThresholdLine.pick(engine.rules))
    engine.on_batch(_batch(0.0, [60 * MiB, 70 * MiB]))
    assert engine.firings == []
    line.set(int(rule.line))  # drawing the line where the rule is changes nothing
    assert engine.rules == [rule]
    line.set(65 * MiB)
    (moved,) = engine.rules
    assert (moved.line, moved.phase, moved.max_fires, moved.cooldown) == (65 * MiB, "parse", 2, 1.0)
    engine.on_batch(_batch(1.0, [64 * MiB, 66 * MiB]))
    assert [(f.rule.line, f.value, f.t) for f in engine.firings] == [(65 * MiB, 66 * MiB, 1.1)]
    line.set(None)
    assert engine.rules == []
    line.set(10 * MiB)  # a line without a rule behind it adds one
    assert [(r.kind, r.line, r.phase) for r in engine.rules] == [("size", 10 * MiB, None)]
