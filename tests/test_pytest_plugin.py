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


def test_body_outcomes_come_back_from_the_child(pytester: pytest.Pytester) -> None:
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
    rec = _run(pytester, "-m", "memory_profile")
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
            time.sleep(0.1)  # the workload holds its memory for a while, so the samples see it

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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "memview", "-m", "memory_profile", "-q",
                          "-p", "no:cacheprovider", str(pytester.path)], capture_output=True, text=True, env=env,
                         cwd=pytester.path, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "exceeds max_peak=10MB" in res.stdout, res.stdout
    assert "memview: test body peaks" in res.stdout
