"""The pytest plugin on real pytest runs (pytester): limits, clean baselines, skipping, stored sessions."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from memview.store import Store
from memview.units import format_bytes

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
PLUGIN = "memview.pytest_plugin"


@pytest.fixture(autouse=True)
def _only_our_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner runs load exactly this worktree's plugin (-p), not whatever an installed entry point names.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.HookRecorder:
    return pytester.inline_run("-p", PLUGIN, "-p", "no:cacheprovider", *args)


def _call_reports(rec: pytest.HookRecorder) -> dict[str, pytest.TestReport]:
    out = {}
    for r in rec.getreports("pytest_runtest_logreport"):
        if r.when == "call" or (r.when == "setup" and r.skipped):
            out[r.nodeid.split("::")[-1]] = r
    return out


def _peak(report: pytest.TestReport) -> int:
    return dict(report.user_properties)["memview_peak_bytes"]


def test_a_body_over_its_limit_fails_naming_the_peak_and_the_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memory_profile(max_peak="100MB")
        def test_big():
            buf = bytearray(150_000_000)

        @pytest.mark.memory_profile(max_peak="100MB")
        def test_small():
            buf = bytearray(30_000_000)
    """)
    rec = _run(pytester, "-m", "memory_profile")
    reports = _call_reports(rec)
    big, small = reports["test_big"], reports["test_small"]
    assert big.failed and small.passed
    text = big.longreprtext
    assert "exceeds max_peak=100MB (100,000,000 bytes)" in text, text
    peak = _peak(big)
    assert 147 * MB <= peak < 156 * MB, peak  # the body's own growth: 150 MB within 2% (pages, heap reuse)
    assert f"peak {format_bytes(peak)} ({peak:,} bytes) exceeds" in text
    assert 29 * MB <= _peak(small) < 35 * MB


