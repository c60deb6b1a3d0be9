"""Threshold rules: parse what the user typed, and decide sample by sample when a rule fires.

A rule watches one series (``rss`` by default, ``pressure`` for endpoint pressure) and fires when
its value reaches a line. Three things keep a process that oscillates around the line from
producing a hundred captures: *hysteresis* (after firing, a rule re-arms only once the value has
fallen below ``rearm`` x line, 90% by default), a *cooldown* (no second firing within N seconds)
and a *budget* (at most ``max`` firings per session, 1 by default).

Grammar (``--threshold``)::

    RULE   := [PHASE ":"] COND ("," OPTION)*
    COND   := SIZE              800MB, 2GiB, 512MiB    absolute value of the series
            | NUMBER "%"        80%                    percent of total system memory
            | "+" SIZE "/s" ["@" DURATION]             +100MB/s@5s: grew by 100MB/s x 5s within 5s
    OPTION := "max=" INT | "cooldown=" DURATION | "rearm=" (NUMBER "%" | SIZE)

A phase-scoped rule (``parse:500MB``) only looks at samples taken while a phase of that name is
open. Phases reach the engine as ``phase_start`` events and ``on_phase`` calls, which may arrive
before the batch holding the samples they cover, so the engine keeps each phase's interval and
tests every sample's own time against it.

:class:`TriggerEngine` is a recorder listener. Its methods only compute and record: the capture
a firing asks for is handed to ``on_fire``, which must return at once (the capture service queues
it for its own thread).
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from memview.model import RSS_SERIES, Batch, Event, Phase
from memview.units import UnitError, format_bytes, parse_duration, parse_size

PRESSURE_SERIES = "pressure"
PRESSURE_LEVELS = {"normal": 0, "warning": 1, "critical": 2}

DEFAULT_REARM = 0.9
DEFAULT_COOLDOWN = 10.0
DEFAULT_MAX = 1
DEFAULT_WINDOW = 5.0


class RuleError(ValueError):
    """A rule that cannot be read; the message says what was expected (one line, for the user)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One threshold. ``line`` is bytes (size, percent), bytes/s (rate) or a level (pressure)."""

    text: str
    kind: str  # "size" | "percent" | "rate" | "pressure"
    line: float
    series: str = RSS_SERIES
    phase: str | None = None
    window: float = DEFAULT_WINDOW  # rate rules: seconds over which growth is measured
    percent: float | None = None  # percent rules: what the user typed
    rearm: float = DEFAULT_REARM  # fraction of the line below which the rule re-arms
    cooldown: float = DEFAULT_COOLDOWN
    max_fires: int = DEFAULT_MAX

    @property
    def rearm_at(self) -> float:
        return self.line * self.rearm

    def describe_value(self, value: float) -> str:
        if self.kind == "rate":
            return f"{format_bytes(value)}/s"
        if self.kind == "pressure":
            return _level_name(int(value))
        return format_bytes(value)

    def describe_line(self) -> str:
        if self.kind == "percent":
            return f"{self.percent:g}% of RAM ({format_bytes(self.line)})"
        if self.kind == "rate":
            return f"growth {format_bytes(self.line)}/s over {self.window:g}s"
        if self.kind == "pressure":
            return f"pressure {_level_name(int(self.line))}"
        return format_bytes(self.line)


def _level_name(level: int) -> str:
    for name, value in PRESSURE_LEVELS.items():
        if value == level:
            return name
    return str(level)


_RATE_RE = re.compile(r"^\+\s*(?P<size>[^/@]+?)\s*/\s*s(?:\s*@\s*(?P<window>.+))?$", re.IGNORECASE)
_PERCENT_RE = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%$")
_PHASE_RE = re.compile(r"^[A-Za-z0-9_.\- /]+$")


def total_memory() -> int:
    """Total system memory in bytes (what ``80%`` is a percentage of)."""
    import psutil

    return int(psutil.virtual_memory().total)


def parse_rule(text: str, total_memory_bytes: int | None = None) -> Rule:
    """Read one ``--threshold`` value; raise :class:`RuleError` with a one-line reason."""
    raw = str(text)
    parts = [p.strip() for p in raw.split(",")]
    head, options = parts[0], parts[1:]
    if not head:
        raise RuleError(f"empty threshold in {raw!r} (expected e.g. 800MB, 80%, +100MB/s, parse:500MB)")
    phase: str | None = None
    if ":" in head:
        phase, _, head = head.rpartition(":")
        phase, head = phase.strip(), head.strip()
        if not phase or not _PHASE_RE.match(phase):
            raise RuleError(f"bad phase name {phase!r} in {raw!r} (letters, digits, _ . - / and spaces)")
        if not head:
            raise RuleError(f"empty threshold after {phase + ':'!r} in {raw!r} (expected e.g. {phase}:500MB)")
    rule = _parse_condition(head, raw, total_memory_bytes)
    rule = replace(rule, text=raw.strip(), phase=phase)
    for option in options:
        rule = _apply_option(rule, option, raw)
    return rule


def _parse_condition(cond: str, raw: str, total_memory_bytes: int | None) -> Rule:
    m = _RATE_RE.match(cond)
    if m:
        line = _size(m.group("size"), raw)
        window = DEFAULT_WINDOW
        if m.group("window") is not None:
            window = _duration(m.group("window"), raw)
        if window <= 0:
            raise RuleError(f"the growth window must be longer than 0s in {raw!r}")
        if line <= 0:
            raise RuleError(f"a growth rate must be above 0 in {raw!r}")
        return Rule(raw, "rate", float(line), window=window)
    m = _PERCENT_RE.match(cond)
    if m:
        pct = float(m.group("num"))
        if not 0 < pct <= 100:
            raise RuleError(f"a percentage of system memory must be in (0, 100] in {raw!r}")
        total = total_memory() if total_memory_bytes is None else total_memory_bytes
        return Rule(raw, "percent", total * pct / 100.0, percent=pct)
    if cond.startswith(("+", "-")):
        raise RuleError(f"a growth rate reads like +100MB/s or +100MB/s@5s, not {cond!r} (in {raw!r})")
    line = _size(cond, raw)
    if line <= 0:
        raise RuleError(f"a threshold must be above 0 bytes in {raw!r}")
    return Rule(raw, "size", float(line))


def _apply_option(rule: Rule, option: str, raw: str) -> Rule:
    key, sep, value = option.partition("=")
    key, value = key.strip().lower(), value.strip()
    if not sep or not value:
        raise RuleError(f"bad option {option!r} in {raw!r} (use max=N, cooldown=30s, rearm=90%)")
    if key == "max":
        if not value.isdigit() or int(value) < 1:
            raise RuleError(f"max= wants a whole number of firings >= 1 in {raw!r}")
        return replace(rule, max_fires=int(value))
    if key == "cooldown":
        return replace(rule, cooldown=_duration(value, raw))
    if key == "rearm":
        m = _PERCENT_RE.match(value)
        if m:
            fraction = float(m.group("num")) / 100.0
        elif rule.kind in ("size", "percent"):
            fraction = _size(value, raw) / rule.line
        else:
            raise RuleError(f"rearm= for a growth rule is a percentage of the line, e.g. rearm=50%, in {raw!r}")
        if not 0 <= fraction <= 1:
            raise RuleError(f"rearm= must be at or below the line (0-100%) in {raw!r}")
        return replace(rule, rearm=fraction)
    raise RuleError(f"unknown option {key!r} in {raw!r} (use max=N, cooldown=30s, rearm=90%)")


def _size(text: str, raw: str) -> int:
    try:
        return parse_size(text)
    except UnitError as exc:
        raise RuleError(f"{exc} in threshold {raw!r}") from None


def _duration(text: str, raw: str) -> float:
    try:
        return parse_duration(text)
    except UnitError as exc:
        raise RuleError(f"{exc} in threshold {raw!r}") from None


def pressure_rule(level: str, max_fires: int = DEFAULT_MAX, cooldown: float = DEFAULT_COOLDOWN) -> Rule:
    """The rule behind ``--on-pressure warning|critical``: fires when the endpoint reports that state."""
    name = level.strip().lower()
    if name not in ("warning", "critical"):
        raise RuleError(f"--on-pressure wants warning or critical, not {level!r}")
    value = PRESSURE_LEVELS[name]
    # re-arm once the state drops below the level (rearm x line must sit between level-1 and level)
    return Rule(
        f"pressure>={name}",
        "pressure",
        float(value),
        series=PRESSURE_SERIES,
        rearm=(value - 0.5) / value,
        cooldown=cooldown,
        max_fires=max_fires,
    )


# -- evaluation: pure state machine ---------------------------------------------------------------


@dataclass(slots=True)
class RuleState:
    """What one rule remembers between samples."""

    armed: bool = True
    fires: int = 0
    last_fire_t: float | None = None
    suppressed: int = 0  # crossings not acted on (cooldown or budget spent)
    history: deque[tuple[float, int]] = field(default_factory=deque)  # rate rules only


def measure(rule: Rule, state: RuleState, t: float, value: int) -> float:
    """The value the rule compares: the sample itself, or the growth rate over the window."""
    if rule.kind != "rate":
        return float(value)
    hist = state.history
    hist.append((t, value))
    cutoff = t - rule.window
    while len(hist) >= 2 and hist[1][0] <= cutoff:
        hist.popleft()
    # growth since the sample at (or just before) t - window; while less history than the window
    # exists, since the first sample. Dividing by the whole window makes the rule read "grew by at
    # least RATE x WINDOW within WINDOW", which a startup burst meets and noise does not.
    return (value - hist[0][1]) / rule.window


def step(rule: Rule, state: RuleState, t: float, value: float) -> bool:
    """Advance ``state`` by one measured value at ``t``; True when the rule fires now."""
    if not state.armed:
        if value < rule.rearm_at:
            state.armed = True
        return False
    if value < rule.line:
        return False
    if state.fires >= rule.max_fires:
        state.suppressed += 1
        state.armed = False
        return False
    if state.last_fire_t is not None and t - state.last_fire_t < rule.cooldown:
        state.suppressed += 1  # stays armed: fires once the cooldown is over if still above the line
        return False
    state.fires += 1
    state.last_fire_t = t
    state.armed = False
    return True


def evaluate(
    rule: Rule, values: Iterable[tuple[float, int]], state: RuleState | None = None
) -> list[tuple[float, float]]:
    """Run ``rule`` over (t, value) samples; the (t, measured value) of each firing. For tests and replays."""
    state = state or RuleState()
    out = []
    for t, v in values:
        measured = measure(rule, state, t, v)
        if step(rule, state, t, measured):
            out.append((t, measured))
    return out


# -- phases as intervals ----------------------------------------------------------------------------


class PhaseTimeline:
    """Intervals during which each named phase was open, so samples can be tested by their own time."""

    def __init__(self) -> None:
        self._spans: dict[str, list[list[float]]] = {}

    def start(self, name: str, t: float) -> None:
        self._spans.setdefault(name, []).append([t, math.inf])

    def end(self, name: str, start_t: float | None, end_t: float | None) -> None:
        spans = self._spans.setdefault(name, [])
        end = math.inf if end_t is None else end_t
        open_spans = [s for s in spans if s[1] == math.inf]
        if open_spans:
            # the innermost open span that started at or before this phase's start
            fitting = [s for s in open_spans if start_t is None or s[0] <= start_t + 1e-6]
            (fitting or open_spans)[-1][1] = end
        elif start_t is not None:  # a phase we never saw start: still useful for later samples
            spans.append([start_t, end])
        if len(spans) > 256:
            del spans[: len(spans) - 256]

    def open_at(self, name: str, t: float) -> bool:
        return any(s <= t <= e for s, e in self._spans.get(name, ()))


# -- the listener -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule fired: when, on what value, and which processes were largest at that moment."""

    rule: Rule
    t: float
    value: float
    fire: int
    processes: tuple[tuple[int, int], ...] = ()  # (pid, rss) at the batch's end, largest first

    @property
    def label(self) -> str:
        return self.rule.text


