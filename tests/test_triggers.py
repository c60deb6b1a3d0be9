"""Threshold rules: the expression parser, hysteresis/cooldown/budget, and the engine on a real Recorder."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memview.model import RSS_SERIES, Batch, Phase, Reading
from memview.recorder import Recorder
from memview.triggers import (
    Rule,
    RuleError,
    RuleState,
    TriggerEngine,
    evaluate,
    parse_rule,
    pressure_rule,
    step,
)

MB = 1000**2
MiB = 2**20
GiB = 2**30


# -- parsing ------------------------------------------------------------------------------------------


def test_absolute_sizes_use_si_and_iec_units():
    assert parse_rule("800MB").line == 800 * MB
    assert parse_rule("2GiB").line == 2 * GiB
    rule = parse_rule(" 512 MiB ")
    assert (rule.kind, rule.line, rule.series, rule.phase) == ("size", 512 * MiB, RSS_SERIES, None)
    assert (rule.max_fires, rule.rearm, rule.cooldown) == (1, 0.9, 10.0)


def test_percent_is_of_total_memory():
    rule = parse_rule("80%", total_memory_bytes=16 * GiB)
    assert rule.kind == "percent" and rule.line == pytest.approx(0.8 * 16 * GiB)
    assert parse_rule("12.5%", total_memory_bytes=8 * GiB).line == pytest.approx(GiB)


def test_percent_defaults_to_this_machines_memory():
    import psutil

    assert parse_rule("50%").line == pytest.approx(psutil.virtual_memory().total / 2)


def test_growth_rate_with_and_without_window():
    rule = parse_rule("+100MB/s@2s")
    assert (rule.kind, rule.line, rule.window) == ("rate", 100 * MB, 2.0)
    assert parse_rule("+1GiB/s").window == 5.0
    assert parse_rule("+10MB/s@500ms").window == 0.5


def test_phase_scope_and_options():
    rule = parse_rule("parse:500MB,max=3,cooldown=2s,rearm=50%")
    assert (rule.phase, rule.line, rule.max_fires, rule.cooldown, rule.rearm) == ("parse", 500 * MB, 3, 2.0, 0.5)
    assert parse_rule("load pdf:1GB").phase == "load pdf"
    assert parse_rule("800MB,rearm=600MB").rearm == pytest.approx(0.75)
    assert parse_rule("stage/2:+5MB/s@1s").phase == "stage/2"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("abc", "not a size"),
        ("800XB", "unknown size unit"),
        ("", "empty threshold"),
        ("-5MB", "growth rate reads like"),
        ("+100MB", "growth rate reads like"),
        ("0%", "(0, 100]"),
        ("150%", "(0, 100]"),
        ("0MB", "above 0"),
        ("parse:", "empty"),
        (":5MB", "bad phase name"),
        ("a$b:5MB", "bad phase name"),
        ("800MB,foo=1", "unknown option"),
        ("800MB,max=0", "max="),
        ("800MB,rearm=120%", "rearm="),
        ("800MB,cooldown=soon", "not a duration"),
        ("+5MB/s@0s", "longer than 0s"),
        ("800MB,max", "bad option"),
    ],
)
def test_bad_rules_say_why_in_one_line(text, fragment):
    with pytest.raises(RuleError) as info:
        parse_rule(text, total_memory_bytes=GiB)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_pressure_rule_fires_at_its_level_and_rearms_below():
    warning = pressure_rule("warning", max_fires=5, cooldown=0)
    assert warning.series == "pressure"
    fired = evaluate(warning, [(0, 0), (1, 1), (2, 2), (3, 1), (4, 0), (5, 1)])
    assert [t for t, _ in fired] == [1, 5]  # 2 and 3 stay at/above warning: no re-arm until 0
    critical = pressure_rule("critical", max_fires=5, cooldown=0)
    assert [t for t, _ in evaluate(critical, [(0, 1), (1, 2), (2, 1), (3, 2)])] == [1, 3]
    with pytest.raises(RuleError):
        pressure_rule("normal")


# -- the parser, generated ---------------------------------------------------------------------------

_units = st.sampled_from(
    [("B", 1), ("KB", 1000), ("MB", MB), ("GB", 1000**3), ("KiB", 1024), ("MiB", MiB), ("GiB", GiB)]
)
_phase = st.from_regex(r"[A-Za-z0-9_.\-/][A-Za-z0-9_.\- /]{0,12}[A-Za-z0-9_.\-/]", fullmatch=True) | st.from_regex(
    r"[A-Za-z0-9_]", fullmatch=True
)


@given(
    number=st.integers(min_value=1, max_value=10**6),
    unit=_units,
    phase=st.none() | _phase,
    rate=st.booleans(),
    window_ms=st.none() | st.integers(min_value=1, max_value=600_000),
    max_fires=st.none() | st.integers(min_value=1, max_value=1000),
    cooldown_s=st.none() | st.integers(min_value=0, max_value=3600),
    rearm_pct=st.none() | st.integers(min_value=0, max_value=100),
)
def test_rules_written_out_parse_back(number, unit, phase, rate, window_ms, max_fires, cooldown_s, rearm_pct):
    name, factor = unit
    cond = f"+{number}{name}/s" + (f"@{window_ms}ms" if window_ms is not None else "") if rate else f"{number}{name}"
    text = (f"{phase}:" if phase else "") + cond
    if max_fires is not None:
        text += f",max={max_fires}"
    if cooldown_s is not None:
        text += f",cooldown={cooldown_s}s"
    if rearm_pct is not None:
        text += f",rearm={rearm_pct}%"
    rule = parse_rule(text)
    assert rule.kind == ("rate" if rate else "size")
    assert rule.line == number * factor
    assert rule.phase == (phase.strip() if phase else None)
    assert rule.window == pytest.approx(window_ms / 1000 if rate and window_ms is not None else 5.0)
    assert rule.max_fires == (max_fires or 1)
    assert rule.cooldown == (10.0 if cooldown_s is None else cooldown_s)
    assert rule.rearm == pytest.approx(0.9 if rearm_pct is None else rearm_pct / 100)
    assert rule.text == text


@given(st.text(max_size=40))
def test_any_text_parses_or_gives_a_rule_error(text):
    try:
        rule = parse_rule(text, total_memory_bytes=GiB)
    except RuleError as exc:
        assert "\n" not in str(exc)
    else:
        assert rule.line > 0 and math.isfinite(rule.line)


# -- hysteresis, cooldown, budget ------------------------------------------------------------------------


def _series(values, dt=0.1):
    return [(i * dt, v) for i, v in enumerate(values)]


def test_oscillating_around_the_line_fires_once():
    rule = parse_rule("100MB")
    wave = [90 * MB, 110 * MB] * 50
    assert len(evaluate(rule, _series(wave))) == 1


def test_rearm_needs_a_fall_below_the_hysteresis_band():
    rule = parse_rule("100MB,max=10,cooldown=0s")
    # dips to 95 MB (inside the 90% band) do not re-arm; the dip to 80 MB does
    values = [50, 101, 95, 101, 95, 101, 80, 101, 95, 102]
    fired = evaluate(rule, _series([v * MB for v in values]))
    assert [round(t, 1) for t, _ in fired] == [0.1, 0.7]


def test_cooldown_delays_and_budget_caps():
    rule = parse_rule("100MB,max=3,cooldown=1s")
    wave = [50 * MB, 150 * MB] * 30  # crosses every 0.2 s for 6 s
    fired = evaluate(rule, _series(wave))
    times = [round(t, 1) for t, _ in fired]
    assert times == [0.1, 1.1, 2.1]  # one per cooldown, then the budget of 3 is spent
    state = RuleState()
    evaluate(rule, _series(wave), state)
    assert state.fires == 3 and state.suppressed > 0


def test_a_crossing_during_cooldown_fires_when_the_cooldown_ends_if_still_above():
    rule = parse_rule("100MB,max=2,cooldown=1s")
    values = [150, 50, 150, 150, 150, 150, 150, 150, 150, 150, 150, 150]  # 0.1 s apart
    fired = evaluate(rule, _series([v * MB for v in values]))
    assert [round(t, 1) for t, _ in fired] == [0.0, 1.0]


def test_growth_rate_sees_a_burst_not_a_high_plateau():
    rule = parse_rule("+100MB/s@1s")
    plateau = [900 * MB] * 30
    assert evaluate(rule, _series(plateau)) == []
    burst = [100 * MB] * 10 + [100 * MB + i * 20 * MB for i in range(1, 11)]  # +200 MB/s for 1 s
    fired = evaluate(rule, _series(burst))
    assert len(fired) == 1
    t, rate = fired[0]
    assert rate >= 100 * MB and 1.0 <= t <= 1.5


def test_growth_is_measured_over_the_whole_window():
    rule = parse_rule("+100MB/s@2s")
    # 150 MB in 1 s is 150 MB/s over 1 s but only 75 MB/s over the 2 s window: no firing
    values = [0] * 10 + [i * 15 * MB for i in range(1, 11)] + [150 * MB] * 20
    assert evaluate(rule, _series(values)) == []


def test_step_is_a_plain_state_machine():
    rule = Rule("x", "size", 10.0, max_fires=2, cooldown=0.0)
    state = RuleState()
    assert step(rule, state, 0, 10.0) is True
    assert state.armed is False
    assert step(rule, state, 1, 20.0) is False
    assert step(rule, state, 2, 8.9) is False and state.armed is True
    assert step(rule, state, 3, 10.0) is True
    assert step(rule, state, 4, 5.0) is False and step(rule, state, 5, 50.0) is False  # budget spent


# -- the engine as a listener of a real Recorder -------------------------------------------------------


class _Idle:
    """A collector the tests never start: the recorder is driven through its public API instead."""

    kind = "run"

    def read(self, t: float) -> Reading | None:
        return None

    def series_units(self):
        return {}

    def drain_events(self):
        return []

    def close(self) -> None:
        pass


def _engine(*rules):
    rec = Recorder(_Idle(), None)
    fired = []
    engine = TriggerEngine(rec, [parse_rule(r) if isinstance(r, str) else r for r in rules], on_fire=fired.append)
    rec.add_listener(engine)
    return rec, engine, fired


def _batch(times, values, extra=None):
    series = {RSS_SERIES: (list(times), list(values))}
    series.update(extra or {})
    return Batch(0, series)


def test_every_sample_of_a_batch_is_seen_and_recorded_with_its_own_time():
    rec, engine, fired = _engine("100MB")
    times = [i * 0.005 for i in range(50)]  # one 250 ms batch at 5 ms
    values = [50 * MB] * 50
    values[23] = 130 * MB  # a spike one sample long
    engine.on_batch(_batch(times, values, {"pid:7": (times, [40 * MB] * 50), "pid:9": (times, [10 * MB] * 50)}))
    assert len(fired) == 1
    assert fired[0].t == times[23] and fired[0].value == 130 * MB
    assert fired[0].processes == ((7, 40 * MB), (9, 10 * MB))
    (event,) = [e for e in rec.events if e.kind == "trigger"]
    assert event.t == times[23]
    assert event.data["value"] == 130 * MB and event.data["line"] == 100 * MB and event.data["rule"] == "100MB"
    assert event.data["pid"] == 7
    # the spike's own value and time, not the line's: 130 MB = 124.0 MiB at sample 23 (0.115 s)
    assert event.message == "threshold 100MB crossed: rss 124.0 MiB >= 95.4 MiB at 0.115s"


def test_phase_scoped_rule_only_fires_inside_its_phase():
    rec, engine, fired = _engine("parse:100MB,max=5,cooldown=0s")
    rec.add_event("phase_start", "load", data={"name": "load", "depth": 0}, t=0.0)
    rec.add_phase(Phase("load", 0, 0.0, 1.0))
    rec.add_event("phase_start", "parse", data={"name": "parse", "depth": 0}, t=1.0)
    # the batch arrives after the phase ended (phases reach listeners before their samples)
    rec.add_phase(Phase("parse", 0, 1.0, 2.0))
    times = [0.5, 0.9, 1.5, 1.8, 2.5]
    values = [200 * MB, 10 * MB, 200 * MB, 10 * MB, 300 * MB]
    engine.on_batch(_batch(times, values))
    assert [f.t for f in fired] == [1.5]
    assert [e for e in rec.events if e.kind == "trigger"][0].data["phase"] == "parse"


def test_phase_scope_with_an_open_phase_and_nesting():
    rec, engine, fired = _engine("inner:100MB")
    rec.add_event("phase_start", "outer", data={"name": "outer", "depth": 0}, t=0.0)
    engine.on_batch(_batch([0.5], [500 * MB]))
    rec.add_event("phase_start", "inner", data={"name": "inner", "depth": 1}, t=1.0)
    engine.on_batch(_batch([1.1, 1.2], [50 * MB, 150 * MB]))
    assert [f.t for f in fired] == [1.2]


def test_pressure_rule_reads_the_pressure_series():
    rec, engine, fired = _engine(pressure_rule("warning"))
    engine.on_batch(Batch(0, {"pressure": ([0.0, 0.5, 1.0], [0, 1, 2]), RSS_SERIES: ([0.0], [10**12])}))
    assert [f.t for f in fired] == [0.5]
    assert "pressure warning" in rec.events[-1].message


def test_a_listener_error_in_on_fire_does_not_stop_recording():
    rec = Recorder(_Idle(), None)

    def broken(_firing):
        raise RuntimeError("boom")

    engine = TriggerEngine(rec, [parse_rule("1MB")], on_fire=broken)
    rec.add_listener(engine)
    rec._notify("on_batch", _batch([0.0], [2 * MB]))  # the recorder's own dispatch swallows and logs
    assert [e.kind for e in rec.events] == ["trigger"]
