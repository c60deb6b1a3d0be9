"""Running one marked test body apart from pytest's process, and measuring its own peak there.

Two ways, one measurement. **fork**: the fixtures are set up in pytest's process, the child
resets the kernel's high-water mark (``clear_refs``), runs only the body and reports ``VmHWM``
minus its RSS at the start through a pipe. **spawn**: a fresh interpreter (``python -m pytest
NODEID``) sets the fixtures up itself and measures the body the same way, in-process, writing the
report to a file; used when pytest's process runs other OS threads, whose locks a fork would copy
without the threads (native thread pools then hang the child for ever). Either way the child is
killed, never left behind, on a timeout or a Ctrl-C, and its death is described in one line.

When ``--memview-db`` is given, a recorder samples the child and stores it as a session whose
"test body" phase carries the exact figure (:mod:`.session`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

import pytest

from memview.collectors import procfs

from .session import close_session, start_recorder
from .state import IN_CHILD_ATTR, PluginState


def os_threads() -> int:
    """OS threads of this process (native ones included, which ``threading`` does not see)."""
    count = procfs.thread_count(os.getpid())
    if count is None:
        import threading

        return threading.active_count()
    return count


def _psutil_rss() -> int | None:
    import psutil

    try:
        return int(psutil.Process().memory_info().rss)
    except psutil.Error:
        return None


def return_free_memory() -> None:
    """Give the C allocator's free heap memory back to the kernel (glibc's ``malloc_trim``; elsewhere nothing).

    Why: freed memory glibc keeps is resident and counted in the RSS at the body's start; a body
    that reuses it grows nothing the kernel can see. After earlier tests in the same pytest
    process freed ~30 MB blocks (glibc then serves such sizes from the heap and keeps them), a
    29 MB body measured 0 bytes. Returned first, the body's pages are faulted in anew and counted.
    """
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): no trim, the documented limit applies
        return
    trim(0)


def _run_body(item: pytest.Function) -> tuple[dict[str, Any], BaseException | None]:
    """In the child: run the test function the way pytest would, and say how it ended."""
    setattr(item, IN_CHILD_ATTR, True)
    try:
        item.ihook.pytest_pyfunc_call(pyfuncitem=item)
    except pytest.skip.Exception as exc:
        return {"outcome": "skipped", "message": str(exc.msg or "")}, None
    except pytest.xfail.Exception as exc:
        return {"outcome": "xfailed", "message": str(exc.msg or "")}, None
    except pytest.fail.Exception as exc:
        return {"outcome": "failed", "message": str(exc.msg or "")}, None
    except BaseException as exc:
        return {"outcome": "error"}, exc
    return {"outcome": "passed"}, None


def _describe(item: pytest.Function, exc: BaseException) -> str:
    """pytest's own failure text for ``exc`` (assertion introspection included), headed by its one-liner."""
    import traceback

    head = "".join(traceback.format_exception_only(exc)).strip().splitlines()[0]
    try:
        return head + "\n" + str(item.repr_failure(pytest.ExceptionInfo.from_exception(exc)))
    except Exception:
        return "".join(traceback.format_exception(exc))


def measure_body(item: pytest.Function) -> dict[str, Any]:
    """Run the body here with the high-water mark reset first: its outcome and RSS at start, end and peak.

    ``hwm_bytes`` is None where the mark cannot be reset (no ``clear_refs``); the parent then falls
    back to its own samples.
    """
    from memview.collectors import procfs

    pid = os.getpid()
    return_free_memory()
    mem = procfs.ProcMemory(pid) if procfs.AVAILABLE else None
    exact = mem is not None and procfs.reset_hwm(pid)
    start = mem.rss() if mem is not None else _psutil_rss()
    t0 = time.perf_counter()
    result, exc = _run_body(item)
    wall = time.perf_counter() - t0
    hwm = mem.hwm() if exact and mem is not None else None
    end = mem.rss() if mem is not None else _psutil_rss()
    if exc is not None:  # formatted after the measurement, so the report's own memory is not counted
        result["message"] = _describe(item, exc)
    return {"result": result, "start_rss_bytes": start, "end_rss_bytes": end, "hwm_bytes": hwm, "wall_s": wall}


def measure_inline(item: pytest.Function, path: str) -> None:
    """In a spawned interpreter: the fixtures are set up; measure the body here and write the report."""
    report = measure_body(item)
    with open(path, "w") as f:
        json.dump(report, f)


def _forked_child(item: pytest.Function, go_r: int, res_w: int) -> None:
    """The forked child: wait for the parent, measure the body alone, report, and leave at once."""
    code = 0
    try:
        os.read(go_r, 1)
        os.close(go_r)
        view = memoryview(json.dumps(measure_body(item)).encode())
        while view:
            view = view[os.write(res_w, view) :]
    except BaseException:
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _read_until(fd: int, deadline: float | None) -> tuple[bytes, bool]:
    """Everything written to ``fd`` until EOF; (data, False) when ``deadline`` passed first."""
    chunks: list[bytes] = []
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), False
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def killed(sig: int) -> str:
    """How a child killed by ``sig`` is described (SIGKILL is most often the OOM killer)."""
    return f"was killed by signal {sig} ({signal.Signals(sig).name})" + (
        " — possibly out of memory" if sig == signal.SIGKILL else ""
    )


