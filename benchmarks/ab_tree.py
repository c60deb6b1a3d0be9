"""A tree's CPU, two checkouts side by side in the same run: ``python -m benchmarks.ab_tree BEFORE [ROUNDS]``.

BEFORE is another checkout of memview (e.g. ``git archive main | tar -x -C /tmp/before``); this one
is "after". Each group (a ``sleep`` at 100 Hz with mprof when the peers venv has it, then a
50-process tree at 20 Hz and at 100 Hz) starts both recorders at once, and each one's CPU slope
between 3 s and 13 s is read from ``/proc`` (``case_exact._measure_group``): same machine, same load.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.case_exact import _measure_group
from benchmarks.measure import PY, ROOT, workload


def main(before: str, rounds: int = 3) -> None:
    tmp = tempfile.mkdtemp(prefix="ab-tree-")
    a, b, secs = 3.0, 13.0, 15
    venv_py = ROOT / "benchmarks" / "out" / "peers-venv" / "bin" / "python"
    mprof_py = os.environ.get("MEMVIEW_BENCH_PEERS_PY") or str(venv_py)

    def argv(src: str, tag: str, *args: object) -> list[str]:
        return [
            "env",
            f"PYTHONPATH={src}",
            PY,
            "-m",
            "memview",
            "run",
            "-q",
            "--db",
            f"{tmp}/{tag}.db",
            *map(str, args),
        ]

    for r in range(rounds):
        got: dict[str, float] = {}
        pair = {
            "before @100Hz sleep": argv(before, f"b{r}", "-i", "0.01", "--", "sleep", secs),
            "after @100Hz sleep": argv(str(ROOT), f"a{r}", "-i", "0.01", "--", "sleep", secs),
        }
        if Path(mprof_py).exists():
            pair["mprof @100Hz sleep"] = [
                mprof_py,
                "-m",
                "mprof",
                "run",
                "-o",
                f"{tmp}/m{r}.dat",
                "-T",
                "0.01",
                "sleep",
                str(secs),
            ]
        got |= _measure_group(pair, a, b, secs)
        for hz, extra in (("20Hz", []), ("100Hz", ["-i", "0.01"])):
            got |= _measure_group(
                {
                    f"before tree50 @{hz}": argv(before, f"tb{r}{hz}", *extra, "--", *workload("tree.py", 50, secs)),
                    f"after tree50 @{hz}": argv(str(ROOT), f"ta{r}{hz}", *extra, "--", *workload("tree.py", 50, secs)),
                },
                a,
                b,
                secs,
            )
        print(json.dumps({k: round(v * 100, 2) for k, v in got.items()}), flush=True)
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
