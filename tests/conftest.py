"""Shared fixtures: a fresh database per test and a way to run the real ``memview`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).parent / "workloads"
PY = sys.executable


def workload(name: str, *args: object) -> list[str]:
    """argv for a workload script under tests/workloads/."""
    return [PY, str(WORKLOADS / name), *map(str, args)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memview.db"


@pytest.fixture
def memview(db_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m memview ARGS --db <tmp>`` to completion and return the result."""

    def run(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MEMVIEW_DB": str(db_path)}
        return subprocess.run([PY, "-m", "memview", *args], capture_output=True, text=True, timeout=timeout,
                              env=env, **kw)

    return run


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.02) -> object:
    """Poll ``predicate`` until it returns something truthy (for conditions with no event to await)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
