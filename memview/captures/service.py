"""Which capture to take of which process, when a rule fires or the user asks ("Capture now").

The trigger engine says *when* (a firing, with the tree's processes by size at that moment);
this module decides *what*: the tools the user chose, or for ``auto`` the ones that fit the
largest process (py-spy dump + record for Python, a heap snapshot for node, heaptrack for the
rest), each aimed at the largest process of the right kind. The decision runs on the executor's
thread; the listener side only queues.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memview.captures import heaptrack, memray, node, pyspy
from memview.captures.base import ToolFn
from memview.captures.detect import descendants, process_kind
from memview.captures.executor import CaptureJob, Executor
from memview.collectors import procfs
from memview.model import Batch
from memview.triggers import Firing, largest_processes

#: tool name -> (function, the kind of process it needs: python, node or any)
TOOLS: dict[str, tuple[ToolFn, str]] = {
    "py-spy-dump": (pyspy.dump, "python"),
    "py-spy-record": (pyspy.record, "python"),
    "heaptrack": (heaptrack.attach, "any"),
    "memray": (memray.attach, "python"),
    "node-heap-snapshot": (node.snapshot, "node"),
}
AUTO = {
    "python": ("py-spy-dump", "memray"),
    "node": ("node-heap-snapshot",),
    "native": ("heaptrack",),
}


def default_time_limit(tool: str, duration: float) -> float:
    """How long a capture may take before it is killed: generous, since a big heap takes a while."""
    return {
        "py-spy-dump": 30.0,
        "py-spy-record": duration + 30.0,
        "heaptrack": duration + 120.0,  # gdb attach twice, then heaptrack_print
        "memray": duration + 120.0,  # gdb attach and detach (seconds each on a loaded machine), then the summary
        "node-heap-snapshot": 300.0,
    }[tool]


@dataclass
class CaptureConfig:
    tools: list[str]  # empty: record firings only
    duration: float = 5.0
    max_captures: int = 10
    time_limit: float | None = None
    native: bool = False
    env: dict[str, str] | None = None
    node_inspector: bool = False  # --node-inspector: node snapshots may open the 127.0.0.1 inspector


class CaptureService:
    """Turns firings and "Capture now" into capture jobs; a recorder listener (keeps the latest sizes)."""

    def __init__(
        self, recorder: Any, config: CaptureConfig, root_pid: int | None = None, heaptrack_pid: int | None = None
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.root_pid = root_pid
        self.heaptrack_pid = heaptrack_pid  # already under heaptrack (launch mode)
        self._latest: tuple[tuple[int, int], ...] = ()
        store = recorder.store

        def out_dir() -> Path:
            if store is None:
                import tempfile

                return Path(tempfile.mkdtemp(prefix="memview-captures-"))
            return store.artefact_dir(recorder.session_id)

        self.executor = Executor(recorder, out_dir, config.max_captures, env=config.env)
        recorder.capture_handler = self.request
        recorder.add_listener(self)

    # -- listener methods -------------------------------------------------------------------------
    def on_batch(self, batch: Batch) -> None:
        procs = largest_processes(batch)
        if procs:
            self._latest = procs

    def on_closing(self, _recorder: Any) -> None:
        self.executor.close(timeout=self.config.time_limit or self.config.duration + 300.0)

    # -- what starts a capture ----------------------------------------------------------------------
    def on_fire(self, firing: Firing) -> None:
        """A rule fired (sampler thread): queue the plan, return at once."""
        if not self.config.tools:
            return
        data = {"crossed_s": firing.t, "value": firing.value, "rule": firing.rule.text, "fire": firing.fire}
        self._submit(firing.rule.text, firing.processes or self._latest, data)

    def request(self, reason: str = "manual") -> None:
        """ "Capture now": the configured tools, or auto when none were chosen."""
        trigger = "manual" if reason in ("", "manual") else f"manual: {reason}"
        self._submit(trigger, self._latest, {"reason": reason}, tools=self.config.tools or ["auto"])

    def _submit(
        self, trigger: str, processes: Iterable[tuple[int, int]], data: dict[str, Any], tools: list[str] | None = None
    ) -> None:
        procs = tuple(processes)
        chosen = list(tools or self.config.tools)
        self.executor.submit(lambda: self.plan(trigger, procs, data, chosen))

    # -- the decision (executor thread) --------------------------------------------------------------
    def plan(
        self, trigger: str, processes: tuple[tuple[int, int], ...], data: dict[str, Any], tools: list[str]
    ) -> list[CaptureJob]:
        candidates = [pid for pid, _ in processes]
        if not candidates and self.root_pid is not None:
            candidates = [self.root_pid]
        if not candidates:
            self.recorder.add_event(
                "capture_skipped",
                "nothing to capture: this session has no local process",
                level="warning",
                data={"trigger": trigger},
            )
            return []
        kinds = {pid: process_kind(pid) for pid in candidates}
        live = [pid for pid in candidates if kinds[pid] != "gone"]
        if not live:
            self.recorder.add_event(
                "capture_skipped",
                "nothing to capture: the processes have exited",
                level="warning",
                data={"trigger": trigger},
            )
            return []
        if tools == ["auto"]:
            tools = list(AUTO[kinds[live[0]]])
        jobs = []
        for tool in tools:
            fn, needs = TOOLS[tool]
            pid = live[0] if needs == "any" else next((p for p in live if kinds[p] == needs), None)
            if pid is None:
                self.recorder.add_event(
                    "capture_skipped",
                    f"{tool}: no {needs} process in the monitored tree "
                    f"(processes: {', '.join(f'{p} {kinds[p]}' for p in live)})",
                    level="warning",
                    data={"tool": tool, "trigger": trigger},
                )
                continue
            if tool == "heaptrack" and pid == self.heaptrack_pid:
                self.recorder.add_event(
                    "capture_skipped",
                    f"heaptrack: PID {pid} runs under heaptrack since its "
                    "launch (--heaptrack); the crossing is marked in its timeline instead",
                    data={"tool": tool, "trigger": trigger},
                )
                continue
            subprocesses = False
            if tool.startswith("py-spy"):
                pid, subprocesses = _python_tree_top(pid, kinds)
            limit = self.config.time_limit or default_time_limit(tool, self.config.duration)
            if (release := getattr(self.recorder.collector, "release", None)) is not None:
                for p in [pid, *(descendants(pid) if subprocesses else [])]:
                    release(p)  # memview's tracer steps aside: a process has one ptracer at a time
            jobs.append(
                CaptureJob(
                    tool,
                    fn,
                    pid,
                    trigger,
                    self.config.duration,
                    limit,
                    native=self.config.native,
                    subprocesses=subprocesses,
                    data={**data, "process_kind": kinds[pid]},
                    allow_inspector=self.config.node_inspector,
                )
            )
        return jobs


def _python_tree_top(pid: int, kinds: dict[int, str]) -> tuple[int, bool]:
    """Where py-spy should look: the topmost Python ancestor of ``pid`` within the monitored tree,
    and whether to add ``--subprocesses`` (the target has Python descendants). One py-spy run then
    covers a pool's parent and all its workers, the largest one included."""
    top = pid
    while True:
        st = procfs.stat(top)
        if st is None:
            break
        parent = st.ppid
        if kinds.get(parent) != "python":
            break
        top = parent
    has_children = top != pid or any(process_kind(d) == "python" for d in descendants(top))
    return top, has_children
