"""Case 2, sampler overhead: a monitor's own CPU per second of recording a sleeping child.

Each monitor records ``sleep 3`` and ``sleep 13``; the CPU difference over the 10 s difference is
the steady-state cost (start-up, imports and the closing summary cancel), and what is left at 0 s
is the start-up CPU. All monitors of one duration run at the same time, each on its own child,
so every tool sees the same machine; the 3 s group and the 13 s group take turns. memview's
achieved rate and gaps between samples are read from the stored 13 s session.
memview@100 Hz and mprof@100 Hz also record ``sleep 10`` alongside the 13 s group: the
foundation issue's figure (CPU of a 10 s recording at 100 Hz).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from benchmarks.context import Context
from benchmarks.measure import CaseResult, Proc, median, memview_argv, percentile

CONFIGS: list[tuple[str, int]] = [
    ("memview", 10),
    ("memview", 100),
    ("memview", 1000),
    ("mprof", 100),
    ("psrecord", 100),
]
FOUNDATION = [("memview", 100), ("mprof", 100)]


def label(tool: str, hz: int) -> str:
    return f"{tool} @ {hz} Hz"


class Monitor:
    """One monitor recording one ``sleep SECONDS`` child."""

    def __init__(self, ctx: Context, tool: str, hz: int, seconds: float, db: Path | None) -> None:
        self.tool, self.hz, self.seconds, self.db = tool, hz, seconds, db
        self.child: subprocess.Popen[bytes] | None = None
        sleep = ["sleep", f"{seconds:g}"]
        if tool == "memview":
            argv = memview_argv("run", "-q", "--db", db, "-i", 1 / hz, "--", *sleep)
        elif tool == "mprof":
            argv = [*ctx.peers["mprof"], "run", "-o", str(ctx.path("mprof", ".dat")), "-T", str(1 / hz), *sleep]
        else:  # psrecord: attach by PID (its launch mode goes through a shell)
            self.child = subprocess.Popen(sleep)
            argv = [
                *ctx.peers["psrecord"],
                str(self.child.pid),
                "--interval",
                str(1 / hz),
                "--log",
                str(ctx.path("psrecord", ".log")),
            ]
        self.proc = Proc(argv, timeout=seconds + 60)

    def finish(self) -> float:
        if self.child is not None:
            self.child.wait()
        return self.proc.finish().cpu_s


def gaps_of(db: Path) -> dict[str, Any]:
    """Achieved rate and the gaps between samples of the newest session in ``db``."""
    from memview.store import Store

    store = Store(db)
    try:
        sid = store.sessions(limit=1)[0]["id"]
        times, _ = store.load_series(sid)
        meta = store.session(sid)["meta"] or {}
    finally:
        store.close()
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "samples": len(times),
        "rate_hz": (len(times) - 1) / span if span else None,
        "gap_p50_ms": percentile(gaps, 50) * 1000 if gaps else None,
        "gap_p99_ms": percentile(gaps, 99) * 1000 if gaps else None,
        "gap_max_ms": gaps[-1] * 1000 if gaps else None,
        "late": meta.get("late_samples"),
    }


def run(ctx: Context) -> CaseResult:
    result = CaseResult("overhead")
    short, long_ = (1.0, 3.0) if ctx.smoke else (3.0, 13.0)
    foundation_s = 3.0 if ctx.smoke else 10.0
    dbs = {
        (t, hz, kind): ctx.db(f"overhead-{t}-{hz}-{kind}")
        for t, hz in CONFIGS
        if t == "memview"
        for kind in ("main", "foundation")
    }
    rounds: list[dict[str, Any]] = []
    for _ in range(ctx.reps):
        got: dict[str, Any] = {"cpu_short": {}, "cpu_long": {}, "cpu_foundation": {}, "gaps": {}}
        # the long group (plus the foundation's 10 s recordings), then the short group
        group = [Monitor(ctx, t, hz, long_, dbs.get((t, hz, "main"))) for t, hz in CONFIGS]
        extra = [Monitor(ctx, t, hz, foundation_s, dbs.get((t, hz, "foundation"))) for t, hz in FOUNDATION]
        for m in group:
            got["cpu_long"][label(m.tool, m.hz)] = m.finish()
        for m in extra:
            got["cpu_foundation"][label(m.tool, m.hz)] = m.finish()
        for t, hz in CONFIGS:
            if t == "memview":
                got["gaps"][label(t, hz)] = gaps_of(dbs[(t, hz, "main")])
        group = [Monitor(ctx, t, hz, short, dbs.get((t, hz, "main"))) for t, hz in CONFIGS]
        for m in group:
            got["cpu_short"][label(m.tool, m.hz)] = m.finish()
        rounds.append(got)
    result.details["rounds"] = rounds
    result.details["durations_s"] = [short, long_]

    def slope(name: str, r: dict[str, Any]) -> float:
        return (r["cpu_long"][name] - r["cpu_short"][name]) / (long_ - short)

    slopes = {label(t, hz): [slope(label(t, hz), r) for r in rounds] for t, hz in CONFIGS}
    starts = {name: [r["cpu_short"][name] - short * s for r, s in zip(rounds, vals)] for name, vals in slopes.items()}
    result.details["slopes"] = slopes
    mprof = slopes[label("mprof", 100)]
    for t, hz in CONFIGS:
        name = label(t, hz)
        pct = median(slopes[name]) * 100
        per_round = ", ".join(f"{s * 100:.2f}" for s in slopes[name])
        note = f"start-up {median(starts[name]):.2f} s CPU; per round {per_round}"
        if t == "memview":
            note += f"; {median(slopes[name]) / hz * 1e6:.0f} µs CPU per sample"
        result.add(f"CPU, {name}", round(pct, 3), "% of a core", note=note)
    ratio = median([m / p for m, p in zip(slopes[label("memview", 100)], mprof)])
    result.add(
        "CPU ratio memview/mprof @ 100 Hz",
        round(ratio, 3),
        "×",
        "≤ 0.25",
        ratio <= 0.25,
        "median of per-round ratios, same rounds",
    )
    ps_ratio = median([m / p for m, p in zip(slopes[label("memview", 100)], slopes[label("psrecord", 100)])])
    result.add("CPU ratio memview/psrecord @ 100 Hz", round(ps_ratio, 3), "×")
    g = [r["gaps"][label("memview", 1000)] for r in rounds]
    rate = median([x["rate_hz"] for x in g])
    p99 = median([x["gap_p99_ms"] for x in g])
    result.add(
        "achieved rate, memview @ 1000 Hz",
        round(rate, 1),
        "Hz",
        "≥ 950 Hz",
        rate >= 950,
        "per round " + ", ".join(f"{x['rate_hz']:.0f}" for x in g),
    )
    result.add(
        "gap p50 / p99, memview @ 1000 Hz",
        f"{median([x['gap_p50_ms'] for x in g]):.3f} / {p99:.3f}",
        "ms",
        "p99 ≤ 3 ms",
        p99 <= 3.0,
        f"max gap {max(x['gap_max_ms'] for x in g):.1f} ms; late samples {', '.join(str(x['late']) for x in g)}",
    )
    for hz in (10, 100):
        gg = [r["gaps"][label("memview", hz)] for r in rounds]
        result.add(
            f"achieved rate, memview @ {hz} Hz",
            round(median([x["rate_hz"] for x in gg]), 2),
            "Hz",
            note=f"gap p50 {median([x['gap_p50_ms'] for x in gg]):.2f} ms, "
            f"p99 {median([x['gap_p99_ms'] for x in gg]):.2f} ms",
        )
    for t, hz in FOUNDATION:
        name = label(t, hz)
        result.add(
            f"CPU of a {foundation_s:g} s recording, {name}",
            round(median([r["cpu_foundation"][name] for r in rounds]), 3),
            "s",
            note=f"incl. start-up; steady part ≈ {median(slopes[name]) * foundation_s:.3f} s",
        )
    return result
