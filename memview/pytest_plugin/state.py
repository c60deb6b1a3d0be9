"""What the pytest plugin's hooks share: the marker's name, the run's options, and byte formatting.

Its own module so the hooks (:mod:`memview.pytest_plugin`), the marker's limits
(:mod:`.limits`) and the isolated runners (:mod:`.isolation`) can all read it without importing
each other: the arrows run from the hooks to the parts, never back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from memview.units import format_bytes

MARK = "memory_profile"
#: set on a test item inside the measuring child, so the plugin's own hook lets pytest call the function
IN_CHILD_ATTR = "_memview_in_child"
DEFAULT_TIMEOUT_S = 600.0
ISOLATIONS = ("auto", "fork", "spawn")
BASELINE_CASE = "pytest"  # the case name of the tests' entries in a memview baseline file


@dataclass
class PluginState:
    """The run's options (parsed once in ``pytest_configure``) and the measured tests' records."""

    db: str | None
    interval: float
    store: Any = None
    measured: list[dict[str, Any]] = field(default_factory=list)
    isolation: str = "auto"
    timeout: float = DEFAULT_TIMEOUT_S
    inline_report: str | None = None  # set in a spawned child: measure in-process, write the report here
    baseline_path: str | None = None
    baseline: dict[str, Any] | None = None
    update_baseline: bool = False


STATE_KEY = pytest.StashKey[PluginState]()


def exact_bytes(n: int | None) -> str:
    """``12.0 MiB (12,582,912 bytes)``: a figure a failure message states, to the byte."""
    return "unknown" if n is None else f"{format_bytes(n)} ({n:,} bytes)"


__all__ = [
    "BASELINE_CASE",
    "DEFAULT_TIMEOUT_S",
    "IN_CHILD_ATTR",
    "ISOLATIONS",
    "MARK",
    "STATE_KEY",
    "PluginState",
    "exact_bytes",
]
