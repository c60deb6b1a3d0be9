"""One session's marker sources, from launch preparation to the last drained line.

:class:`Markers` owns all the sources of one session: it prepares what the launch needs (the
inherited socket and ``MEMVIEW_FD``, pipes for ``--phase-regex``), starts the readers once the
:class:`~memview.phases.PhaseTracker` exists, and drains and stops them when the session closes.
How each source reads lives elsewhere: the select loop over descriptors in
:mod:`memview.marker_reader`, the MEMVIEW_FD socket pair and ``--phase-pipe`` in
:mod:`memview.marker_channels`, ``--phase-log`` in :mod:`memview.log_follower`. Every source runs
on its own daemon thread and only reads, splits lines and hands them on, so a program that floods
its channel is drained as fast as memview can parse, and one that writes nothing costs a blocked
thread.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
from dataclasses import dataclass
from typing import Any, Protocol

from memview.collectors import procfs
from memview.log_follower import LogFollower
from memview.marker_channels import Channel, PipePath
from memview.marker_reader import LineReader, Stream
from memview.markers import BadLine, Marker, MarkerError, RegexMarkers, parse_json_line

ENV_FD = "MEMVIEW_FD"
ENV_SYNC = "MEMVIEW_SYNC"

__all__ = ["ENV_FD", "ENV_SYNC", "MarkerError", "MarkerOptions", "MarkerSink", "Markers"]


class MarkerSink(Protocol):
    """What the sources hand lines to: the session's :class:`~memview.phases.PhaseTracker`."""

    def handle(self, item: Marker | BadLine | None) -> str | None:
        """Apply one parsed line; the marker's sync token once it is handled (to acknowledge)."""

    def warn(self, message: str, data: dict[str, Any] | None = None) -> None:
        """A problem with the markers themselves (a dropped line, a refused connection)."""

    def skip_mark(self) -> bool:
        """Count a mark line without parsing it while marks are being dropped (a flood)."""


@dataclass(slots=True)
class MarkerOptions:
    """What the user asked for (CLI options); the MEMVIEW_FD channel is on for every launch."""

    regex: tuple[str, ...] = ()
    preset: tuple[str, ...] = ()
    log: str | None = None
    pipe: str | None = None
    channel: bool = True

    @property
    def wants_output(self) -> bool:
        return bool(self.regex or self.preset) and not self.log


# -- one session's sources ----------------------------------------------------------------------------