def test_fixture_memory_outside_the_body_does_not_count(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096

        @pytest.fixture(scope="module")
        def corpus():
            return bytearray(150_000_000)

        @pytest.fixture
        def index(corpus):
            before = rss()
            data = bytearray(50_000_000)
            assert rss() - before > 45_000_000  # really resident, in the pytest process
            return data

        @pytest.mark.memory_profile(max_peak="100MB")
        def test_body(corpus, index):
            work = bytearray(20_000_000)
            assert len(corpus) + len(index) == 200_000_000
    """)
    rec = _run(pytester, "-m", "memory_profile")
    report = _call_reports(rec)["test_body"]
    assert report.passed, report.longreprtext
    assert 19 * MB <= _peak(report) < 25 * MB, _peak(report)


def test_memory_freed_before_the_body_but_kept_by_the_allocator_is_not_reused_unseen(pytester: pytest.Pytester) -> None:
    """The defect: after earlier tests in the same pytest process freed big buffers, glibc kept the pages
    resident (its mmap threshold rises to a freed 30 MB block, then such blocks come from the heap and stay
    there), the forked body reused them, and a 29 MB body measured 60 KiB. The child returns free heap
    memory to the kernel (malloc_trim) before the body starts, so the body's pages are its own again."""
    pytester.makepyfile("""
        import pytest

        def touched(n):
            buf = bytearray(n)
            buf[::4096] = b"1" * len(buf[::4096])
            return buf

        @pytest.fixture
        def churn():
            del_me = touched(30 * 2**20)
            del del_me  # an mmapped block freed: glibc raises its mmap threshold past 30 MB
            kept = touched(30 * 2**20)  # now from the heap ...
            del kept  # ... and freed there: resident, ready for reuse

        @pytest.mark.memory_profile(max_peak="100MB")
        def test_body(churn):
            work = touched(29 * 2**20)
    """)
    rec = _run(pytester, "-m", "memory_profile", "--memview-isolation", "fork")
    report = _call_reports(rec)["test_body"]
    assert report.passed, report.longreprtext
    assert 29 * 2**20 <= _peak(report) < 35 * 2**20, _peak(report)


def test_marked_tests_are_skipped_without_the_marker_selected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memory_profile(max_peak="1MB")
        def test_heavy():
            buf = bytearray(50_000_000)

        def test_plain():
            pass
    """)
    rec = _run(pytester)
    reports = _call_reports(rec)
    assert reports["test_heavy"].skipped and reports["test_plain"].passed
    assert "-m memory_profile" in str(reports["test_heavy"].longrepr)
    rec = _run(pytester, "-m", "memory_profile")
    assert rec.countoutcomes() == [0, 0, 1]  # selected now: it runs, and 50 MB > 1MB fails


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_body_outcomes_come_back_from_the_child(pytester: pytest.Pytester, isolation: str) -> None:
    pytester.makepyfile("""
        import os
        import pytest

        @pytest.mark.memory_profile
        def test_assertion():
            x = 1
            assert x == 2

        @pytest.mark.memory_profile
        def test_skip_inside():
            pytest.skip("not today")

        @pytest.mark.memory_profile
        def test_killed():
            os.kill(os.getpid(), 9)

        @pytest.mark.memory_profile(max_peak="a lot")
        def test_bad_limit():
            pass
    """)
    rec = _run(pytester, "-m", "memory_profile", "--memview-isolation", isolation)
    reports = _call_reports(rec)
    assert reports["test_assertion"].failed
    assert "assert 1 == 2" in reports["test_assertion"].longreprtext
    assert reports["test_skip_inside"].skipped and "not today" in str(reports["test_skip_inside"].longrepr)
    killed = reports["test_killed"].longreprtext
    assert reports["test_killed"].failed and "killed by signal 9 (SIGKILL)" in killed
    assert "not a size: 'a lot'" in reports["test_bad_limit"].longreprtext


def test_memview_db_stores_each_measured_test_as_a_session(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile("""
        import time
        import pytest

        @pytest.fixture
        def big():
            return bytearray(80_000_000)

        @pytest.mark.memory_profile(max_peak="100MB")
        def test_one(big):
            buf = bytearray(40_000_000)
            # the workload holds its memory for a second, so samples see it: a spawned child spends
            # most of its life starting pytest, and a loaded CI machine ran the 5 ms sampler only
            # ~20 times a second (a 0.1 s hold was missed twice in six loaded runs)
            time.sleep(1.0)

        @pytest.mark.memory_profile
        def test_two():
            buf = bytearray(10_000_000)
    """)
    db = tmp_path / "tests.db"
    rec = _run(pytester, "-m", "memory_profile", f"--memview-db={db}", "--memview-interval=5ms")
    reports = _call_reports(rec)
    assert reports["test_one"].passed and reports["test_two"].passed
    store = Store(db)
    sessions = {s["name"].split("::")[-1]: s for s in store.sessions()}
    assert set(sessions) == {"test_one", "test_two"}
    one = sessions["test_one"]
    assert one["kind"] == "pytest" and one["status"] == "completed" and "memory_profile" in one["tags"]
    (phase,) = store.phases(one["id"])
    assert phase["name"] == "test body" and phase["peak_source"] == "kernel:VmHWM"
    assert phase["peak_rss_bytes"] - phase["start_rss_bytes"] == _peak(reports["test_one"])
    assert phase["start_rss_bytes"] > 80 * MB  # the fixture was resident, and is not in the figure
    _, values = store.load_series(one["id"])
    assert len(values) >= 10 and max(values) > 120 * MB  # the child was sampled while it held fixture + body
    assert one["meta"]["test_outcome"] == "passed"


def test_entry_point_is_named_memview_and_p_memview_loads_it(pytester: pytest.Pytester, tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"memview": PLUGIN}
    # an installed distribution as pip would leave it: entry_points.txt beside the package
    site = tmp_path / "site"
    info = site / "memview_plugin_probe-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: memview-plugin-probe\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\nmemview = {PLUGIN}\n")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memory_profile(max_peak="10MB")
        def test_heavy():
            buf = bytearray(30_000_000)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "memview",
            "-m",
            "memory_profile",
            "-q",
            "-p",
            "no:cacheprovider",
            str(pytester.path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=pytester.path,
        timeout=120,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "exceeds max_peak=10MB" in res.stdout, res.stdout
    assert "memview: test body peaks" in res.stdout


# -- issue 16 item 5: native libraries, node ids, timeouts, baselines, sizes, xdist ----------------


def test_a_native_threaded_library_used_before_does_not_hang_the_marked_test(pytester: pytest.Pytester) -> None:
    """kreuzberg's Rust core keeps a thread pool: forking pytest after the module used it made the
    child wait for ever on a lock held by a thread that does not exist there. With more than one OS
    thread in pytest's process the body runs in a fresh interpreter instead, and completes."""
    pytest.importorskip("kreuzberg", reason="kreuzberg is a test dependency (pyproject [test] extra)")
    pytester.makepyfile(
        test_native="""
        import os
        import pytest
        import kreuzberg

        def _files(tmp):
            paths = []
            for i in range(4):
                p = tmp / f"doc{i}.txt"
                p.write_text("hello native threads\\n" * 200)
                paths.append(str(p))
            return paths

        def test_warm_up(tmp_path):
            kreuzberg.batch_extract_files_sync(_files(tmp_path))  # starts the native thread pool
            assert len(os.listdir("/proc/self/task")) > 1

        @pytest.mark.memory_profile(max_peak="500MB", timeout="2m")
        def test_extract_again(tmp_path):
            results = kreuzberg.batch_extract_files_sync(_files(tmp_path))
            assert [r.content.strip() for r in results] == [("hello native threads\\n" * 200).strip()] * 4
            buf = bytearray(30 * 2**20)
            for i in range(0, len(buf), 4096):
                buf[i] = 1
    """
    )
    rec = _run(pytester, "-m", "memory_profile or not memory_profile")
    reports = _call_reports(rec)
    assert reports["test_warm_up"].passed
    assert reports["test_extract_again"].passed, reports["test_extract_again"].longrepr
    record = dict(reports["test_extract_again"].user_properties)["memview"]
    assert record["isolation"] == "spawn"
    assert 25 * 2**20 <= record["peak_bytes"] < 300 * 2**20  # the body's 30 MiB, measured in the fresh interpreter


def test_forced_spawn_measures_the_body_like_a_fork(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.fixture
        def corpus():
            return bytearray(80 * 2**20)  # set up in the fresh interpreter too: not counted

        @pytest.mark.memory_profile(max_peak="100MB")
        def test_body(corpus):
            buf = bytearray(40 * 2**20)
            for i in range(0, len(buf), 4096):
                buf[i] = 1
            assert len(corpus) == 80 * 2**20

        @pytest.mark.memory_profile
        def test_fails():
            assert 1 + 1 == 3
    """)
    rec = _run(pytester, "-m", "memory_profile", "--memview-isolation", "spawn")
    reports = _call_reports(rec)
    assert reports["test_body"].passed, reports["test_body"].longrepr
    assert 35 * 2**20 <= _peak(reports["test_body"]) < 60 * 2**20  # the body's 40 MiB, not the fixture's 80
    assert reports["test_fails"].failed and "assert (1 + 1) == 3" in str(reports["test_fails"].longrepr)


def test_a_marked_test_named_by_node_id_runs(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile("""
        import pytest

        @pytest.mark.memory_profile(max_peak="10MB")
        def test_heavy():
            buf = bytearray(30_000_000)

        @pytest.mark.memory_profile(max_peak="10MB")
        def test_other():
            pass
    """)
    rec = _run(pytester, f"{path}::test_heavy")
    reports = _call_reports(rec)
    assert reports["test_heavy"].failed and "exceeds max_peak=10MB" in str(reports["test_heavy"].longrepr)
    rec = _run(pytester, str(path))
    assert all(r.skipped for r in _call_reports(rec).values())  # a whole file still needs -m memory_profile


def test_a_body_past_its_timeout_is_killed_with_one_clear_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import threading
        import pytest

        @pytest.mark.memory_profile(timeout="1s")
        def test_hangs():
            threading.Event().wait()
    """)
    for isolation in ("fork", "spawn"):
        rec = _run(pytester, "-m", "memory_profile", "--memview-isolation", isolation)
        (report,) = _call_reports(rec).values()
        assert report.failed
        assert f"ran longer than its timeout of 1s and was killed ({isolation})" in str(report.longrepr)


def test_pytest_memray_sizes_are_mib_and_memviews_mb_is_decimal(pytester: pytest.Pytester) -> None:
    """50 MB is 50 MiB in pytest-memray's limit_memory and 50,000,000 bytes in max_peak; 49 MiB of body."""
    pytester.makepyfile("""
        import pytest

        def _touch():
            buf = bytearray(49 * 2**20)
            for i in range(0, len(buf), 4096):
                buf[i] = 1

        @pytest.mark.memory_profile(limit_memory="50 MB")
        def test_memray_units():
            _touch()

        @pytest.mark.memory_profile(max_peak="50 MB")
        def test_memview_units():
            _touch()
    """)
    reports = _call_reports(_run(pytester, "-m", "memory_profile"))
    assert reports["test_memray_units"].passed, reports["test_memray_units"].longrepr
    assert reports["test_memview_units"].failed
    assert "exceeds max_peak=50 MB (50,000,000 bytes)" in str(reports["test_memview_units"].longrepr)


def test_the_limit_comes_from_a_baseline_with_its_tolerance(pytester: pytest.Pytester, tmp_path: Path) -> None:
    import json

    base = tmp_path / "pytest-baseline.json"
    pytester.makepyfile(
        test_b="""
        import os
        import pytest

        @pytest.mark.memory_profile(baseline=True)
        def test_grows():
            buf = bytearray(int(os.environ["MIB"]) * 2**20)
            for i in range(0, len(buf), 4096):
                buf[i] = 1
    """
    )
    os.environ["MIB"] = "40"
    try:
        rec = _run(pytester, "-m", "memory_profile", f"--memview-baseline={base}", "--memview-baseline-update")
        assert all(r.passed for r in _call_reports(rec).values())
        doc = json.loads(base.read_text())
        entry = doc["cases"]["pytest"]["test_b.py::test_grows"]
        assert 35 * 2**20 <= entry["peak_rss_bytes"] < 50 * 2**20 and doc["version"] == 2
        rec = _run(pytester, "-m", "memory_profile", f"--memview-baseline={base}")
        assert _call_reports(rec)["test_grows"].passed  # the same body: within +10%
        os.environ["MIB"] = "80"
        rec = _run(pytester, "-m", "memory_profile", f"--memview-baseline={base}")
        report = _call_reports(rec)["test_grows"]
        assert report.failed and "exceeds max_peak=baseline" in str(report.longrepr) and "+10%" in str(report.longrepr)
    finally:
        del os.environ["MIB"]


def test_the_summary_is_printed_on_the_xdist_controller(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is a test dependency (pyproject [test] extra)")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memory_profile(max_peak="200MB")
        def test_one():
            buf = bytearray(20 * 2**20)
            for i in range(0, len(buf), 4096):
                buf[i] = 1

        @pytest.mark.memory_profile(max_peak="200MB")
        def test_two():
            pass
    """)
    res = pytester.runpytest_subprocess(
        "-p", PLUGIN, "-p", "xdist", "-n", "2", "-m", "memory_profile", "-p", "no:cacheprovider"
    )
    res.assert_outcomes(passed=2)
    out = res.stdout.str()
    assert "memview: test body peaks" in out, out
    assert "::test_one" in out and "::test_two" in out
    one = next(line for line in out.splitlines() if line.endswith("::test_one"))
    assert "/ max 200MB  growth" in one  # footprint, then growth (the 20 MiB died with the body: about 0)
