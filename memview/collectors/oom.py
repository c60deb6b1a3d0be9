"""Did the OOM killer take the process? Counters the kernel keeps, read before and after.

A SIGKILL alone does not say "out of memory". The kernel counts OOM kills per memory cgroup
(v2 ``memory.events``, v1 ``memory.oom_control``) and system-wide (``/proc/vmstat``), all readable
without dmesg. memview reads them when a child starts and again when it is reaped.
"""

from __future__ import annotations

from dataclasses import dataclass

from memview.collectors import procfs


def _counter(path: str, key: str = "oom_kill") -> int | None:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def _cgroup_files(pid: int) -> list[str]:
    """memory.events (v2) or memory.oom_control (v1) of the cgroup ``pid`` is in."""
    files = []
    for controllers, path in procfs.cgroups(pid):
        if controllers == "":
            files.append(f"/sys/fs/cgroup{path.rstrip('/')}/memory.events")
        elif "memory" in controllers.split(","):
            files.append(f"/sys/fs/cgroup/memory{path.rstrip('/')}/memory.oom_control")
    return files


@dataclass(slots=True)
class OomWatch:
    """OOM-kill counters of a process's cgroup and of the system, taken at launch."""

    files: list[str]
    before: dict[str, int | None]

    @classmethod
    def start(cls, pid: int) -> OomWatch:
        files = [*_cgroup_files(pid), procfs.VMSTAT]
        return cls(files, {f: _counter(f) for f in files})

    def kills(self) -> tuple[int, str] | None:
        """(new OOM kills, where counted) since start, most specific counter first; None if none."""
        for f in self.files:
            old, new = self.before.get(f), _counter(f)
            if old is not None and new is not None and new > old:
                return new - old, f
        return None
