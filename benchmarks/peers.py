"""The tools memview is compared with: memory_profiler's ``mprof`` and ``psrecord``.

They are run as ``python -m mprof`` / ``python -m psrecord`` with an interpreter that has them,
so no console-script shims (pyenv's are bash scripts) distort start-up. This interpreter is used
when it has both; otherwise a virtualenv is created under ``benchmarks/out/peers-venv`` and the
versions measured for RESULTS.md are pip-installed into it (``MEMVIEW_BENCH_PEERS_PY`` names
another interpreter instead).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.measure import BENCH

PINNED = ["memory_profiler==0.61.0", "psrecord==1.4"]
_PROBE = (
    "import importlib.metadata as m, mprof, psrecord; "
    "print(m.version('memory_profiler'), m.version('psrecord'), m.version('psutil'))"
)


def _versions(python: str) -> list[str] | None:
    res = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    return res.stdout.split() if res.returncode == 0 else None


def ensure(out: Path | None = None) -> dict[str, object]:
    """argv prefixes for both peers, installing them first if this machine has neither."""
    python = os.environ.get("MEMVIEW_BENCH_PEERS_PY") or sys.executable
    found = _versions(python)
    installed = False
    if found is None:
        venv = (out or BENCH / "out") / "peers-venv"
        python = str(venv / "bin" / "python")
        if not Path(python).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        found = _versions(python)
        if found is None:
            subprocess.run([python, "-m", "pip", "install", "-q", *PINNED], check=True)
            installed = True
            found = _versions(python)
        if found is None:
            raise RuntimeError(f"could not install {' '.join(PINNED)} into {venv}")
    return {
        "python": python,
        "mprof": [python, "-m", "mprof"],
        "psrecord": [python, "-m", "psrecord"],
        "versions": {"memory_profiler": found[0], "psrecord": found[1], "psutil": found[2]},
        "installed_now": installed,
    }
