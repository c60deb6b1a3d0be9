"""The trigger and capture settings shared by ``run``, ``attach``, ``watch``, profile cases and the GUI.

Kept out of ``cli.py`` so the command functions stay "parse, call, print": a command adds
``@capture_options()`` (memview.commands.capture_options, the click side) and calls
:meth:`CaptureSetup.from_cli` with what the options gave, then ``setup.install(session)`` before
sampling starts (``run`` passes it as ``before_start`` and ``setup.launch_env()`` as the child's
environment). Bad values raise :class:`memview.errors.OptionError`: this module does not import click.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from memview.errors import OptionError

if TYPE_CHECKING:
    from memview.triggers import Rule

#: ``--capture`` values; the tool names are the keys of ``memview.captures.service.TOOLS`` (imported
#: lazily: ``memview --help`` should not load every capture module)
TOOL_NAMES = ("py-spy-dump", "py-spy-record", "memray", "heaptrack", "node-heap-snapshot")
CHOICES = (*TOOL_NAMES, "auto", "none")

#: what ``memview run`` tells node to write a heap snapshot on (node's own route: no inspector port)
NODE_SNAPSHOT_SIGNAL = "SIGUSR2"


def parse_tools(text: str | None) -> list[str]:
    """``--capture`` value: one tool, a comma list, ``auto`` or ``none``; ValueError with the choices."""
    if text is None:
        return []
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in CHOICES]
    if bad or not names:
        raise ValueError(f"unknown capture {', '.join(bad) or repr(text)}; choose from {', '.join(CHOICES)}")
    if "none" in names:
        if len(names) > 1:
            raise ValueError("--capture none cannot be combined with other tools")
        return []
    if "auto" in names and len(names) > 1:
        raise ValueError("--capture auto cannot be combined with other tools")
    return list(dict.fromkeys(names))


def _seconds(value: str | None, name: str) -> float | None:
    from memview.units import UnitError, parse_duration

    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except UnitError as exc:
        raise OptionError(str(exc), name) from None
    if seconds <= 0:
        raise OptionError("must be longer than 0s", name)
    return seconds


class CaptureSetup:
    """Rules and capture configuration of one session, ready to attach to its recorder."""

    def __init__(self, rules: list[Rule], config: Any, heaptrack_launch: bool = False) -> None:
        self.rules = rules
        self.config = config
        self.heaptrack_launch = heaptrack_launch
        self.memray: Any = None  # MemrayLaunch with --memray
        self.engine: Any = None  # TriggerEngine once installed
        self.service: Any = None  # CaptureService once installed
        self._launch: Any = None

    @classmethod
    def from_cli(
        cls,
        thresholds: tuple[str, ...] = (),
        on_pressure: str | None = None,
        capture: str | None = None,
        capture_duration: str = "5s",
        capture_timeout: str | None = None,
        max_captures: int = 10,
        capture_native: bool = False,
        heaptrack_launch: bool = False,
        node_inspector: bool = False,
        memray_launch: bool = False,
    ) -> CaptureSetup:
        """Validate the options; bad input raises OptionError (one clear line, nothing started)."""
        from memview.triggers import RuleError, parse_rule, pressure_rule  # not on `memview --help`'s path

        rules = []
        for text in thresholds:
            try:
                rules.append(parse_rule(text))
            except RuleError as exc:
                raise OptionError(str(exc), "--threshold") from None
        if on_pressure:
            rules.append(pressure_rule(on_pressure))
        try:
            tools = parse_tools(capture)
        except ValueError as exc:
            raise OptionError(str(exc), "--capture") from None
        if capture is None and rules:
            tools = ["auto"]
        from memview.captures.service import CaptureConfig

        duration = _seconds(capture_duration, "--capture-duration") or 5.0
        config = CaptureConfig(
            tools,
            duration,
            max_captures,
            _seconds(capture_timeout, "--capture-timeout"),
            capture_native,
            env=dict(os.environ),
            node_inspector=node_inspector,
        )
        setup = cls(rules, config, heaptrack_launch)
        if memray_launch:
            from memview.captures.memray import MemrayLaunch

            setup.memray = MemrayLaunch()
        return setup

    @property
    def active(self) -> bool:
        return bool(self.rules or self.config.tools or self.heaptrack_launch or self.memray)

    def launch_argv(self, argv: list[str]) -> list[str]:
        """The command as launched: under ``memray run`` with ``--memray`` (one clear error otherwise)."""
        if self.memray is None:
            return argv
        try:
            return self.memray.wrap(argv)
        except ValueError as exc:
            self.memray.abandon()
            raise OptionError(str(exc), "--memray") from None

    def launch_env(self, base: dict[str, str] | None = None) -> dict[str, str] | None:
        """The launched command's environment, or None to inherit memview's unchanged.

        ``--heaptrack`` adds heaptrack's preload library; a possible node capture adds
        ``--heapsnapshot-signal=SIGUSR2`` to NODE_OPTIONS, so node writes its own snapshot on that
        signal and no inspector (a TCP port every local user can reach) is ever opened. With
        ``--node-inspector`` it also adds ``--inspect-port=0`` (a free port rather than a busy 9229).
        """
        env: dict[str, str] | None = None
        if self.heaptrack_launch:
            from memview.captures.base import CaptureError
            from memview.captures.heaptrack import HeaptrackLaunch

            try:
                self._launch = HeaptrackLaunch(self.config.env)
            except CaptureError as exc:
                raise OptionError(str(exc), "--heaptrack") from None
            env = self._launch.child_env(base)
        if set(self.config.tools) & {"auto", "node-heap-snapshot"}:
            env = dict(os.environ if base is None else base) if env is None else env
            node_opts = env.get("NODE_OPTIONS", "")
            if "--heapsnapshot-signal" not in node_opts:
                node_opts = (node_opts + f" --heapsnapshot-signal={NODE_SNAPSHOT_SIGNAL}").strip()
            if self.config.node_inspector and "--inspect" not in node_opts and "--debug-port" not in node_opts:
                node_opts = (node_opts + " --inspect-port=0").strip()
            env["NODE_OPTIONS"] = node_opts
        return env

    def install(self, session: Any, movable_line: bool = False) -> None:
        """Attach the engine and the capture service to ``session.recorder`` (before sampling starts).

        ``movable_line`` (the GUI): always attach both, even with no rule yet, and let
        :meth:`Recorder.set_threshold` move the line rule (:class:`memview.triggers.ThresholdLine`),
        so the draggable line and "Capture now" work in every session.
        """
        if not (self.active or movable_line):
            return
        from memview.captures.service import CaptureService
        from memview.triggers import ThresholdLine, TriggerEngine

        rec = session.recorder
        heaptrack_pid = None
        if self.memray is not None:
            self.memray.install(session)
        if self._launch is not None:
            self._launch.install(session)
            heaptrack_pid = session.proc.pid
        root = getattr(getattr(session, "collector", None), "root_pid", None)
        self.service = CaptureService(rec, self.config, root_pid=root, heaptrack_pid=heaptrack_pid)
        if self.rules or movable_line:
            self.engine = TriggerEngine(rec, self.rules, on_fire=self.service.on_fire)
            rec.add_listener(self.engine)
        if movable_line:
            rec.threshold_handler = ThresholdLine(self.engine, ThresholdLine.pick(self.rules)).set
        if self.rules:
            what = ", ".join(self.config.tools) or "none (events only)"
            rec.add_event(
                "triggers",
                f"watching {len(self.rules)} rule(s): {'; '.join(r.text for r in self.rules)} — capture: {what}",
                data={"rules": [r.text for r in self.rules], "capture": self.config.tools},
                t=0.0,
            )

    def abandon(self) -> None:
        """The command did not start: remove what ``launch_env`` prepared."""
        if self._launch is not None:
            self._launch.abandon()
        if self.memray is not None:
            self.memray.abandon()