def run_spawned(item: pytest.Function, state: PluginState, timeout: float) -> dict[str, Any]:
    """Run ``item`` in a fresh interpreter (``python -m pytest NODEID``): nothing is forked from a
    process whose native threads may hold locks. Its fixtures are set up there; the body is measured
    there exactly as in a forked child."""
    config = item.config
    fd, report_path = tempfile.mkstemp(prefix="memview-pytest-", suffix=".json")
    os.close(fd)
    log = tempfile.TemporaryFile()
    argv = [
        sys.executable,
        "-m",
        "pytest",
        item.nodeid,
        "-p",
        "memview.pytest_plugin",
        "-p",
        "no:memview",
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir",
        str(config.rootpath),
        "--memview-inline-report",
        report_path,
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
    ]
    if config.inipath is not None:
        argv += ["-c", str(config.inipath)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    m: dict[str, Any] = {"source": "kernel:VmHWM", "peak_bytes": None}
    recorder = collector = None
    try:
        proc = subprocess.Popen(
            argv, cwd=str(config.rootpath), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            if state.store is not None:
                recorder, collector = start_recorder(item, proc.pid, state)
            code = proc.wait(timeout or None)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            m["timed_out"] = True
            if recorder is not None:
                recorder.close("interrupted")
            return m
        except BaseException:  # Ctrl-C: the child must not outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if recorder is not None:
                recorder.close("interrupted")
            raise
        with open(report_path) as f:
            text = f.read()
        report = json.loads(text) if text else {}
    finally:
        os.unlink(report_path)
    start, hwm = report.get("start_rss_bytes"), report.get("hwm_bytes")
    m["result"] = report.get("result")
    m["report"] = report
    m["start_rss_bytes"] = start
    if hwm is not None and start is not None:
        m["peak_bytes"] = hwm - start
    else:
        m["source"] = "unmeasured"
    if not report and code < 0:
        m["death"] = killed(-code)
    elif not report:
        log.seek(0)
        tail = log.read()[-2000:].decode(errors="replace").strip()
        m["death"] = f"did not run in the fresh interpreter (exit status {code}):\n{tail}"
    log.close()
    if recorder is not None:
        t_body = recorder.now() - (report.get("wall_s") or 0.0)  # the body ended as the interpreter finished
        m["session_id"] = close_session(recorder, report, m, hwm, t_body, None, state)
    return m


def run_forked(item: pytest.Function, state: PluginState, timeout: float = 0.0) -> dict[str, Any]:
    """Fork, run the body in the child (sampled by a recorder when a session is wanted), collect."""
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(res_r)
        _forked_child(item, go_r, res_w)
    os.close(go_r)
    os.close(res_w)
    recorder = None
    reaped = False
    try:
        from memview.collectors import procfs

        if state.store is not None or not procfs.AVAILABLE:
            recorder, _collector = start_recorder(item, pid, state)
        t_go = recorder.now() if recorder is not None else 0.0
        os.write(go_w, b"g")
        os.close(go_w)
        go_w = -1
        data, finished = _read_until(res_r, time.monotonic() + timeout if timeout else None)
        chunks = [data]
        if not finished:
            os.kill(pid, signal.SIGKILL)
            chunks = []
        _, status, _usage = os.wait4(pid, 0)
        reaped = True
    finally:
        os.close(res_r)
        if go_w >= 0:
            os.close(go_w)
        if not reaped:  # interrupted (Ctrl-C, pytest-timeout): the child must not outlive the test
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            if recorder is not None:
                recorder.close("interrupted")
    report = json.loads(b"".join(chunks) or b"{}")
    start = report.get("start_rss_bytes")
    hwm = report.get("hwm_bytes")
    m: dict[str, Any] = {
        "result": report.get("result"),
        "start_rss_bytes": start,
        "timed_out": not finished,
        "report": report,
    }
    abs_peak: int | None
    if hwm is not None and start is not None:
        m["peak_bytes"], m["source"], abs_peak = hwm - start, "kernel:VmHWM", hwm
    else:
        sampled = recorder.stats.max if recorder is not None else 0
        abs_peak = sampled or None
        m["peak_bytes"] = sampled - start if sampled and start is not None else None
        m["source"] = "sampled"
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    m["death"] = killed(sig) if sig else f"exited with status {os.waitstatus_to_exitcode(status)} before reporting"
    if recorder is not None:
        m["session_id"] = close_session(recorder, report, m, abs_peak, t_go, sig, state)
    return m


__all__ = ["killed", "measure_body", "measure_inline", "os_threads", "return_free_memory", "run_forked", "run_spawned"]
