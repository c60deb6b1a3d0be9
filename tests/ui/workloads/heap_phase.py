"""A phase traced with tracemalloc that grows the Python heap in one known function.

Usage: heap_phase.py OUT_JSON [STOP_FILE]; phase "parse" (tracemalloc=True) keeps 20,000 ``bytes(1000)`` built
in ``build_rows``, then writes {"file", "line", "bytes"}: where they were allocated and how many
bytes they hold (``sys.getsizeof``, what tracemalloc counts per object) to OUT_JSON; with
STOP_FILE it then stays alive until that file exists (a test reads the live session meanwhile).
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # this checkout's memview (the probe)
from memview.probe import phase  # noqa: E402

N = 20_000


def build_rows(n: int) -> list[bytes]:
    return [bytes(1000) for _ in range(n)]  # the allocation


with phase("parse", tracemalloc=True):
    rows = build_rows(N)
line = next(
    i for i, text in enumerate(Path(__file__).read_text().splitlines(), 1) if text.rstrip().endswith("# the allocation")
)
tmp = Path(sys.argv[1] + ".tmp")
tmp.write_text(
    json.dumps({"file": str(Path(__file__).resolve()), "line": line, "bytes": N * sys.getsizeof(bytes(1000))})
)
tmp.rename(sys.argv[1])  # whole or absent: a test waits for it while this process lives on
while len(sys.argv) > 2 and not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
