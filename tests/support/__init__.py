"""Helpers shared by the test modules: the workloads, the interpreter, waiting for a condition.

A package, not ``conftest.py``: two conftest files (tests/ and tests/ui/) are both importable as the
module ``conftest``, so ``from support import …`` picked whichever pytest had loaded first and
``pytest tests/ui/… tests/test_watch.py`` failed at collection. ``pyproject.toml`` puts tests/ on
``pythonpath``, so every test module says ``from support import …``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
PY = sys.executable
MiB = 2**20


def workload(name: str, *args: object) -> list[str]:
    """argv for a workload script under tests/workloads/."""
    return [PY, str(WORKLOADS / name), *map(str, args)]


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.02) -> object:
    """Poll ``predicate`` until it returns something truthy (for conditions with no event to await).

    The timeout only ends a test that is already failing: it is generous so a loaded machine never
    reaches it, and nothing is asserted about how long the wait took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def kill_and_reap(proc: subprocess.Popen) -> int:
    """Kill the child if it still runs, wait for it and close its pipes; its return code.

    ``kill(); wait()`` alone leaves the pipes to the garbage collector, whose ResourceWarning then
    fails whichever later test it runs in (tests/support/popen_guard.py names the test instead)."""
    if proc.poll() is None:
        proc.kill()
    code = proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return code


__all__ = ["PY", "WORKLOADS", "MiB", "read_json", "kill_and_reap", "wait_for", "workload"]
