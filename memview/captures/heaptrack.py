"""heaptrack captures: attach to a running process for a window, or run a launched command under it.

**Attach** (``heaptrack -p PID``): the heaptrack script injects its library through gdb, then
waits for the data pipe to close. It only closes when the process exits or when
``heaptrack_stop()`` is called inside it — the script does that from its EXIT trap, which dash
does not run when the script is killed by a signal. So memview ends the window the way the
script's own cleanup does: a gdb call to ``heaptrack_stop()``; the pipe closes, the interpreter
finishes the ``.zst`` and the script exits by itself (its trap's second stop is harmless).
Note the script reads options only *before* ``-p``.

**Launch** (``memview run --heaptrack``): the script would stay the parent of the program (its
``LD_PRELOAD=… program`` is not an exec), so the monitored root would be a shell and the program's
exit status and exact ``ru_maxrss`` would be lost. memview therefore does what the script does
itself: it starts the program with heaptrack's preload library and a FIFO in the environment, and
runs ``heaptrack_interpret < fifo | zstd`` beside it. The root is then the real program.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from memview.captures import heaptrack_print
from memview.captures.base import (
    CaptureContext,
    CaptureError,
    Spawned,
    find_tool,
    finish,
    run_tool,
    tail,
)
from memview.captures.ptrace_advice import looks_like_ptrace_refusal, ptrace_advice
from memview.collectors import procfs
from memview.model import Capture

_GDB_ERRORS = re.compile(
    r"ptrace:|could not attach|can't attach|couldn't get registers|no symbol table|"
    r"no symbol \"|cannot attach|is already traced",
    re.IGNORECASE,
)
INJECT_WAIT = 60.0


def _output_of(base: Path) -> Path | None:
    for suffix in (".zst", ".gz"):
        path = base.with_name(base.name + suffix)
        if path.exists():
            return path
    return None


def _no_display(env: dict[str, str] | None) -> dict[str, str]:
    """The environment without a display: heaptrack's cleanup starts heaptrack_gui when it finds one,
    and the capture would wait on that window until its time limit."""
    out = dict(os.environ if env is None else env)
    out.pop("DISPLAY", None)
    out.pop("WAYLAND_DISPLAY", None)
    return out


def _stop_argv(gdb: str, pid: int) -> list[str]:
    return [
        gdb,
        "--batch-silent",
        "-n",
        "-iex=set auto-solib-add off",
        "-p",
        str(pid),
        "--eval-command=sharedlibrary libheaptrack_inject",
        "--eval-command=call (void) heaptrack_stop()",
        "--eval-command=detach",
    ]


def attach(ctx: CaptureContext, capture: Capture) -> None:
    """Inject heaptrack into ``ctx.pid``, record ``ctx.duration`` seconds, stop it cleanly, summarise."""
    exe = find_tool("heaptrack", ctx.env)
    gdb = find_tool("gdb", ctx.env)
    base = ctx.path("")
    log_path = ctx.path(".log")
    log_path.unlink(missing_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        script = Spawned(
            [exe, "-o", str(base), "-p", str(ctx.pid)],
            stdout=fd,
            stderr=fd,
            env=_no_display(ctx.env),
            run_as=ctx.run_as,
        )
    finally:
        os.close(fd)
    ctx.running = script
    fifo = f"/tmp/heaptrack_fifo{script.pid}"
    t0 = time.monotonic()
    try:
        _wait_injected(ctx, script, log_path, fifo, min(INJECT_WAIT, ctx.remaining()))
        capture.data["inject_s"] = round(time.monotonic() - t0, 3)
        # the window: until the duration is over, the session closes, or the process exits
        window_end = time.monotonic() + ctx.duration
        while script.poll() is None and not ctx.stop.is_set() and time.monotonic() < window_end:
            script.wait(min(0.1, max(0.0, window_end - time.monotonic())))
        if script.poll() is None:
            t1 = time.monotonic()
            code, err = run_tool(ctx, _stop_argv(gdb, ctx.pid), None, ctx.path(".stop.log"), env=ctx.env)
            ctx.path(".stop.log").unlink(missing_ok=True)
            if script.wait(min(30.0, ctx.remaining())) is None:
                script.kill()
                raise CaptureError(
                    "heaptrack did not finish after heaptrack_stop(); killed",
                    status="timeout",
                    stderr_tail=tail(log_path),
                )
            capture.data["stop_s"] = round(time.monotonic() - t1, 3)
        else:
            ctx.notes.append(f"PID {ctx.pid} exited during the heaptrack window; the file covers it until then")
    except BaseException:
        if script.poll() is None:
            script.kill()
        Path(fifo).unlink(missing_ok=True)
        raise
    finally:
        ctx.running = None
    capture.exit_status = script.returncode
    capture.stderr_tail = tail(log_path)
    out = _output_of(base)
    if out is None or out.stat().st_size == 0:
        raise CaptureError(f"heaptrack wrote no data file (exit code {script.returncode})", stderr_tail=tail(log_path))
    ctx.keep(out)
    summarise(ctx, out, capture)
    ctx.keep(log_path)


def _wait_injected(ctx: CaptureContext, script: Spawned, log_path: Path, fifo: str, limit: float) -> None:
    """Until the target holds heaptrack's FIFO open (the injection worked), or a clear failure."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        log = tail(log_path, 8000)
        if "injection finished" in log:
            if _GDB_ERRORS.search(log) or looks_like_ptrace_refusal(log.split("injecting heaptrack", 1)[-1]):
                _raise_inject_failure(ctx, log)
            if procfs.holds_open(ctx.pid, fifo):
                return
        elif script.poll() is not None:
            if "Cannot runtime-attach" in log or looks_like_ptrace_refusal(log):
                raise CaptureError(ptrace_advice(ctx.pid, "gdb"), status="ptrace-refused", stderr_tail=log)
            raise CaptureError(
                f"heaptrack exited before attaching (exit code {script.returncode}): {_last_line(log)}", stderr_tail=log
            )
        if not procfs.alive(ctx.pid):
            raise CaptureError(f"PID {ctx.pid} exited before heaptrack could attach", status="exited", stderr_tail=log)
        script.wait(0.05)
    log = tail(log_path, 8000)
    if "injection finished" in log:
        raise CaptureError(
            f"heaptrack's library did not start in PID {ctx.pid} (gdb injected it, but it never "
            "opened heaptrack's pipe): " + _last_line(log),
            stderr_tail=log,
        )
    raise CaptureError(f"heaptrack did not attach within {limit:.0f}s", status="timeout", stderr_tail=log)


