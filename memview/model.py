"""The plain records that flow from collectors through the recorder to the store and listeners.

They are small, immutable where they cross threads, and hold only numbers and strings so the
store, the CLI printer and the Qt bridge can all read them without knowing each other.
Times are seconds; ``t`` is seconds since the session started unless a field says otherwise.
Sizes are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Where a peak figure came from. Exact sources are the kernel's own high-water marks.
SOURCE_VMHWM = "kernel:VmHWM"
SOURCE_MAXRSS = "kernel:ru_maxrss"
SOURCE_SAMPLED = "sampled"
SOURCE_ENDPOINT = "endpoint"
#: VmHWM read at the process's ptrace exit stop: its own peak, exact, including its last moments.
SOURCE_EXIT = "kernel:VmHWM@exit"
#: The tree's peak as the sum of each process's exact per-interval maximum: an upper bound.
SOURCE_BOUND = "bound:sum-of-interval-maxima"
#: A tree's peak where the sampled sum met the upper bound (sum of per-interval maxima): exact.
SOURCE_ENVELOPE = "kernel:envelope"
EXACT_SOURCES = frozenset({SOURCE_VMHWM, SOURCE_MAXRSS, SOURCE_EXIT, SOURCE_ENVELOPE})

#: The series every process session has: the summed RSS of the whole tree.
RSS_SERIES = "rss"


#: The tree's envelope: per sample, the sum of each process's exact maximum since the previous
#: sample (VmHWM read, then reset with clear_refs). An upper bound of the tree's RSS in that interval.
ENVELOPE_SERIES = "rss_envelope"


def proc_series(pid: int) -> str:
    """Name of the per-process RSS series for ``pid``."""
    return f"pid:{pid}"


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """Figures read at one process's exit (a ptrace exit stop), or the best there is.

    ``hwm_bytes`` is the process's VmHWM at the exit stop: its peak since its last exec, or since
    the last high-water-mark reset. ``source`` says how it was obtained ("kernel:VmHWM@exit",
    "kernel:ru_maxrss", "sampled").
    """

    pid: int
    t: float
    hwm_bytes: int | None
    rss_bytes: int | None
    source: str


@dataclass(slots=True)
class Reading:
    """What one collector read returns: the tree total and, optionally, more series.

    ``values`` maps series name -> integer value (bytes for memory series). A reading may omit
    a series (a process that is gone, an endpoint field that is missing); that is a gap, not 0.
    """

    t: float
    values: dict[str, int]
    #: earlier points of this reading, oldest first: ``(t, values)`` at moments the tree changed
    #: between samples (a process exited: the total without it, from its exit on)
    before: list[tuple[float, dict[str, int]]] | None = None


@dataclass(slots=True)
class Batch:
    """Samples handed across a thread boundary at once: columns of times and values per series.

    ``series[name]`` is a pair of equal-length lists ``(times, values)``. Batches are built by the
    sampler and never mutated after they are handed on.
    """

    session_id: int
    series: dict[str, tuple[list[float], list[int]]]

    def total(self) -> tuple[list[float], list[int]]:
        return self.series.get(RSS_SERIES, ([], []))


@dataclass(slots=True)
class ProcessInfo:
    """One process seen in the monitored tree, with its own peak."""

    pid: int
    ppid: int | None
    name: str
    cmdline: list[str]
    create_time: float | None
    first_t: float
    last_t: float
    peak_rss_bytes: int = 0
    peak_source: str = SOURCE_SAMPLED
    exit_code: int | None = None

    def as_summary(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "name": self.name,
            "cmdline": self.cmdline,
            "first_s": round(self.first_t, 6),
            "last_s": round(self.last_t, 6),
            "peak_rss_bytes": self.peak_rss_bytes,
            "peak_source": self.peak_source,
        }

    def to_row(self) -> dict[str, Any]:
        """The process as the store's `processes` table holds it (unrounded times and its exit code)."""
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "name": self.name,
            "cmdline": self.cmdline,
            "create_time": self.create_time,
            "first_s": self.first_t,
            "last_s": self.last_t,
            "peak_rss_bytes": self.peak_rss_bytes,
            "peak_source": self.peak_source,
            "exit_code": self.exit_code,
        }


@dataclass(slots=True)
class Event:
    """Something that happened in a session: a warning, a gap, a trigger firing, a mark."""

    t: float
    kind: str
    message: str
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Phase:
    """A named interval the monitored program announced, with its own statistics."""

    name: str
    depth: int
    start_s: float
    end_s: float | None = None
    start_rss_bytes: int | None = None
    end_rss_bytes: int | None = None
    peak_rss_bytes: int | None = None
    peak_source: str = SOURCE_SAMPLED
    flags: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def growth_bytes(self) -> int | None:
        if self.start_rss_bytes is None or self.end_rss_bytes is None:
            return None
        return self.end_rss_bytes - self.start_rss_bytes

    def to_row(self) -> dict[str, Any]:
        """The phase as the store's `phases` table and the UI's phase lists hold it (one mapping)."""
        return {
            "name": self.name,
            "depth": self.depth,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "start_rss_bytes": self.start_rss_bytes,
            "end_rss_bytes": self.end_rss_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
            "peak_source": self.peak_source,
            "growth_bytes": self.growth_bytes,
            "flags": list(self.flags),
            "data": dict(self.data),
        }


@dataclass(slots=True)
class Capture:
    """A deeper capture (py-spy, heaptrack, heap snapshot) and where its artefacts are."""

    tool: str
    pid: int | None
    trigger: str
    started_s: float
    ended_s: float | None = None
    path: str | None = None
    size_bytes: int | None = None
    exit_status: int | None = None
    status: str = "running"
    stderr_tail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """The capture as the store's `captures` table and the UI's capture list hold it (one mapping)."""
        return {
            "tool": self.tool,
            "pid": self.pid,
            "trigger": self.trigger,
            "started_s": self.started_s,
            "ended_s": self.ended_s,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "exit_status": self.exit_status,
            "status": self.status,
            "stderr_tail": self.stderr_tail,
            "data": dict(self.data),
        }
