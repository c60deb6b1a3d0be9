"""memray captures of a Python process: which lines held the memory at the window's high-water mark.

py-spy samples CPU stacks, which only hint at who allocates. memray records every allocation, so
its file answers the question directly. ``memray attach -o FILE PID`` injects memray's tracker
through gdb (the target must be able to ``import memray``); memview lets it record for the
capture window, then ``memray detach PID`` stops the tracker, which finishes the file inside the
target. The file is complete when the target no longer holds it open.

From the file (memray's ``FileReader``): the sites live at the high-water mark of the window
(``get_high_watermark_allocation_records``, table ``peak``) and the sites whose allocations were
still live when the window closed (``get_leaked_allocation_records``, table ``growth``: what the
program kept during the window). The tracker only sees allocations made after it started, so
both tables describe the window, not the program's whole life.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

from memview.captures.base import (
    CaptureContext,
    CaptureError,
    find_tool,
    finish,
    run_tool,
)
from memview.captures.ptrace_advice import looks_like_ptrace_refusal, ptrace_advice
from memview.captures.sites import Site, Summary, frame_label, merge
from memview.collectors import procfs
from memview.model import Capture

FINISH_WAIT = 30.0


def attach(ctx: CaptureContext, capture: Capture) -> None:
    """Track ``ctx.pid``'s allocations for ``ctx.duration`` seconds; keep the ``.bin`` and its summary."""
    exe = find_tool("memray", ctx.env)
    out = ctx.path(".memray.bin")
    err = ctx.path(".stderr")
    argv = [exe, "attach", "--force", "--output", str(out), str(ctx.pid)]
    t0 = time.monotonic()
    code, tail_text = run_tool(ctx, argv, None, err, env=ctx.env)
    err.unlink(missing_ok=True)
    capture.exit_status, capture.stderr_tail = code, tail_text
    if code != 0:
        out.unlink(missing_ok=True)
        raise _failed(ctx, "attach to", code, tail_text)
    capture.data["attach_s"] = round(time.monotonic() - t0, 3)
    window_start = time.monotonic()
    window_end = window_start + ctx.duration
    while not ctx.stop.is_set() and time.monotonic() < window_end and procfs.alive(ctx.pid):
        ctx.stop.wait(min(0.1, max(0.0, window_end - time.monotonic())))
    capture.data["window_s"] = round(time.monotonic() - window_start, 3)
    if procfs.alive(ctx.pid):
        t1 = time.monotonic()
        code, tail_text = run_tool(ctx, [exe, "detach", str(ctx.pid)], None, err, env=ctx.env)
        err.unlink(missing_ok=True)
        if code != 0:
            ctx.notes.append(f"memray detach failed (exit {code}): {_last_line(tail_text)}")
        _wait_closed(ctx, out)
        capture.data["detach_s"] = round(time.monotonic() - t1, 3)
    else:
        ctx.notes.append(f"PID {ctx.pid} exited during the memray window; the file covers it until then")
    if not out.exists() or out.stat().st_size == 0:
        out.unlink(missing_ok=True)
        raise CaptureError("memray wrote no data file", stderr_tail=tail_text)
    ctx.keep(out)
    try:
        capture.data["summary"] = summarise(out).as_dict()
    except (OSError, ValueError, RuntimeError) as exc:
        capture.status = "partial"
        ctx.notes.append(f"memray's file could not be read ({exc})")


def _wait_closed(ctx: CaptureContext, out: Path) -> None:
    """Until the target has closed the file (the tracker flushed it), within the time limit."""
    deadline = time.monotonic() + min(FINISH_WAIT, ctx.remaining())
    while procfs.holds_open(ctx.pid, out.resolve()) and time.monotonic() < deadline:
        time.sleep(0.05)


def _failed(ctx: CaptureContext, what: str, code: int, err: str) -> CaptureError:
    if not procfs.alive(ctx.pid):
        return CaptureError(f"PID {ctx.pid} exited before memray could {what} it", status="exited", stderr_tail=err)
    if "No module named" in err or "memray" in err and "import" in err.lower():
        return CaptureError(
            f"memray cannot start inside PID {ctx.pid}: its Python cannot import memray "
            "(install memray into the target's environment)",
            stderr_tail=err,
        )
    if looks_like_ptrace_refusal(err):
        return CaptureError(ptrace_advice(ctx.pid, "memray"), status="ptrace-refused", stderr_tail=err)
    return CaptureError(f"memray {what.split()[0]} failed: {_last_line(err) or f'exit code {code}'}", stderr_tail=err)


