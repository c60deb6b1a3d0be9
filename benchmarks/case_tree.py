"""Case 3, tree cost: memview's own CPU per second recording a sleeping tree of 1, 10, 50 processes.

Same slope method as the overhead case (a short and a long recording; the sizes of one duration
run at the same time). The tree's own CPU (start-up, forks) is in memview's rusage — memview
reaps the root, the root reaps the rest — but it does not depend on the duration, so it cancels.
"""

from __future__ import annotations

from typing import Any

from benchmarks.context import Context
from benchmarks.measure import CaseResult, Proc, median, memview_argv, workload

SIZES = [1, 10, 50]
HZ = 100


def run(ctx: Context) -> CaseResult:
    from memview.store import Store

    result = CaseResult("tree")
    sizes = [1, 10] if ctx.smoke else SIZES
    short, long_ = (1.0, 3.0) if ctx.smoke else (3.0, 13.0)
    dbs = {n: ctx.db(f"tree-{n}") for n in sizes}
    rounds: list[dict[str, Any]] = []
    for _ in range(ctx.reps):
        cpu: dict[str, dict[int, float]] = {}
        for key, secs in (("long", long_), ("short", short)):
            procs = {
                n: Proc(
                    memview_argv("run", "-q", "--db", dbs[n], "-i", 1 / HZ, "--", *workload("tree.py", n, secs)),
                    timeout=secs + 60,
                )
                for n in sizes
            }
            cpu[key] = {n: p.finish().cpu_s for n, p in procs.items()}
        seen = {}
        for n in sizes:
            store = Store(dbs[n])
            seen[n] = len(store.processes(store.sessions(limit=1)[0]["id"]))
            store.close()
        rounds.append({"cpu": cpu, "processes_seen": seen})
    result.details["rounds"] = rounds
    for n in sizes:
        slopes = [(r["cpu"]["long"][n] - r["cpu"]["short"][n]) / (long_ - short) for r in rounds]
        pct = median(slopes) * 100
        seen = min(r["processes_seen"][n] for r in rounds)
        per_proc = median(slopes) / HZ / n * 1e6
        goal = "≤ 5% of a core" if n == 50 else ""
        result.add(
            f"CPU, {n} process{'es' if n > 1 else ''} @ {HZ} Hz",
            round(pct, 3),
            "% of a core",
            goal,
            (pct <= 5.0) if n == 50 else None,
            f"{per_proc:.1f} µs per process per sample; saw {seen} processes; per round "
            + ", ".join(f"{s * 100:.2f}" for s in slopes),
        )
    return result