def _raise_inject_failure(ctx: CaptureContext, log: str) -> None:
    if looks_like_ptrace_refusal(log) or "already traced" in log:
        raise CaptureError(ptrace_advice(ctx.pid, "gdb"), status="ptrace-refused", stderr_tail=log)
    raise CaptureError(f"gdb could not inject heaptrack: {_last_line(log)}", stderr_tail=log)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def summarise(ctx: CaptureContext, data_file: Path, capture: Capture) -> None:
    """``heaptrack_print`` text beside the data file, and its sites in ``capture.data["summary"]``.

    Leaks are printed too (``-l``), and the peak-cost stacks go to a folded file (``-F``) for the
    flame graph (``.folded``, kept: flamegraph.pl and speedscope read it).
    """
    try:
        printer = find_tool("heaptrack_print", ctx.env)
    except CaptureError as exc:
        ctx.notes.append(str(exc))
        return
    txt = data_file.with_suffix(".txt")
    err = data_file.with_suffix(".print.log")
    folded = data_file.with_suffix(".folded")
    argv = [printer, "-f", str(data_file), "-l", "1", "-F", str(folded), "--flamegraph-cost-type", "peak"]
    code, err_tail = run_tool(ctx, argv, txt, err, env=ctx.env)
    err.unlink(missing_ok=True)
    if code == 0 and txt.exists() and txt.stat().st_size:
        ctx.keep(txt)
        text = txt.read_text(errors="replace")
        m = re.search(r"peak heap memory consumption:\s*(\S+)", text)
        if m:
            capture.data["peak_heap"] = m.group(1)
        stacks = heaptrack_print.folded_stacks(folded)
        if stacks:
            ctx.keep(folded)
        capture.data["summary"] = heaptrack_print.summary(text, stacks).as_dict()
    else:
        txt.unlink(missing_ok=True)
        folded.unlink(missing_ok=True)
        ctx.notes.append(f"heaptrack_print could not read {data_file.name} (exit {code}): {_last_line(err_tail)}")


# -- launch mode -------------------------------------------------------------------------------------


def _script_layout(script: Path) -> tuple[Path, Path]:
    """(preload library, interpreter) as the heaptrack script finds them: relative to itself."""
    text = script.read_text(errors="replace")
    lib_rel = re.search(r'LIB_REL_PATH="([^"]+)"', text)
    libexec_rel = re.search(r'LIBEXEC_REL_PATH="([^"]+)"', text)
    root = script.parent
    lib = (root / (lib_rel.group(1) if lib_rel else "../lib/heaptrack")).resolve()
    libexec = (root / (libexec_rel.group(1) if libexec_rel else "../lib/heaptrack/libexec")).resolve()
    return lib / "libheaptrack_preload.so", libexec / "heaptrack_interpret"


