"""Session metadata: where and with what a run happened (the profiling plan's must-haves).

The slow parts (``node --version``, ``git rev-parse``) run in a background thread so they never
delay the first sample of a launched child.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
from typing import Any

from memview import __version__


def _quiet(argv: list[str], cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def collect(cwd: str) -> dict[str, Any]:
    """Host, platform, Python, node, git SHA of ``cwd``, memview version."""
    meta: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "memview": __version__,
        "node": None,
        "git_sha": None,
    }
    if shutil.which("node"):
        meta["node"] = _quiet(["node", "--version"])
    if shutil.which("git"):
        meta["git_sha"] = _quiet(["git", "rev-parse", "HEAD"], cwd=cwd)
        if meta["git_sha"]:
            meta["git_dirty"] = bool(_quiet(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd))
    try:
        import psutil

        meta["total_memory_bytes"] = psutil.virtual_memory().total
    except Exception:  # metadata must never fail a session
        pass
    return meta


class MetaCollector(threading.Thread):
    """Collects :func:`collect` in the background; ``result()`` waits for it."""

    def __init__(self, cwd: str) -> None:
        super().__init__(name="memview-meta", daemon=True)
        self.cwd = cwd
        self._meta: dict[str, Any] = {}

    def run(self) -> None:
        self._meta = collect(self.cwd)

    def result(self, timeout: float = 10.0) -> dict[str, Any]:
        self.join(timeout)
        return dict(self._meta)
