"""What every case needs: a process's own CPU from ``wait4``, medians and percentiles, the machine.

Why ``wait4``: the kernel's rusage of a reaped process is exact (no sampling of /proc/PID/stat at
10 ms ticks) and covers every thread that ever ran in it, plus the children it reaped itself —
for a monitor recording ``sleep``, that is a constant millisecond which the 3 s / 13 s slope
cancels along with start-up.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
WORKLOADS = BENCH / "workloads"
PY = sys.executable


def env(**extra: str) -> dict[str, str]:
    """The environment for memview subprocesses: this checkout first on the path."""
    out = dict(os.environ)
    old = out.get("PYTHONPATH")
    out["PYTHONPATH"] = str(ROOT) + (os.pathsep + old if old else "")
    out.update(extra)
    return out


def memview_argv(*args: object) -> list[str]:
    return [PY, "-m", "memview", *map(str, args)]


def workload(name: str, *args: object) -> list[str]:
    return [PY, str(WORKLOADS / name), *map(str, args)]


@dataclass(slots=True)
class Finished:
    returncode: int
    cpu_s: float  # user + system of the process (and of the children it reaped itself)
    wall_s: float


class Proc:
    """A started process whose CPU time is read with ``wait4`` when it ends; killed after ``timeout``."""

    def __init__(self, argv: Sequence[str], timeout: float = 120.0, **popen_kw: Any) -> None:
        popen_kw.setdefault("stdout", subprocess.DEVNULL)
        popen_kw.setdefault("stderr", subprocess.PIPE)
        popen_kw.setdefault("env", env())
        self.argv = list(argv)
        self.t0 = time.perf_counter()
        self.popen = subprocess.Popen(self.argv, **popen_kw)
        self._timer = threading.Timer(timeout, self._kill)
        self._timer.daemon = True
        self._timer.start()
        self.timed_out = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _kill(self) -> None:
        self.timed_out = True
        try:
            self.popen.kill()
        except ProcessLookupError:
            pass

    def finish(self) -> Finished:
        err = b""
        if self.popen.stderr is not None:
            err = self.popen.stderr.read()  # drains until the process closes it (it exits)
            self.popen.stderr.close()
        _, status, usage = os.wait4(self.popen.pid, 0)
        wall = time.perf_counter() - self.t0
        self._timer.cancel()
        code = os.waitstatus_to_exitcode(status)
        self.popen.returncode = code
        if self.timed_out:
            raise RuntimeError(f"timed out: {' '.join(self.argv)}")
        if code != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"exit {code}: {' '.join(self.argv)}: {' | '.join(tail)}")
        return Finished(code, usage.ru_utime + usage.ru_stime, wall)


def median(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    """Wall seconds of ``reps`` calls of ``fn``."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.005) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"condition not met within {timeout}s")


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """Where the figures come from: enough to tell two machines (and two runs) apart."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    sha = None
    try:
        sha = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_bytes": mem,
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "git_sha": sha,
        "loadavg_start": loadavg(),
    }


@dataclass
class Figure:
    """One line of the results table: a measured value and, when the issue sets one, its goal."""

    case: str
    name: str
    value: Any
    unit: str = ""
    goal: str = ""
    met: bool | None = None  # None: no goal, or not measured
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "met": self.met,
            "note": self.note,
        }


@dataclass
class CaseResult:
    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def add(
        self, name: str, value: Any, unit: str = "", goal: str = "", met: bool | None = None, note: str = ""
    ) -> Figure:
        fig = Figure(self.name, name, value, unit, goal, met, note)
        self.figures.append(fig)
        return fig


def rounded(value: Any, digits: int = 3) -> Any:
    if isinstance(value, float):
        return round(value, digits)
    return value


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