class EventSink(Protocol):
    """Where firings are recorded: the session's :class:`~memview.recorder.Recorder` (which runs
    every listener: the engine never calls it while it holds its own lock)."""

    def add_event(
        self, kind: str, message: str, level: str = "info", data: dict[str, Any] | None = None, t: float | None = None
    ) -> Event:
        """Record an event."""


class TriggerEngine:
    """Evaluates rules on every sample of every batch; records each firing as a ``trigger`` event."""

    def __init__(
        self, recorder: EventSink, rules: Iterable[Rule], on_fire: Callable[[Firing], None] | None = None
    ) -> None:
        self.recorder = recorder
        self.on_fire = on_fire
        self._lock = threading.Lock()
        self._rules: list[tuple[Rule, RuleState]] = [(r, RuleState()) for r in rules]
        self._phases = PhaseTimeline()
        self.firings: list[Firing] = []

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return [r for r, _ in self._rules]

    def replace_rule(self, old: Rule | None, new: Rule | None) -> None:
        """Swap ``old`` for ``new`` while recording (either may be None: add, remove).

        The new rule starts armed with a fresh budget: a moved line is a new question ("tell me
        when it reaches *this*"), so an earlier firing at the old line must not silence it.
        """
        with self._lock:
            rules = [(r, s) for r, s in self._rules if r is not old]
            if new is not None:
                rules.append((new, RuleState()))
            self._rules = rules

    def state(self, rule: Rule) -> RuleState:
        with self._lock:
            return next(s for r, s in self._rules if r is rule)

    # -- listener methods: compute, record, hand on; never block -------------------------------------
    def on_event(self, event: Event) -> None:
        if event.kind == "phase_start":
            name = event.data.get("name") or event.message
            with self._lock:
                self._phases.start(str(name), event.t)

    def on_phase(self, phase: Phase) -> None:
        with self._lock:
            self._phases.end(phase.name, phase.start_s, phase.end_s)

    def on_batch(self, batch: Batch) -> None:
        fired: list[Firing] = []
        with self._lock:
            procs: tuple[tuple[int, int], ...] | None = None
            for rule, state in self._rules:
                times, values = batch.series.get(rule.series, ((), ()))
                for t, v in zip(times, values):
                    if rule.phase is not None and not self._phases.open_at(rule.phase, t):
                        state.history.clear()
                        continue
                    measured = measure(rule, state, t, v)
                    if step(rule, state, t, measured):
                        if procs is None:
                            procs = largest_processes(batch)
                        fired.append(Firing(rule, t, measured, state.fires, procs))
            self.firings.extend(fired)
        for firing in fired:
            self._record(firing)
            if self.on_fire is not None:
                self.on_fire(firing)

    def _record(self, f: Firing) -> None:
        rule = f.rule
        scope = f" in phase {rule.phase!r}" if rule.phase else ""
        budget = f" (firing {f.fire} of at most {rule.max_fires})" if rule.max_fires > 1 else ""
        message = (
            f"threshold {rule.text} crossed{scope}: {rule.series} {rule.describe_value(f.value)} "
            f">= {rule.describe_line()} at {f.t:.3f}s{budget}"
        )
        data: dict[str, Any] = {
            "rule": rule.text,
            "kind": rule.kind,
            "series": rule.series,
            "value": f.value,
            "line": rule.line,
            "sample_t": f.t,
            "fire": f.fire,
            "max": rule.max_fires,
            "phase": rule.phase,
        }
        if rule.kind == "rate":
            data["window_s"] = rule.window
        if f.processes:
            data["pid"] = f.processes[0][0]
        self.recorder.add_event("trigger", message, level="warning", data=data, t=f.t)


