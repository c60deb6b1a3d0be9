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
        return subprocess.run(
            [PY, "-m", "memview", *args], capture_output=True, text=True, timeout=timeout, env=env, **kw
        )

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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests that share a module-scoped fixture on one xdist worker.

    Each worker builds its own copy of a module-scoped fixture, so spreading a module's tests over four
    workers built the expensive ones (a recorded bundle, a Prometheus fleet, a capture per tool) up to
    four times: minutes of the suite's wall time under load. Marked ``xdist_group(<module>)``, they
    are built once; without -n the mark does nothing."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        if any(d.scope in ("module", "package") for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else item.nodeid))
