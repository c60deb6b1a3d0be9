"""pytest plugin: ``@pytest.mark.memory_profile(max_peak="300MB")`` fails a test whose body uses too much.

Why the body runs in a forked child: the classic mistake is a *contaminated baseline* — measuring
from process start (or from before the fixtures ran), so the fixture's 200 MB is blamed on the
test. Here pytest sets up every fixture in its own process as usual; then the plugin forks, and the
child resets the kernel's RSS high-water mark (``clear_refs``), reads its RSS, runs only the test
function, and reads ``VmHWM``. The figure checked against ``max_peak`` is the body's own peak:
the highest RSS during the body minus the RSS when the body started. Memory a fixture holds was
resident before that, so it cannot count; and whatever the body allocates dies with the child, so
one test's leftovers never count against the next.

Enabled by the ``pytest11`` entry point named ``memview`` (so ``-p memview`` works with plugin
autoloading off). Marked tests are skipped unless ``-m memory_profile`` selects them: memory
checks belong in their own CI job. ``--memview-db PATH`` stores each measured test as a session.

Limits of the method, said plainly: changes the body makes to fixture objects do not reach the
parent (teardown sees the fixture as set-up left it); memory a fixture freed but the allocator
kept can be reused by the body without showing as growth.

**Native threads: a fresh interpreter instead of a fork.** Forking a process that runs other
threads copies their locks but not the threads: a library with a native thread pool (kreuzberg's
Rust core, BLAS, gRPC) used by the parent before hangs for ever in the forked child. With
``--memview-isolation auto`` (the default) the plugin forks only while pytest's process has a
single OS thread (``/proc/self/task``); otherwise it runs the test in a fresh interpreter
(``python -m pytest NODEID``), which sets up the fixtures itself and measures the body the same way,
in-process. ``fork`` and ``spawn`` force one or the other. Either way a per-test timeout
(``--memview-timeout``, default 10 min; ``timeout=`` on the marker) kills the child and fails the
test with one clear line instead of hanging the run.

**Sizes.** ``max_peak`` takes memview's units: ``MB`` is 10^6 bytes, ``MiB`` 2^20 (``"50 MB"`` and
``"50MB"`` alike). ``limit_memory="50 MB"`` takes pytest-memray's spelling, where ``MB`` means
MiB, so a test ported from pytest-memray keeps its limit. ``baseline=True`` (or
``--memview-baseline FILE`` for every marked test) takes the limit from a baseline file with its
tolerance instead of a fixed size (``--memview-baseline-update`` writes it).
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
from dataclasses import dataclass, field
from typing import Any

import pytest

MARK = "memory_profile"
_IN_CHILD = "_memview_in_child"


DEFAULT_TIMEOUT_S = 600.0
ISOLATIONS = ("auto", "fork", "spawn")
BASELINE_CASE = "pytest"  # the case name of the tests' entries in a memview baseline file


@dataclass
class _State:
    db: str | None
    interval: float
    store: Any = None
    measured: list[dict[str, Any]] = field(default_factory=list)
    isolation: str = "auto"
    timeout: float = DEFAULT_TIMEOUT_S
    inline_report: str | None = None  # set in a spawned child: measure in-process, write the report here
    baseline_path: str | None = None
    baseline: dict[str, Any] | None = None
    update_baseline: bool = False


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memview", "memory checks (memview)")
    group.addoption("--memview-db", dest="memview_db", metavar="PATH",
                    help="store every memory_profile-measured test as a memview session in this SQLite file")
    group.addoption("--memview-interval", dest="memview_interval", default="10ms", metavar="DURATION",
                    help="sampling interval for stored sessions (default: 10ms)")
    group.addoption("--memview-isolation", dest="memview_isolation", default="auto", choices=ISOLATIONS,
                    help="how a marked body is isolated: fork, spawn (a fresh interpreter), or auto: fork unless "
                         "pytest's process already runs other threads (forking those hangs native libraries)")
    group.addoption("--memview-timeout", dest="memview_timeout", default="10m", metavar="DURATION",
                    help="kill and fail a marked test running longer than this (default: 10m; 0: no limit)")
    group.addoption("--memview-baseline", dest="memview_baseline", metavar="FILE",
                    help="a memview baseline: a marked test without max_peak is limited by its entry + tolerance")
    group.addoption("--memview-baseline-update", dest="memview_baseline_update", action="store_true",
                    help="write the measured body peaks into --memview-baseline instead of checking them")
    group.addoption("--memview-inline-report", dest="memview_inline_report", help=argparse_suppress())


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARK}(max_peak=None): run the test body in a monitored child process and fail when its own peak "
        "RSS (above the RSS at the body's start; fixtures do not count) exceeds max_peak, e.g. '300MB'. "
        f"Skipped unless selected with -m {MARK}.")
    from memview.units import UnitError, parse_duration

    try:
        interval = parse_duration(config.getoption("memview_interval") or "10ms")
    except UnitError as exc:
        raise pytest.UsageError(f"--memview-interval: {exc}") from None
    try:
        timeout = parse_duration(config.getoption("memview_timeout") or "0")
    except UnitError as exc:
        raise pytest.UsageError(f"--memview-timeout: {exc}") from None
    state = _State(config.getoption("memview_db"), interval, isolation=config.getoption("memview_isolation"),
                   timeout=timeout, inline_report=config.getoption("memview_inline_report"),
                   baseline_path=config.getoption("memview_baseline"),
                   update_baseline=bool(config.getoption("memview_baseline_update")))
    if state.update_baseline and not state.baseline_path:
        raise pytest.UsageError("--memview-baseline-update needs --memview-baseline FILE")
    if state.baseline_path and not state.update_baseline:
        from memview.baseline import BaselineError, load_baseline

        try:
            state.baseline = load_baseline(state.baseline_path)
        except BaselineError as exc:
            raise pytest.UsageError(f"--memview-baseline: {exc}") from None
    if state.db:
        from memview.store import Store, StoreError

        try:
            state.store = Store(state.db)
        except StoreError as exc:
            raise pytest.UsageError(f"--memview-db: {exc}") from None
    config.stash[_STATE] = state


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MARK in (config.getoption("markexpr", "") or ""):
        return
    named = _named_tests(config)
    skip = pytest.mark.skip(reason=f"memory check: runs only with -m {MARK} (or when named by node id)")
    for item in items:
        if item.get_closest_marker(MARK) is not None and not _is_named(item.nodeid, named):
            item.add_marker(skip)


def _named_tests(config: pytest.Config) -> list[str]:
    """Node ids given on the command line (``path::test``): asking for a test by name runs it."""
    out = []
    for arg in config.args:
        if "::" in arg:
            path, _, rest = arg.partition("::")
            try:
                rel = os.path.relpath(os.path.abspath(path), str(config.rootpath))
            except ValueError:
                rel = path
            out.append(rel.replace(os.sep, "/") + "::" + rest)
    return out


def _is_named(nodeid: str, named: list[str]) -> bool:
    return any(nodeid == n or nodeid.startswith(n + "::") or nodeid.startswith(n + "[") for n in named)


_KWARGS = {"max_peak", "limit_memory", "timeout", "baseline"}
#: pytest-memray's units: its "MB" is 1024 * 1024 bytes
_MEMRAY_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4,
                 "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _kwargs(marker: pytest.Mark) -> dict[str, Any]:
    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("max_peak", marker.args[0])
    unknown = set(kwargs) - _KWARGS
    if unknown or len(marker.args) > 1:
        pytest.fail(f"{MARK}: unknown arguments {sorted(unknown) or marker.args[1:]} (it takes max_peak='300MB', "
                    "limit_memory='300 MB' (pytest-memray's units), timeout='5m', baseline=True)", pytrace=False)
    if "max_peak" in kwargs and "limit_memory" in kwargs:
        pytest.fail(f"{MARK}: give max_peak (memview's units) or limit_memory (pytest-memray's), not both",
                    pytrace=False)
    return kwargs


def memray_size(text: str) -> int:
    """A size in pytest-memray's spelling: ``"50 MB"`` is 50 MiB there (its units are binary)."""
    import re

    m = re.match(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*$", text)
    factor = _MEMRAY_UNITS.get((m.group(2) or "b").lower()) if m else None
    if m is None or factor is None:
        raise ValueError(f"not a size: {text!r} (pytest-memray's spelling, e.g. '24 MB' = 24 MiB)")
    return int(float(m.group(1)) * factor)


def _limit(item: pytest.Function, marker: pytest.Mark, state: _State) -> tuple[int | None, str | None]:
    from memview.units import UnitError, parse_size

    kwargs = _kwargs(marker)
    if "limit_memory" in kwargs:
        memray = str(kwargs["limit_memory"])
        try:
            n = memray_size(memray)
        except ValueError as exc:
            pytest.fail(f"{MARK}(limit_memory={memray!r}): {exc}", pytrace=False)
        return n, f"{memray} (pytest-memray units: {n:,} bytes)"
    text = kwargs.get("max_peak")
    if text is None:
        return _baseline_limit(item, kwargs.get("baseline"), state)
    if isinstance(text, int) and not isinstance(text, bool):
        return text, f"{text} bytes"
    try:
        return parse_size(str(text)), str(text)
    except UnitError as exc:
        pytest.fail(f"{MARK}(max_peak={text!r}): {exc}", pytrace=False)


def _baseline_limit(item: pytest.Function, wanted: Any, state: _State) -> tuple[int | None, str | None]:
    """The limit from ``--memview-baseline``: the test's entry plus its tolerance (None: no entry)."""
    if state.baseline is None:
        if wanted and not state.update_baseline:
            pytest.fail(f"{MARK}(baseline=True) needs --memview-baseline FILE", pytrace=False)
        return None, None
    from memview.baseline import DEFAULT_TOLERANCE, parse_tolerance

    entry = state.baseline["cases"].get(BASELINE_CASE, {}).get(item.nodeid)
    if entry is None:
        if wanted:
            pytest.fail(f"{MARK}: no entry for {item.nodeid} in {state.baseline_path} "
                        "(write one with --memview-baseline-update)", pytrace=False)
        return None, None
    tol = parse_tolerance(entry.get("tolerance") or state.baseline.get("default_tolerance", DEFAULT_TOLERANCE))
    limit = tol.limit(entry["peak_rss_bytes"])
    return limit, f"baseline {_short(entry['peak_rss_bytes'])} {tol.text}"


def _timeout(marker: pytest.Mark, state: _State) -> float:
    from memview.units import UnitError, parse_duration

    value = marker.kwargs.get("timeout")
    if value is None:
        return state.timeout
    try:
        return parse_duration(str(value))
    except UnitError as exc:
        pytest.fail(f"{MARK}(timeout={value!r}): {exc}", pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker(MARK)
    if marker is None or getattr(pyfuncitem, _IN_CHILD, False):
        return None  # not ours, or already inside the child: pytest calls the function as usual
    state = pyfuncitem.config.stash[_STATE]
    if state.inline_report:
        _inline(pyfuncitem, state.inline_report)  # a spawned child: measure here, the parent judges
        return True
    limit, limit_text = _limit(pyfuncitem, marker, state)
    timeout = _timeout(marker, state)
    isolation = state.isolation
    if isolation == "auto":
        isolation = "spawn" if _threads() > 1 or not hasattr(os, "fork") else "fork"
    m = _spawn(pyfuncitem, state, timeout) if isolation == "spawn" else _measure(pyfuncitem, state, timeout)
    peak = m["peak_bytes"]
    report = m.get("report") or {}
    start, end, hwm = report.get("start_rss_bytes"), report.get("end_rss_bytes"), report.get("hwm_bytes")
    record = {"nodeid": pyfuncitem.nodeid, "peak_bytes": peak, "limit_bytes": limit, "limit": limit_text,
              "source": m["source"], "session_id": m.get("session_id"), "isolation": isolation,
              # the body's own use, as compare and baseline check name it: footprint = peak_bytes
              "growth_bytes": end - start if end is not None and start is not None else None,
              "abs_peak_bytes": hwm}
    # the summary is printed from the reports, so it appears on pytest-xdist's controller too
    pyfuncitem.user_properties.append(("memview_peak_bytes", peak))
    pyfuncitem.user_properties.append(("memview", record))
    result = m.get("result") or {}
    if m.get("timed_out"):
        pytest.fail(f"{MARK}: the test ran longer than its timeout of {timeout:g}s and was killed "
                    f"({isolation}); its peak so far was {_fmt(peak)}", pytrace=False)
    if "outcome" not in result:
        pytest.fail(f"{MARK}: the test body {m['death']}; its peak so far was {_fmt(peak)}", pytrace=False)
    outcome = result["outcome"]
    if outcome == "skipped":
        pytest.skip(result["message"])
    if outcome == "xfailed":
        pytest.xfail(result["message"])
    if outcome in ("failed", "error"):
        pytest.fail(f"{result['message']}\n[memview: the body ran in a child process; its peak was {_fmt(peak)}]",
                    pytrace=False)
    if limit is not None and peak is not None and peak > limit:
        pytest.fail(
            f"{MARK}: the test body's peak {_fmt(peak)} exceeds max_peak={limit_text} ({limit:,} bytes)\n"
            f"  measured by {m['source']} as the highest RSS during the body minus the RSS at its start; "
            f"the {_short(m['start_rss_bytes'])} resident at the start (pytest and the fixtures) is not counted",
            pytrace=False)
    return True


def _fmt(n: int | None) -> str:
    from memview.units import format_bytes

    return "unknown" if n is None else f"{format_bytes(n)} ({n:,} bytes)"


def _short(n: int | None) -> str:
    from memview.units import format_bytes

    return format_bytes(n)


def _body(item: pytest.Function) -> tuple[dict[str, Any], BaseException | None]:
    """In the child: run the test function the way pytest would, and say how it ended."""
    setattr(item, _IN_CHILD, True)
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


def _child(item: pytest.Function, go_r: int, res_w: int) -> None:
    """The forked child: wait for the parent, measure the body alone, report, and leave at once."""
    code = 0
    try:
        os.read(go_r, 1)
        os.close(go_r)
        from memview.collectors import procfs

        pid = os.getpid()
        mem = procfs.ProcMemory(pid) if procfs.AVAILABLE else None
        exact = mem is not None and procfs.reset_hwm(pid)
        start = mem.rss() if mem is not None else _psutil_rss()
        t0 = time.perf_counter()
        result, exc = _body(item)
        wall = time.perf_counter() - t0
        hwm = mem.hwm() if exact and mem is not None else None
        end = mem.rss() if mem is not None else _psutil_rss()
        if exc is not None:  # formatted after the measurement, so the report's own memory is not counted
            result["message"] = _describe(item, exc)
        report = {"result": result, "start_rss_bytes": start, "end_rss_bytes": end, "hwm_bytes": hwm, "wall_s": wall}
        data = json.dumps(report).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(res_w, view):]
    except BaseException:
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _psutil_rss() -> int | None:
    import psutil

    try:
        return psutil.Process().memory_info().rss
    except psutil.Error:
        return None


def _threads() -> int:
    """OS threads of this process (native ones included, which ``threading`` does not see)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


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


def _inline(item: pytest.Function, path: str) -> None:
    """In a spawned interpreter: the fixtures are set up; measure the body here and write the report."""
    from memview.collectors import procfs

    pid = os.getpid()
    mem = procfs.ProcMemory(pid) if procfs.AVAILABLE else None
    exact = mem is not None and procfs.reset_hwm(pid)
    start = mem.rss() if mem is not None else _psutil_rss()
    t0 = time.perf_counter()
    result, exc = _body(item)
    wall = time.perf_counter() - t0
    hwm = mem.hwm() if exact and mem is not None else None
    end = mem.rss() if mem is not None else _psutil_rss()
    if exc is not None:
        result["message"] = _describe(item, exc)
    with open(path, "w") as f:
        json.dump({"result": result, "start_rss_bytes": start, "end_rss_bytes": end, "hwm_bytes": hwm,
                   "wall_s": wall}, f)


def _spawn(item: pytest.Function, state: _State, timeout: float) -> dict[str, Any]:
    """Run ``item`` in a fresh interpreter (``python -m pytest NODEID``): nothing is forked from a
    process whose native threads may hold locks. Its fixtures are set up there; the body is measured
    there exactly as in a forked child."""
    config = item.config
    fd, report_path = tempfile.mkstemp(prefix="memview-pytest-", suffix=".json")
    os.close(fd)
    log = tempfile.TemporaryFile()
    argv = [sys.executable, "-m", "pytest", item.nodeid, "-p", "memview.pytest_plugin", "-p", "no:memview",
            "-p", "no:cacheprovider",
            "-q", "--rootdir", str(config.rootpath), "--memview-inline-report", report_path,
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if config.inipath is not None:
        argv += ["-c", str(config.inipath)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    m: dict[str, Any] = {"source": "kernel:VmHWM", "peak_bytes": None}
    recorder = collector = None
    try:
        proc = subprocess.Popen(argv, cwd=str(config.rootpath), stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            if state.store is not None:
                recorder, collector = _start_recorder(item, proc.pid, state)
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
        m["death"] = _killed(-code)
    elif not report:
        log.seek(0)
        tail = log.read()[-2000:].decode(errors="replace").strip()
        m["death"] = f"did not run in the fresh interpreter (exit status {code}):\n{tail}"
    log.close()
    if recorder is not None:
        abs_peak = hwm if hwm is not None else None
        t_body = recorder.now() - (report.get("wall_s") or 0.0)  # the body ended as the interpreter finished
        m["session_id"] = _close_session(recorder, collector, report, m, abs_peak, t_body, None, state)
    return m


def _measure(item: pytest.Function, state: _State, timeout: float = 0.0) -> dict[str, Any]:
    """Fork, run the body in the child (sampled by a recorder when a session is wanted), collect."""
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(res_r)
        _child(item, go_r, res_w)
    os.close(go_r)
    os.close(res_w)
    recorder = collector = None
    reaped = False
    try:
        from memview.collectors import procfs

        if state.store is not None or not procfs.AVAILABLE:
            recorder, collector = _start_recorder(item, pid, state)
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
    m: dict[str, Any] = {"result": report.get("result"), "start_rss_bytes": start, "timed_out": not finished,
                         "report": report}
    if hwm is not None and start is not None:
        m["peak_bytes"], m["source"], abs_peak = hwm - start, "kernel:VmHWM", hwm
    else:
        sampled = recorder.stats.max if recorder is not None else 0
        abs_peak = sampled or None
        m["peak_bytes"] = sampled - start if sampled and start is not None else None
        m["source"] = "sampled"
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    m["death"] = _killed(sig) if sig else f"exited with status {os.waitstatus_to_exitcode(status)} before reporting"
    if recorder is not None:
        m["session_id"] = _close_session(recorder, collector, report, m, abs_peak, t_go, sig, state)
    return m


def _killed(sig: int) -> str:
    return f"was killed by signal {sig} ({signal.Signals(sig).name})" + (
        " — possibly out of memory" if sig == signal.SIGKILL else "")


def _start_recorder(item: pytest.Function, pid: int, state: _State) -> tuple[Any, Any]:
    from memview.collectors.process import ProcessTreeCollector
    from memview.recorder import Recorder

    collector = ProcessTreeCollector(pid, kind="pytest")
    recorder = Recorder(collector, state.store, interval=state.interval, session_fields={
        "name": item.nodeid, "command": ["pytest", item.nodeid], "target": item.nodeid, "pid": pid,
        "cwd": os.getcwd(), "tags": ["pytest", MARK]})
    recorder.start()
    return recorder, collector


def _close_session(recorder: Any, collector: Any, report: dict[str, Any], m: dict[str, Any], abs_peak: int | None,
                   t_go: float, sig: int | None, state: _State) -> int | None:
    """Close the stored session: the body as a phase whose own peak is the exact figure."""
    from memview.model import Phase

    recorder.stop("exited")
    recorder.wait(5)
    wall = report.get("wall_s") or 0.0
    recorder.add_phase(Phase(
        "test body", 0, t_go, t_go + wall, start_rss_bytes=report.get("start_rss_bytes"),
        end_rss_bytes=report.get("end_rss_bytes"), peak_rss_bytes=abs_peak, peak_source=m["source"]))
    outcome = (m.get("result") or {}).get("outcome", "killed")
    recorder.close("completed", peak_rss_bytes=abs_peak, peak_source=m["source"], exit_code=None if sig else 0,
                   signal=sig, meta={"test_outcome": outcome, "body_peak_bytes": m["peak_bytes"],
                                     "body_start_rss_bytes": report.get("start_rss_bytes")})
    return recorder.session_id if state.store is not None else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect measured tests from the reports: under pytest-xdist these arrive on the controller."""
    if report.when != "call":
        return
    record = dict(report.user_properties).get("memview")
    if isinstance(record, dict) and _CONFIG:
        state = _CONFIG[0].stash.get(_STATE, None)
        if state is not None:
            state.measured.append(record)


_CONFIG: list[pytest.Config] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG[:] = [session.config]


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or not state.update_baseline or hasattr(session.config, "workerinput"):
        return
    _write_baseline(state)


def _write_baseline(state: _State) -> None:
    """``--memview-baseline-update``: each measured body's peak as an entry of case ``pytest``."""
    from pathlib import Path

    from memview.baseline import DEFAULT_TOLERANCE, FORMAT, VERSION, BaselineError, dumps, load_baseline

    path = Path(state.baseline_path or "")
    try:
        doc = load_baseline(path) if path.exists() else None
    except BaselineError as exc:
        raise pytest.UsageError(f"--memview-baseline: {exc}") from None
    doc = doc or {"format": FORMAT, "version": VERSION, "default_tolerance": DEFAULT_TOLERANCE, "cases": {}}
    entries = doc["cases"].setdefault(BASELINE_CASE, {})
    for m in state.measured:
        if m.get("peak_bytes") is not None:
            old = entries.get(m["nodeid"], {})
            entries[m["nodeid"]] = {"peak_rss_bytes": max(m["peak_bytes"], 0),
                                    **({"tolerance": old["tolerance"]} if "tolerance" in old else {})}
    doc.pop("migrated_from", None)
    doc["cases"][BASELINE_CASE] = dict(sorted(entries.items()))
    path.write_text(dumps(doc))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.measured:
        return
    from memview.units import format_bytes

    tr = terminalreporter
    tr.section("memview: test body peaks")
    tr.write_line("own peak (footprint: highest RSS during the body minus its start), growth (end - start)")
    for m in state.measured:
        limit = f" / max {m['limit']}" if m["limit"] else ""
        over = "  OVER" if m["limit_bytes"] is not None and (m["peak_bytes"] or 0) > m["limit_bytes"] else ""
        sid = f"  session {m['session_id']}" if m["session_id"] else ""
        growth = f"  growth {format_bytes(m.get('growth_bytes'))}" if m.get("growth_bytes") is not None else ""
        tr.write_line(f"{format_bytes(m['peak_bytes']):>10}{limit}{growth}  [{m['source']}]{over}  "
                      f"{m['nodeid']}{sid}")
