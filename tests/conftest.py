"""Shared fixtures: a fresh database per test and a way to run the real ``memview`` command."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support import PY, WORKLOADS, MiB, read_json, wait_for, workload

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