class Markers:
    """All marker sources of one session, from launch preparation to the last drained line."""

    def __init__(
        self, options: MarkerOptions | None = None, launched: bool = True, target_pid: int | None = None
    ) -> None:
        self.options = options or MarkerOptions()
        allowed = {os.geteuid()}
        if target_pid is not None and (uid := procfs.owner_uid(target_pid)) is not None:
            allowed.add(uid)
        try:
            self.regex = RegexMarkers(self.options.regex, self.options.preset)
        except ValueError as exc:
            raise MarkerError(str(exc)) from None
        self.launched = launched
        if not launched and (self.options.regex or self.options.preset) and not self.options.log:
            raise MarkerError(
                "--phase-regex and --phase-preset need --phase-log FILE here: memview cannot "
                "read the output of a process it did not start"
            )
        self.channel: Channel | None = None
        self.pipe: PipePath | None = None
        self._pumps: list[tuple[int, Any]] = []  # (memview's own fd to pass through to, child pipe)
        self._reader: LineReader | None = None
        self._log: LogFollower | None = None
        self._tracker: MarkerSink | None = None
        if self.options.log:
            self._log = LogFollower(self.options.log, self._regex_log if self.regex else self._json_log)
        if self.options.pipe:
            self.pipe = PipePath(self.options.pipe, frozenset(allowed))
        if launched and self.options.channel and hasattr(socket, "socketpair") and os.name == "posix":
            self.channel = Channel()

    # -- before and after the fork --------------------------------------------------------------
    def launch_kwargs(self, env: dict[str, str] | None, **given: Any) -> dict[str, Any]:
        """Keyword arguments for :func:`memview.runner.launch`: env, pass_fds, stdout/stderr pipes."""
        kw: dict[str, Any] = {}
        if self.channel is not None:
            child_env = dict(os.environ if env is None else env)
            child_env[ENV_FD] = str(self.channel.child_fd)
            child_env.setdefault(ENV_SYNC, "1")  # "sync" lines are acknowledged (the Python probe waits for it)
            kw["env"] = child_env
            kw["pass_fds"] = (*given.get("pass_fds", ()), self.channel.child_fd)
        if self.options.wants_output and self.launched:
            if given.get("stdout") is None:
                kw["stdout"] = subprocess.PIPE
            if given.get("stderr") is None:
                kw["stderr"] = subprocess.PIPE
        return kw

    def after_launch(self, proc: subprocess.Popen[bytes] | None) -> None:
        """The child has its copies now: close ours of its end, take its output pipes."""
        if self.channel is not None:
            self.channel.close_theirs()
        if proc is not None:
            for pipe, own_fd in ((proc.stdout, 1), (proc.stderr, 2)):
                if pipe is not None and self.options.wants_output:
                    self._pumps.append((own_fd, pipe))

    # -- reading -----------------------------------------------------------------------------------
    def start(self, tracker: MarkerSink) -> None:
        """Start reading every source; their lines go to ``tracker``."""
        self._tracker = tracker
        warn = tracker.warn
        reader = LineReader("memview-markers", lambda msg: warn(msg))
        if self.channel is not None:
            reader.add(self.channel.stream(self._json_line))
        for own_fd, pipe in self._pumps:
            fd = pipe.fileno()
            via = "stdout" if own_fd == 1 else "stderr"
            reader.add(
                Stream(fd, functools.partial(os.read, fd), self._regex_line, via, pipe.close, passthrough=own_fd)
            )
        if self.pipe is not None:
            self.pipe.attach(reader, self._json_line)
        if not reader.empty:
            self._reader = reader
            reader.start()
        if self._log is not None:
            self._log.warn = warn
            self._log.start()

    def _sink(self) -> MarkerSink:
        if self._tracker is None:
            raise RuntimeError("a marker line was read before Markers.start")
        return self._tracker

    def _json_line(self, line: bytes, stream: Stream) -> None:
        sink = self._sink()
        if b'"mark"' in line and b'"phase_' not in line and sink.skip_mark():
            return  # a flood of marks: counted, not parsed
        token = sink.handle(parse_json_line(line, stream.via))
        if token is not None and stream.ack is not None:
            stream.ack(token.encode())

    def _regex_line(self, line: bytes, stream: Stream) -> None:
        if self.regex:
            self._sink().handle(self.regex.match(line.decode("utf-8", "replace"), stream.via))

    def _json_log(self, line: bytes) -> None:
        self._sink().handle(parse_json_line(line, "log"))

    def _regex_log(self, line: bytes) -> None:
        self._sink().handle(self.regex.match(line.decode("utf-8", "replace"), "log"))

    def stop(self, timeout: float = 1.0) -> None:
        """Drain: give the streams ``timeout`` seconds to reach EOF (the child has usually exited)."""
        if self._reader is not None:
            self._reader.stop(timeout)
            self._reader = None
        if self._log is not None and self._log.is_alive():
            self._log.stop()
        self.close()

    def close(self) -> None:
        """Release everything (idempotent; also after a failed launch, without reading)."""
        if self.channel is not None:
            self.channel.close()
        for _own, pipe in self._pumps:
            try:
                pipe.close()
            except OSError:
                pass
        if self.pipe is not None:
            self.pipe.close()
        if self._log is not None and not self._log.is_alive():
            self._log.close()  # never started (a failed launch): its file and wake-up pipe
