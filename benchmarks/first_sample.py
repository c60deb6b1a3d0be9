"""How long a launched child runs unobserved: from the call that launches it to memview's first sample.

Run as ``python -m benchmarks.first_sample DB REPS`` in a fresh interpreter (so the fork copies a
process the size of the ``memview run`` CLI, not of the benchmark runner); prints JSON. It goes
through :func:`memview.runner.run_foreground`, the same path as ``memview run`` after argument
parsing and opening the database.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from memview.runner import run_foreground
    from memview.store import Store

    store = Store(sys.argv[1])
    out = []
    for _ in range(int(sys.argv[2])):
        before = time.time()
        session = run_foreground(argv=["sleep", "0.1"], store=store, interval=0.05)
        rec = session.recorder
        if rec.stats.first_t is None:
            raise SystemExit("no sample was taken")
        out.append(
            {
                "launch_to_first_sample_s": rec.started_at + rec.stats.first_t - before,
                "launch_to_recorder_s": rec.started_at - before,
                "recorder_to_first_sample_s": rec.stats.first_t,
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
