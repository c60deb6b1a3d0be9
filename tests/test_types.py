"""The core type-checks: mypy with the project's configuration ([tool.mypy] in pyproject.toml) finds nothing.

Modules with known errors are listed there by error code; anything new anywhere fails here (and in .ci/run).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean_on_the_core() -> None:
    res = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert res.stdout.startswith("Success: no issues found"), res.stdout
