"""``python -m benchmarks``: memview against the tools people would otherwise use, in one run.

Prints a table, writes JSON to ``benchmarks/out/results-<time>.json`` (and ``latest.json``), and
with ``--markdown PATH`` the table as Markdown for RESULTS.md. ``--smoke`` is a ~20-second
version for CI: every case, shorter and once; timings are reported, never judged (the exit
status is non-zero only when a case crashed). The machine is assumed noisy: cases repeat
(``--reps``) and report medians, and peers are measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402  (the checkout must be on the path first)
    case_accuracy,
    case_exact,
    case_memory,
    case_overhead,
    case_plot,
    case_startup,
    case_store,
    case_tree,
    peers,
)
from benchmarks.context import Context  # noqa: E402
from benchmarks.measure import BENCH, CaseResult, dump_json, loadavg, machine  # noqa: E402

CASES = {
    "startup": case_startup.run,
    "store": case_store.run,
    "accuracy": case_accuracy.run,
    "overhead": case_overhead.run,
    "tree": case_tree.run,
    "exact": case_exact.run,
    "plot": case_plot.run,
    "memory": case_memory.run,
}
NEEDS_PEERS = {"accuracy", "overhead", "exact"}


def _status(met: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: ""}[met]


def table(results: list[CaseResult]) -> list[list[str]]:
    rows = [["case", "figure", "value", "goal", "status", "note"]]
    for r in results:
        if r.error:
            rows.append([r.name, "CRASHED", r.error.strip().splitlines()[-1], "", "error", ""])
        for f in r.figures:
            rows.append([f.case, f.name, f"{f.value} {f.unit}".strip(), f.goal, _status(f.met), f.note])
    return rows


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + ("  " + r[5] if r[5] else ""))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    for r in rows[1:]:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="~20 s: every case, short and once (for CI)")
    ap.add_argument("--only", help=f"comma-separated cases ({', '.join(CASES)})")
    ap.add_argument("--reps", type=int, help="repetitions per case (default 3; 1 with --smoke)")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (databases, peer logs)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s): {', '.join(unknown)}")
    out_dir = BENCH / "out"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    work = out_dir / f"run-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(smoke=args.smoke, reps=args.reps or (1 if args.smoke else 3), work=work)
    info = machine()
    started = time.perf_counter()
    results: list[CaseResult] = []
    if NEEDS_PEERS & set(names):
        ctx.peers = peers.ensure(out_dir)
        info["peers"] = {"python": ctx.peers["python"], **ctx.peers["versions"]}  # type: ignore[dict-item]
    try:
        for name in names:
            t = time.perf_counter()
            load = loadavg()
            print(f"[{name}] running…", file=sys.stderr, flush=True)
            try:
                res = CASES[name](ctx)
            except Exception:
                res = CaseResult(name, error=traceback.format_exc())
                print(res.error, file=sys.stderr)
            res.seconds = time.perf_counter() - t
            res.details["loadavg_before"], res.details["loadavg_after"] = load, loadavg()
            results.append(res)
            print(f"[{name}] {res.seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    info["loadavg_end"] = loadavg()
    rows = table(results)
    print()
    print_table(rows)
    print(f"\n{len(results)} cases in {total:.0f} s; load average {info['loadavg_start']} -> {info['loadavg_end']}")
    data = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "smoke": args.smoke,
        "reps": ctx.reps,
        "seconds": round(total, 1),
        "machine": info,
        "cases": [
            {
                "name": r.name,
                "seconds": round(r.seconds, 1),
                "error": r.error,
                "figures": [f.as_dict() for f in r.figures],
                "details": r.details,
            }
            for r in results
        ],
    }
    path = out_dir / f"results-{stamp}.json"
    dump_json(path, data)
    dump_json(out_dir / "latest.json", data)
    if args.json:
        dump_json(args.json, data)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(rows))
    print(f"results: {path}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
