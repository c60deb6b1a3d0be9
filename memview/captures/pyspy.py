"""py-spy captures of a Python process: every thread's stack now (dump), or a profile over N seconds.

``dump`` asks py-spy for JSON and writes the readable text from that same JSON, so the two files
are one snapshot (two dumps would be two moments and would pause the process twice). py-spy's JSON
dump ignores ``--subprocesses``, so for a tree memview dumps each Python process in turn and merges
the threads (each carries its ``pid``).
``record`` samples until memview sends SIGINT (py-spy's own ``--duration`` takes whole seconds
only), which makes py-spy write its speedscope file; memview draws the flame graph SVG from it.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from memview.captures import flamegraph
from memview.captures.base import (
    CaptureContext,
    CaptureError,
    find_tool,
    run_tool,
    write_private,
)
from memview.captures.detect import descendants, process_kind
from memview.captures.ptrace_advice import looks_like_ptrace_refusal, ptrace_advice
from memview.captures.sites import Site, Summary, merge
from memview.collectors import procfs
from memview.model import Capture


def _common(ctx: CaptureContext) -> list[str]:
    args = ["--pid", str(ctx.pid)]
    if ctx.subprocesses:
        args.append("--subprocesses")
    if ctx.native:
        args.append("--native")
    return args


def _failed(ctx: CaptureContext, what: str, code: int, err: str) -> CaptureError:
    if not procfs.alive(ctx.pid):
        return CaptureError(f"PID {ctx.pid} exited before py-spy could {what} it", status="exited", stderr_tail=err)
    if looks_like_ptrace_refusal(err):
        return CaptureError(ptrace_advice(ctx.pid, "py-spy"), status="ptrace-refused", stderr_tail=err)
    last = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
    return CaptureError(f"py-spy {what} failed: {last}", stderr_tail=err)


def dump(ctx: CaptureContext, capture: Capture) -> None:
    """All threads' stacks at this moment: ``.txt`` (readable) and ``.json`` (py-spy's, merged for a tree)."""
    exe = find_tool("py-spy", ctx.env)
    pids = [ctx.pid]
    if ctx.subprocesses:
        pids += [d for d in descendants(ctx.pid) if process_kind(d) == "python"]
    json_path, err_path = ctx.path(".json"), ctx.path(".stderr")
    threads: list[dict[str, Any]] = []
    for pid in pids:
        native = ["--native"] if ctx.native else []
        code, err = run_tool(ctx, [exe, "dump", "--json", "--pid", str(pid), *native], json_path, err_path, env=ctx.env)
        if pid == ctx.pid:
            capture.exit_status, capture.stderr_tail = code, err
            if code != 0:
                json_path.unlink(missing_ok=True)
                err_path.unlink(missing_ok=True)
                raise _failed(ctx, "dump", code, err)
        elif code != 0:
            ctx.notes.append(f"no dump of child PID {pid}: {err.strip().splitlines()[-1] if err.strip() else code}")
            continue
        try:
            part = json.loads(json_path.read_text())
        except (OSError, ValueError) as exc:
            raise CaptureError(f"py-spy dump wrote no readable JSON ({exc})", stderr_tail=err) from None
        threads.extend({**t, "pid": t.get("pid") or pid} for t in part)
    err_path.unlink(missing_ok=True)
    write_private(json_path, json.dumps(threads, indent=2) + "\n")
    capture.data["pids"] = pids
    text_path = ctx.path(".txt")
    write_private(text_path, render_dump(threads, ctx.pid))
    ctx.keep(text_path)
    ctx.keep(json_path)
    capture.data["threads"] = len(threads)
    capture.data["top_frames"] = [t["frames"][0]["name"] for t in threads if t.get("frames")]


def render_dump(threads: list[dict[str, Any]], pid: int) -> str:
    """py-spy's text layout, from its JSON: a header per process, then each thread's stack, innermost first."""
    lines: list[str] = []
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for thread in threads:
        by_pid.setdefault(int(thread.get("pid") or pid), []).append(thread)
    for proc_pid, proc_threads in by_pid.items():
        lines.append(f"Process {proc_pid}: {_cmdline(proc_pid)}")
        for t in proc_threads:
            state = "active" if t.get("active") else "idle"
            if t.get("owns_gil"):
                state += "+gil"
            tid = t.get("os_thread_id") or t.get("thread_id")
            lines.append(f'\nThread {tid} ({state}): "{t.get("thread_name") or ""}"')
            for frame in t.get("frames") or []:
                lines.append(
                    f"    {frame.get('name')} ({frame.get('short_filename') or frame.get('filename')}:"
                    f"{frame.get('line')})"
                )
        lines.append("")
    return "\n".join(lines) + "\n"


def _cmdline(pid: int) -> str:
    args = procfs.cmdline(pid)
    return "?" if args is None else " ".join(args)


def record(ctx: CaptureContext, capture: Capture) -> None:
    """Sample for ``ctx.duration`` seconds: ``.speedscope.json`` (py-spy's) and ``.svg`` (a flame graph)."""
    exe = find_tool("py-spy", ctx.env)
    out, log_path = ctx.path(".speedscope.json"), ctx.path(".stderr")
    argv = [exe, "record", "--format", "speedscope", "--output", str(out), *_common(ctx)]
    code, err = run_tool(ctx, argv, None, log_path, stop_after=ctx.duration, stop_signal=signal.SIGINT, env=ctx.env)
    log_path.unlink(missing_ok=True)
    capture.exit_status, capture.stderr_tail = code, err
    if not out.exists() or out.stat().st_size == 0:
        out.unlink(missing_ok=True)
        raise _failed(ctx, "record", code, err)
    ctx.keep(out)
    if not procfs.alive(ctx.pid):
        ctx.notes.append(f"PID {ctx.pid} exited during the recording; the profile covers it until then")
    samples = _sample_count(err)
    if samples is not None:
        capture.data["samples"] = samples
    svg, folded = ctx.path(".svg"), ctx.path(".folded")
    try:
        drawn = flamegraph.write_svg(out, svg, title=f"py-spy record: PID {ctx.pid}", folded_path=folded)
        ctx.keep(svg)
        ctx.keep(folded)
        capture.data["recorded_s"] = drawn["recorded_s"]
        capture.data.setdefault("samples", drawn["samples"])  # py-spy prints no count when the target exits
        capture.data["summary"] = profile_summary(out).as_dict()
    except (OSError, ValueError, KeyError, IndexError) as exc:
        ctx.notes.append(f"no flame graph: the speedscope file could not be drawn ({exc})")
    capture.data["argv"] = argv


def profile_summary(speedscope: Path) -> Summary:
    """Sites by *self* samples (the innermost frame of each sample: where the time went) and stacks.

    py-spy samples CPU stacks, not allocations: this names where the program was busy, which for a
    loop that allocates is the allocating line, but it is not a measure of bytes.
    """
    doc = json.loads(Path(speedscope).read_text())
    frames = doc["shared"]["frames"]
    sites: list[Site] = []
    stacks: dict[tuple[str, ...], int] = {}
    for profile in doc.get("profiles") or []:
        for stack in profile.get("samples") or []:
            if not stack:
                continue
            f = frames[stack[-1]]
            sites.append(Site(str(f.get("name") or "?"), str(f.get("file") or ""), f.get("line"), 1, 1))
            key = tuple(flamegraph.frame_text(frames[i]) for i in stack)
            stacks[key] = stacks.get(key, 0) + 1
    out = Summary(
        kind="py-spy",
        headline="self",
        unit="samples",
        tables={"self": merge(sites)},
        stacks=[(list(k), v) for k, v in stacks.items()],
    )
    out.notes.append("CPU samples, not bytes: where the program was running")
    return out


def _sample_count(err: str) -> int | None:
    for line in err.splitlines():
        if "Samples:" in line:
            try:
                return int(line.split("Samples:")[1].split()[0])
            except (IndexError, ValueError):
                return None
    return None


__all__ = ["dump", "record", "render_dump"]
