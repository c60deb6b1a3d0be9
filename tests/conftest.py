"""Shared fixtures: a fresh database per test and a way to run the real ``memview`` command."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import PY, WORKLOADS, MiB, popen_guard, read_json, wait_for, workload

# kept importable from here for tests written before tests/support/ existed; new code imports support
__all__ = ["PY", "WORKLOADS", "MiB", "read_json", "wait_for", "workload"]


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


popen_guard.install()


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail the test that left a ``Popen`` unwaited or its pipes open (see support/popen_guard.py).

    Autouse and function-scoped, so it is set up before and torn down after the test's own fixtures:
    a fixture that starts a process and reaps it in its teardown is not a leak."""
    with popen_guard.watching() as problems:
        yield
    if problems:
        pytest.fail("left behind by this test:\n" + "\n".join(problems), pytrace=False)