class HeaptrackLaunch:
    """``memview run --heaptrack``: the command runs with heaptrack from its first allocation."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env
        script = Path(os.path.realpath(find_tool("heaptrack", env)))
        self.preload, self.interpret = _script_layout(script)
        for path in (self.preload, self.interpret):
            if not path.exists():
                raise CaptureError(
                    f"cannot find {path.name} next to {script} (looked at {path})", status="missing-tool"
                )
        try:
            self.compressor, self.suffix = [find_tool("zstd", env), "-c"], ".zst"
        except CaptureError:
            self.compressor, self.suffix = [find_tool("gzip", env), "-c"], ".gz"
        self._dir = Path(tempfile.mkdtemp(prefix="memview-heaptrack-"))
        self.fifo = self._dir / "fifo"
        os.mkfifo(self.fifo, 0o600)
        self.capture: Capture | None = None
        self.recorder: Any = None
        self.output: Path | None = None
        self._procs: list[Spawned] = []
        self._opened = threading.Event()
        self._thread: threading.Thread | None = None
        self._log: Path | None = None

    def child_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The launched command's environment: heaptrack's preload library and where to write."""
        env = dict(os.environ if base is None else base)
        old = env.get("LD_PRELOAD")
        env["LD_PRELOAD"] = str(self.preload) + (f":{old}" if old else "")
        env["DUMP_HEAPTRACK_OUTPUT"] = str(self.fifo)
        return env

    def install(self, session: Any) -> None:
        """Called before sampling starts (``before_start``): name the artefact, start the reader."""
        rec = self.recorder = session.recorder
        pid = session.proc.pid
        store = rec.store
        out_dir = store.artefact_dir(rec.session_id) if store is not None else self._dir
        self.output = out_dir / f"00-heaptrack-{pid}{self.suffix}"
        self._log = out_dir / f"00-heaptrack-{pid}.log"
        self.capture = Capture(
            tool="heaptrack",
            pid=pid,
            trigger="launch",
            started_s=0.0,
            data={"mode": "launch", "preload": str(self.preload)},
        )
        rec.add_capture(self.capture)
        rec.add_listener(self)
        self._thread = threading.Thread(target=self._read, name="memview-heaptrack", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        # Blocks until the program's heaptrack library opens the FIFO for writing (at its start).
        fifo_fd = os.open(self.fifo, os.O_RDONLY)
        self._opened.set()
        assert self.output is not None and self._log is not None
        log_fd = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        r, w = os.pipe()
        try:
            self._procs.append(Spawned([str(self.interpret)], stdin=fifo_fd, stdout=w, stderr=log_fd, env=self.env))
            self._procs.append(
                Spawned(
                    [*self.compressor],
                    stdin=r,
                    stdout=self.output,
                    stderr=self._log.with_suffix(".zip.log"),
                    env=self.env,
                )
            )
        finally:
            for fd in (fifo_fd, log_fd, r, w):
                os.close(fd)

    def on_closing(self, recorder: Any) -> None:
        """The program has exited: let the interpreter finish the file, then summarise it."""
        capture = self.capture
        if capture is None:
            return
        if not self._opened.is_set():
            try:  # release the reader thread blocked in open(): nobody will ever write
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5.0)
        ctx = CaptureContext(
            "heaptrack",
            capture.pid or 0,
            self.output.parent if self.output else self._dir,
            f"00-heaptrack-{capture.pid}",
            0.0,
            120.0,
            env=self.env,
        )
        ctx.deadline = time.monotonic() + 120.0
        codes = [p.wait(60.0) for p in self._procs]
        for p in self._procs:
            if p.returncode is None:
                p.kill()
        capture.ended_s = recorder.now()
        capture.exit_status = codes[0] if codes else None
        capture.stderr_tail = tail(self._log)
        if self._log is not None:
            self._log.with_suffix(".zip.log").unlink(missing_ok=True)
        if (
            not self._opened.is_set()
            or self.output is None
            or not self.output.exists()
            or self.output.stat().st_size == 0
        ):
            capture.status = "failed"
            recorder.add_event(
                "capture_error",
                "heaptrack launch mode recorded nothing: the program never loaded "
                "heaptrack's library (a static or setuid binary ignores LD_PRELOAD)",
                level="error",
                data={"tool": "heaptrack", "pid": capture.pid},
            )
        else:
            ctx.keep(self.output)
            try:
                summarise(ctx, self.output, capture)
            except CaptureError as exc:
                ctx.notes.append(str(exc))
            if self._log is not None and self._log.exists():
                ctx.keep(self._log)
            capture.status = "ok" if codes and codes[0] == 0 else "partial"
            finish(capture, ctx)
            recorder.add_event(
                "capture",
                f"heaptrack (launch mode) saved: {capture.path} ({capture.size_bytes} bytes)",
                data={"tool": "heaptrack", "pid": capture.pid, "path": capture.path},
            )
        recorder.add_capture(capture)
        shutil.rmtree(self._dir, ignore_errors=True)
        self.capture = None

    def abandon(self) -> None:
        """The launch failed before :meth:`install`: remove the FIFO folder."""
        shutil.rmtree(self._dir, ignore_errors=True)