class ThresholdLine:
    """The one absolute RSS line a user can move while recording (the GUI's draggable line).

    Set as ``recorder.threshold_handler``: :meth:`Recorder.set_threshold` then moves the rule in
    the engine, so a drag changes what fires rather than only what is drawn. The first size rule
    on ``rss`` given at the start (``--threshold 800MB``) is the line; its options (max, cooldown,
    rearm, phase) carry over to every position.
    """

    def __init__(self, engine: TriggerEngine, rule: Rule | None = None) -> None:
        self.engine = engine
        self.rule = rule

    @staticmethod
    def pick(rules: Iterable[Rule]) -> Rule | None:
        """The rule a line can show: an absolute size on ``rss``."""
        return next((r for r in rules if r.kind in ("size", "percent") and r.series == RSS_SERIES), None)

    def set(self, value: int | None) -> None:
        """Move the line to ``value`` bytes (None removes the rule)."""
        old = self.rule
        if old is not None and value is not None and abs(old.line - value) < 1:
            return  # the line drawn where the rule already is (a session's start): keep the user's rule
        new: Rule | None = None
        if value is not None:
            text = format_bytes(value)
            if old is not None:
                new = replace(
                    old, text=f"{old.phase}:{text}" if old.phase else text, kind="size", line=float(value), percent=None
                )
            else:
                new = Rule(text, "size", float(value))
        self.engine.replace_rule(old, new)
        self.rule = new


def largest_processes(batch: Batch) -> tuple[tuple[int, int], ...]:
    """(pid, rss) of every process in the batch at its last sample, largest first."""
    out = []
    for name, (_times, values) in batch.series.items():
        if name.startswith("pid:") and values:
            try:
                out.append((int(name[4:]), int(values[-1])))
            except ValueError:
                continue
    out.sort(key=lambda pv: -pv[1])
    return tuple(out)


__all__ = [
    "Firing",
    "PhaseTimeline",
    "Rule",
    "RuleError",
    "RuleState",
    "ThresholdLine",
    "TriggerEngine",
    "evaluate",
    "largest_processes",
    "measure",
    "parse_rule",
    "pressure_rule",
    "step",
    "total_memory",
]
