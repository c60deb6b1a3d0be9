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
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

MARK = "memory_profile"
_IN_CHILD = "_memview_in_child"


@dataclass
class _State:
    db: str | None
    interval: float
    store: Any = None
    measured: list[dict[str, Any]] = field(default_factory=list)


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memview", "memory checks (memview)")
    group.addoption("--memview-db", dest="memview_db", metavar="PATH",
                    help="store every memory_profile-measured test as a memview session in this SQLite file")
    group.addoption("--memview-interval", dest="memview_interval", default="10ms", metavar="DURATION",
                    help="sampling interval for stored sessions (default: 10ms)")


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
    state = _State(config.getoption("memview_db"), interval)
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
    skip = pytest.mark.skip(reason=f"memory check: runs only with -m {MARK}")
    for item in items:
        if item.get_closest_marker(MARK) is not None:
            item.add_marker(skip)


def _limit(marker: pytest.Mark) -> tuple[int | None, str | None]:
    from memview.units import UnitError, parse_size

    kwargs = dict(marker.kwargs)
    if marker.args:
        kwargs.setdefault("max_peak", marker.args[0])
    unknown = set(kwargs) - {"max_peak"}
    if unknown or len(marker.args) > 1:
        pytest.fail(f"{MARK}: unknown arguments {sorted(unknown) or marker.args[1:]} (it takes max_peak='300MB')",
                    pytrace=False)
    text = kwargs.get("max_peak")
    if text is None:
        return None, None
    if isinstance(text, int) and not isinstance(text, bool):
        return text, f"{text} bytes"
    try:
        return parse_size(str(text)), str(text)
    except UnitError as exc:
        pytest.fail(f"{MARK}(max_peak={text!r}): {exc}", pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker(MARK)
    if marker is None or getattr(pyfuncitem, _IN_CHILD, False):
        return None  # not ours, or already inside the child: pytest calls the function as usual
    limit, limit_text = _limit(marker)
    if not hasattr(os, "fork"):
        pytest.skip(f"{MARK} needs os.fork (Linux, macOS)")
    state = pyfuncitem.config.stash[_STATE]
    m = _measure(pyfuncitem, state)
    peak = m["peak_bytes"]
    state.measured.append({"nodeid": pyfuncitem.nodeid, "peak_bytes": peak, "limit_bytes": limit,
                           "limit": limit_text, "source": m["source"], "session_id": m.get("session_id")})
    pyfuncitem.user_properties.append(("memview_peak_bytes", peak))
    result = m.get("result") or {}
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


def _measure(item: pytest.Function, state: _State) -> dict[str, Any]:
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
        chunks = []
        while chunk := os.read(res_r, 65536):
            chunks.append(chunk)
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
    m: dict[str, Any] = {"result": report.get("result"), "start_rss_bytes": start}
    if hwm is not None and start is not None:
        m["peak_bytes"], m["source"], abs_peak = hwm - start, "kernel:VmHWM", hwm
    else:
        sampled = recorder.stats.max if recorder is not None else 0
        abs_peak = sampled or None
        m["peak_bytes"] = sampled - start if sampled and start is not None else None
        m["source"] = "sampled"
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    m["death"] = (f"was killed by signal {sig} ({signal.Signals(sig).name})"
                  + (" — possibly out of memory" if sig == signal.SIGKILL else "")) if sig else \
        f"exited with status {os.waitstatus_to_exitcode(status)} before reporting"
    if recorder is not None:
        m["session_id"] = _close_session(recorder, collector, report, m, abs_peak, t_go, sig, state)
    return m


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


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.measured:
        return
    from memview.units import format_bytes

    tr = terminalreporter
    tr.section("memview: test body peaks")
    for m in state.measured:
        limit = f" / max {m['limit']}" if m["limit"] else ""
        over = "  OVER" if m["limit_bytes"] is not None and (m["peak_bytes"] or 0) > m["limit_bytes"] else ""
        sid = f"  session {m['session_id']}" if m["session_id"] else ""
        tr.write_line(f"{format_bytes(m['peak_bytes']):>10}{limit}  [{m['source']}]{over}  {m['nodeid']}{sid}")