def _last_line(text: str) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _site(record: Any) -> tuple[Site, list[str]]:
    """The record's innermost frame as a site, and its stack root first (for the flame graph)."""
    try:
        trace = record.stack_trace()
    except (RuntimeError, ValueError, NotImplementedError):
        trace = []
    if trace:
        function, file, line = trace[0]
        site = Site(str(function), str(file), int(line) if line else None, int(record.size), int(record.n_allocations))
    else:
        site = Site("<unknown>", "", None, int(record.size), int(record.n_allocations))
    stack = [frame_label(str(f), str(p), int(n) if n else None) for f, p, n in reversed(trace)] or ["<unknown>"]
    return site, stack


def summarise(path: Path) -> Summary:
    """The ``peak`` (live at the high-water mark) and ``growth`` (still live at the end) sites."""
    import memray  # only when a memray file is read: memview starts without it

    reader = memray.FileReader(str(path))
    try:
        summary = Summary(kind="memray", headline="peak", peak_bytes=int(reader.metadata.peak_memory))
        peak, stacks = [], []
        for record in reader.get_high_watermark_allocation_records(merge_threads=True):
            site, stack = _site(record)
            peak.append(site)
            stacks.append((stack, site.bytes))
        growth = [_site(r)[0] for r in reader.get_leaked_allocation_records(merge_threads=True)]
        summary.tables = {"peak": merge(peak), "growth": merge(growth)}
        summary.stacks = stacks
        meta = reader.metadata
        summary.notes.append(
            f"{meta.total_allocations} allocations recorded from {meta.start_time:%H:%M:%S} to {meta.end_time:%H:%M:%S}"
        )
    finally:
        reader.close()
    return summary


__all__ = ["MemrayLaunch", "attach", "summarise"]


# -- launch mode -------------------------------------------------------------------------------------

_PY_NAME = re.compile(r"^(python|pypy)[0-9.]*$")


class MemrayLaunch:
    """``memview run --memray -- python SCRIPT …``: the program runs under ``memray run`` from its start.

    memray's ``run`` tracks in the same process (``python -m memray run -o FILE SCRIPT``), so the
    monitored root is still the program itself. The file is written to a private folder (the
    session's folder is not known before launch) and moved beside the session when it exits; its
    sites then describe the whole run: ``peak`` at the program's high-water mark, ``growth`` what
    was never freed.
    """

    def __init__(self) -> None:
        import tempfile

        self._dir = Path(tempfile.mkdtemp(prefix="memview-memray-"))
        self.output = self._dir / "run.memray.bin"
        self.recorder: Any = None
        self.capture: Capture | None = None

    def wrap(self, argv: list[str]) -> list[str]:
        """``python ARGS`` → ``python -m memray run -q --force -o FILE ARGS``; ValueError if not Python."""
        if (
            not argv
            or not _PY_NAME.match(Path(argv[0]).name)
            or len(argv) < 2
            or (argv[1].startswith("-") and argv[1] not in ("-m", "-c"))
        ):
            raise ValueError(
                "--memray needs COMMAND to be `python SCRIPT …`, `python -m MODULE …` or "
                "`python -c CODE` (memray runs it in the same interpreter)"
            )
        return [argv[0], "-m", "memray", "run", "-q", "--force", "-o", str(self.output), *argv[1:]]

    def install(self, session: Any) -> None:
        """Before sampling starts: the capture row of the whole run."""
        rec = self.recorder = session.recorder
        self.capture = Capture(
            tool="memray", pid=session.proc.pid, trigger="launch", started_s=0.0, data={"mode": "launch"}
        )
        rec.add_capture(self.capture)
        rec.add_listener(self)

    def on_closing(self, recorder: Any) -> None:
        """The program exited: move the file beside the session and summarise it."""
        capture = self.capture
        if capture is None:
            return
        store = recorder.store
        out_dir = store.artefact_dir(recorder.session_id) if store is not None else self._dir
        capture.ended_s = recorder.now()
        if not self.output.exists() or self.output.stat().st_size == 0:
            capture.status = "failed"
            recorder.add_event(
                "capture_error",
                "memray launch mode recorded nothing (did the command start Python with memray importable?)",
                level="error",
                data={"tool": "memray", "pid": capture.pid},
            )
        else:
            dest = out_dir / f"00-memray-{capture.pid}.memray.bin"
            shutil.move(str(self.output), dest)
            ctx = CaptureContext("memray", capture.pid or 0, out_dir, dest.stem, 0.0, 120.0)
            ctx.keep(dest)
            try:
                capture.data["summary"] = summarise(dest).as_dict()
                capture.status = "ok"
            except (OSError, ValueError, RuntimeError) as exc:
                capture.status = "partial"
                ctx.notes.append(f"memray's file could not be read ({exc})")
            finish(capture, ctx)
            recorder.add_event(
                "capture",
                f"memray (launch mode) saved: {capture.path} ({capture.size_bytes} bytes)",
                data={"tool": "memray", "pid": capture.pid, "path": capture.path},
            )
        recorder.add_capture(capture)
        shutil.rmtree(self._dir, ignore_errors=True)
        self.capture = None

    def abandon(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
