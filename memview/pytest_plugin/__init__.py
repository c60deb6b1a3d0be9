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
parent (teardown sees the fixture as set-up left it). Free heap memory glibc kept (after earlier
tests or a fixture freed big buffers) is returned to the kernel before the body starts
(``malloc_trim``), or the body would reuse it unseen; what Python's own small-object allocator
keeps, and any allocator's free memory on other C libraries, can still be reused without showing.

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

The hooks are here; the parts they call live beside them: :mod:`.limits` (the marker's arguments
and the baseline file), :mod:`.isolation` (fork or spawn, and the measurement in the child),
:mod:`.session` (the stored session) and :mod:`.state` (what they share).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import pytest

from memview.baseline_files import BaselineError, load_baseline
from memview.pytest_plugin.isolation import measure_inline, os_threads, run_forked, run_spawned
from memview.pytest_plugin.limits import body_timeout, peak_limit, write_baseline
from memview.pytest_plugin.state import (
    IN_CHILD_ATTR,
    ISOLATIONS,
    MARK,
    STATE_KEY,
    PluginState,
    exact_bytes,
)
from memview.units import UnitError, format_bytes, parse_duration


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memview", "memory checks (memview)")
    group.addoption(
        "--memview-db",
        dest="memview_db",
        metavar="PATH",
        help="store every memory_profile-measured test as a memview session in this SQLite file",
    )
    group.addoption(
        "--memview-interval",
        dest="memview_interval",
        default="10ms",
        metavar="DURATION",
        help="sampling interval for stored sessions (default: 10ms)",
    )
    group.addoption(
        "--memview-isolation",
        dest="memview_isolation",
        default="auto",
        choices=ISOLATIONS,
        help="how a marked body is isolated: fork, spawn (a fresh interpreter), or auto: fork unless "
        "pytest's process already runs other threads (forking those hangs native libraries)",
    )
    group.addoption(
        "--memview-timeout",
        dest="memview_timeout",
        default="10m",
        metavar="DURATION",
        help="kill and fail a marked test running longer than this (default: 10m; 0: no limit)",
    )
    group.addoption(
        "--memview-baseline",
        dest="memview_baseline",
        metavar="FILE",
        help="a memview baseline: a marked test without max_peak is limited by its entry + tolerance",
    )
    group.addoption(
        "--memview-baseline-update",
        dest="memview_baseline_update",
        action="store_true",
        help="write the measured body peaks into --memview-baseline instead of checking them",
    )
    # internal: a spawned child's report file (isolation.run_spawned passes it), hidden from --help
    group.addoption("--memview-inline-report", dest="memview_inline_report", help=argparse.SUPPRESS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARK}(max_peak=None): run the test body in a monitored child process and fail when its own peak "
        "RSS (above the RSS at the body's start; fixtures do not count) exceeds max_peak, e.g. '300MB'. "
        f"Skipped unless selected with -m {MARK}.",
    )
    try:
        interval = parse_duration(config.getoption("memview_interval") or "10ms")
    except UnitError as exc:
        raise pytest.UsageError(f"--memview-interval: {exc}") from None
    try:
        timeout = parse_duration(config.getoption("memview_timeout") or "0")
    except UnitError as exc:
        raise pytest.UsageError(f"--memview-timeout: {exc}") from None
    state = PluginState(
        config.getoption("memview_db"),
        interval,
        isolation=config.getoption("memview_isolation"),
        timeout=timeout,
        inline_report=config.getoption("memview_inline_report"),
        baseline_path=config.getoption("memview_baseline"),
        update_baseline=bool(config.getoption("memview_baseline_update")),
    )
    if state.update_baseline and not state.baseline_path:
        raise pytest.UsageError("--memview-baseline-update needs --memview-baseline FILE")
    if state.baseline_path and not state.update_baseline:
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
    config.stash[STATE_KEY] = state


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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker(MARK)
    if marker is None or getattr(pyfuncitem, IN_CHILD_ATTR, False):
        return None  # not ours, or already inside the child: pytest calls the function as usual
    state = pyfuncitem.config.stash[STATE_KEY]
    if state.inline_report:
        measure_inline(pyfuncitem, state.inline_report)  # a spawned child: measure here, the parent judges
        return True
    limit, limit_text = peak_limit(pyfuncitem, marker, state)
    timeout = body_timeout(marker, state)
    isolation = state.isolation
    if isolation == "auto":
        isolation = "spawn" if os_threads() > 1 or not hasattr(os, "fork") else "fork"
    m = run_spawned(pyfuncitem, state, timeout) if isolation == "spawn" else run_forked(pyfuncitem, state, timeout)
    peak = m["peak_bytes"]
    report = m.get("report") or {}
    start, end, hwm = report.get("start_rss_bytes"), report.get("end_rss_bytes"), report.get("hwm_bytes")
    record = {
        "nodeid": pyfuncitem.nodeid,
        "peak_bytes": peak,
        "limit_bytes": limit,
        "limit": limit_text,
        "source": m["source"],
        "session_id": m.get("session_id"),
        "isolation": isolation,
        # the body's own use, as compare and baseline check name it: footprint = peak_bytes
        "growth_bytes": end - start if end is not None and start is not None else None,
        "abs_peak_bytes": hwm,
    }
    # the summary is printed from the reports, so it appears on pytest-xdist's controller too
    pyfuncitem.user_properties.append(("memview_peak_bytes", peak))
    pyfuncitem.user_properties.append(("memview", record))
    result = m.get("result") or {}
    if m.get("timed_out"):
        pytest.fail(
            f"{MARK}: the test ran longer than its timeout of {timeout:g}s and was killed "
            f"({isolation}); its peak so far was {exact_bytes(peak)}",
            pytrace=False,
        )
    if "outcome" not in result:
        pytest.fail(f"{MARK}: the test body {m['death']}; its peak so far was {exact_bytes(peak)}", pytrace=False)
    outcome = result["outcome"]
    if outcome == "skipped":
        pytest.skip(result["message"])
    if outcome == "xfailed":
        pytest.xfail(result["message"])
    if outcome in ("failed", "error"):
        pytest.fail(
            f"{result['message']}\n[memview: the body ran in a child process; its peak was {exact_bytes(peak)}]",
            pytrace=False,
        )
    if limit is not None and peak is not None and peak > limit:
        pytest.fail(
            f"{MARK}: the test body's peak {exact_bytes(peak)} exceeds max_peak={limit_text} ({limit:,} bytes)\n"
            f"  measured by {m['source']} as the highest RSS during the body minus the RSS at its start; "
            f"the {format_bytes(m['start_rss_bytes'])} resident at the start (pytest and the fixtures) is not counted",
            pytrace=False,
        )
    return True


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect measured tests from the reports: under pytest-xdist these arrive on the controller."""
    if report.when != "call":
        return
    record = dict(report.user_properties).get("memview")
    if isinstance(record, dict) and _CONFIG:
        state = _CONFIG[0].stash.get(STATE_KEY, None)
        if state is not None:
            state.measured.append(record)


_CONFIG: list[pytest.Config] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG[:] = [session.config]


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None or not state.update_baseline or hasattr(session.config, "workerinput"):
        return
    write_baseline(state)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.measured:
        return
    tr = terminalreporter
    tr.section("memview: test body peaks")
    tr.write_line("own peak (footprint: highest RSS during the body minus its start), growth (end - start)")
    for m in state.measured:
        limit = f" / max {m['limit']}" if m["limit"] else ""
        over = "  OVER" if m["limit_bytes"] is not None and (m["peak_bytes"] or 0) > m["limit_bytes"] else ""
        sid = f"  session {m['session_id']}" if m["session_id"] else ""
        growth = f"  growth {format_bytes(m.get('growth_bytes'))}" if m.get("growth_bytes") is not None else ""
        tr.write_line(f"{format_bytes(m['peak_bytes']):>10}{limit}{growth}  [{m['source']}]{over}  {m['nodeid']}{sid}")
