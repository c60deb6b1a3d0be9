"""Batch profiling: every case x input of a manifest runs as a real memview session.

Each run goes through :func:`memview.runner.run_foreground` — the same path as ``memview run``,
so the peak is the kernel's exact figure where one exists, phases and captures come with it, and
the session is stored and tagged (``case:NAME``, ``input:PATH``, ``backend:LABEL``) so any figure
in the results can be opened with ``memview show``. The child's output goes to a log file kept
with the session, not to the terminal, so the progress lines stay readable.

``repeat`` runs each input N times: the record keeps min/median/max and uses the median, because
one slow page-cache miss or a late GC should not decide whether CI passes.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memview.manifest import Case, Manifest, case_env
from memview.results import (  # the results document; record_from_summary and results_document re-exported
    NO_INPUT,
    phase_peaks,
    record_from_summary,
    results_document,
)
from memview.units import format_bytes, format_duration

TAG = "memview-profile"


class Interrupted(Exception):
    """Ctrl-C during a batch: the results so far are kept and written."""


def _spread(values: list[Any]) -> dict[str, Any] | None:
    nums = [v for v in values if v is not None]
    if not nums:
        return None
    med = statistics.median(nums)
    return {
        "min": min(nums),
        "median": round(med) if isinstance(nums[0], int) else med,
        "max": max(nums),
        "values": values,
    }


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeated runs of one case/input -> one record that uses the medians and keeps the spread.

    The median run (by peak) lends its session id and peak source; a failed run makes the record
    failed (its exit code and signal win), since a flaky crash must not hide behind a median.
    """
    ranked = sorted((r for r in runs if r["peak_rss_bytes"] is not None), key=lambda r: r["peak_rss_bytes"])
    out = dict(ranked[(len(ranked) - 1) // 2] if ranked else runs[0])
    out.pop("log", None)
    out["logs"] = [r.get("log") for r in runs]
    out["session_ids"] = [r["session_id"] for r in runs]
    if len(runs) == 1:
        return out
    spread = {key: _spread([r[key] for r in runs]) for key in ("peak_rss_bytes", "avg_rss_bytes", "wall_s")}
    for key, s in spread.items():
        out[key] = s["median"] if s else None
    failed = next((r for r in runs if not r["ok"]), None)
    out["ok"] = failed is None
    if failed is not None:
        out["exit_code"], out["signal"] = failed["exit_code"], failed["signal"]
    out["timed_out"] = any(r.get("timed_out") for r in runs)
    out["phases"] = _combine_phases(runs)
    out["captures"] = [c for r in runs for c in r["captures"]]
    out["warnings"] = list(dict.fromkeys(w for r in runs for w in r["warnings"]))
    out["repeat"] = {"n": len(runs), **spread}
    return out


def _combine_phases(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Phases matched by name and order across runs; each figure is the median over the runs."""
    keyed: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        for key, ph in zip(phase_peaks(r["phases"]), r["phases"]):
            keyed.setdefault(key, []).append(ph)
    out = []
    for phs in keyed.values():
        ph = dict(phs[0])
        for k in ("start_rss_bytes", "peak_rss_bytes", "duration_s", "footprint_bytes", "growth_bytes"):
            s = _spread([p.get(k) for p in phs])
            ph[k] = s["median"] if s else None
        if len(phs) > 1:
            ph["peak_spread"] = _spread([p.get("peak_rss_bytes") for p in phs])
        out.append(ph)
    return out


def arm_triggers(session: Any, case: Case, warn: Callable[[str], None]) -> None:
    """Hand the case's ``thresholds`` and ``captures`` to the trigger engine for this session.

    The same path as ``memview run --threshold … --capture …`` (memview.captures.options), on the
    live session before sampling starts. A rule that does not parse is a warning in the session
    and on stderr: the case still runs and is measured.
    """
    if not case.thresholds and not case.captures:
        return
    from memview.captures.options import CaptureSetup
    from memview.errors import OptionError

    try:
        setup = CaptureSetup.from_cli(
            thresholds=tuple(case.thresholds), capture=",".join(case.captures) if case.captures else None
        )
    except OptionError as exc:
        message = f"case {case.name}: thresholds/captures not armed: {exc}"
        session.recorder.add_event(
            "triggers_invalid",
            message,
            level="warning",
            data={"thresholds": list(case.thresholds), "captures": list(case.captures)},
        )
        warn(message)
        return
    setup.install(session)


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        procs = []
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_one(case: Case, input_key: str, store: Any, warn: Callable[[str], None]) -> dict[str, Any]:
    """One run of one case on one input, recorded as a stored session; returns its record."""
    from memview.analysis import session_summary
    from memview.runner import run_foreground

    timed_out = threading.Event()
    timers: list[threading.Timer] = []

    def before_start(session: Any) -> None:
        arm_triggers(session, case, warn)
        if case.timeout is not None:

            def expire() -> None:
                timed_out.set()
                session.recorder.add_event(
                    "timeout", f"killed after the case's timeout of {case.timeout:g}s", level="error"
                )
                _kill_tree(session.proc.pid)

            timer = threading.Timer(case.timeout, expire)
            timer.daemon = True
            timers.append(timer)
            timer.start()

    argv = case.argv(input_key)
    with tempfile.NamedTemporaryFile(prefix="memview-profile-", suffix=".log", delete=False) as log:
        log_tmp = Path(log.name)
        try:
            session = run_foreground(
                argv=argv,
                store=store,
                interval=case.interval,
                cwd=str(case.cwd),
                env=case_env(case),
                stdout=log,
                stderr=subprocess.STDOUT,
                before_start=before_start,
            )
        finally:
            for t in timers:
                t.cancel()
    sid = session.recorder.session_id
    log_path = store.artefact_dir(sid) / "output.log"
    try:
        shutil.move(str(log_tmp), log_path)
    except OSError:
        log_path = log_tmp
    tags = [TAG, f"case:{case.name}", f"backend:{case.backend}"]
    if input_key != NO_INPUT:
        tags.append(f"input:{input_key}")
    store.update_session(sid, name=f"{case.name} {input_key}" if input_key != NO_INPUT else case.name, tags=tags)
    record = record_from_summary(session_summary(store, sid), case.name, input_key)
    record["timed_out"] = timed_out.is_set()
    record["ok"] = record["ok"] and not record["timed_out"]
    record["log"] = str(log_path)
    # Ctrl-C: the child died of it, or memview got it too (a Python child still starting turns it into
    # KeyboardInterrupt and exit 1, which must not read as the case failing and the batch going on)
    if (session.exit is not None and session.exit.signal == signal.SIGINT) or session.signalled == signal.SIGINT:
        raise Interrupted(record)
    return record


def profile(
    manifest: Manifest,
    cases: list[Case],
    store: Any,
    repeat: int | None = None,
    progress: Callable[[str], None] = lambda _line: None,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``cases`` (each input, ``repeat`` times) and return the results document.

    A Ctrl-C stops the batch; the document then holds what completed and ``"interrupted": true``.
    """
    from memview.meta import collect

    jobs = [(case, key) for case in cases for key in case.input_keys()]
    meta = collect(str(manifest.root))
    if any(c.backend == "rust" for c in cases):
        meta["rustc"] = _version(["rustc", "--version"])
    records: list[dict[str, Any]] = []
    interrupted = False
    width = max((len(f"{c.name} · {k}") for c, k in jobs), default=0)
    try:
        for n, (case, key) in enumerate(jobs, 1):
            times = repeat or case.repeat or 1
            runs = []
            for _ in range(times):
                runs.append(run_one(case, key, store, progress))
            record = {
                "case": case.name,
                "input": None if key == NO_INPUT else key,
                "backend": case.backend,
                **{k: v for k, v in combine(runs).items() if k not in ("case", "input")},
            }
            if case.tolerance:
                record["tolerance"] = case.tolerance
            if case.thresholds or case.captures:
                record["thresholds"], record["captures_requested"] = list(case.thresholds), list(case.captures)
            records.append(record)
            progress(_progress_line(n, len(jobs), f"{case.name} · {key}".ljust(width), record))
    except (Interrupted, KeyboardInterrupt) as exc:  # the child died of the Ctrl-C, or memview took it
        interrupted = True
        if isinstance(exc, Interrupted):
            progress(f"interrupted during {exc.args[0]['case']} (session {exc.args[0]['session_id']})")
        else:
            progress("interrupted")
    return results_document(
        records,
        meta,
        manifest=str(manifest.path),
        root=str(manifest.root),
        only=only or None,
        repeat=repeat,
        interrupted=interrupted,
    )


def _progress_line(n: int, total: int, label: str, r: dict[str, Any]) -> str:
    head = f"[{n}/{total}] {label}"
    if not r["ok"]:
        why = (
            "timed out"
            if r.get("timed_out")
            else (f"signal {r['signal']}" if r.get("signal") else f"exit {r['exit_code']}")
        )
        return f"{head}  FAILED ({why})  log: {r['logs'][-1]}" + _tail(r)
    peak = format_bytes(r["peak_rss_bytes"])
    rep = r.get("repeat")
    if rep and rep.get("peak_rss_bytes"):
        s = rep["peak_rss_bytes"]
        peak += f" ({format_bytes(s['min'])} .. {format_bytes(s['max'])} over {rep['n']})"
    return (
        f"{head}  peak {peak}  avg {format_bytes(r['avg_rss_bytes'])}  {format_duration(r['wall_s'])}"
        f"  session {r['session_id']}"
    )


def _tail(r: dict[str, Any], lines: int = 5) -> str:
    path = r["logs"][-1]
    try:
        text = Path(path).read_text(errors="replace").rstrip().splitlines()[-lines:]
    except (OSError, TypeError):
        return ""
    return "".join(f"\n    | {line}" for line in text)


def _version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def default_output(now: datetime.datetime | None = None) -> Path:
    """``results/memory/YYYY-MM-DDTHHMMSS.json`` under the current folder."""
    now = now or datetime.datetime.now()
    return Path("results") / "memory" / f"{now:%Y-%m-%dT%H%M%S}.json"
