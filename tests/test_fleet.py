"""Issue 20: memview speaks Prometheus in both directions, against real servers on 127.0.0.1.

A real ``prometheus`` scrapes two ``memview run --serve-metrics`` agents recording real processes
(and a real ``prometheus-pushgateway``); ``memview watch prometheus+URL --query`` reads them back.
Figures are checked against the kernel's own (``/proc/PID/status`` VmRSS of the recorded
process) and against the Prometheus API queried independently with urllib.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from fleet_servers import (
    PASSWORD,
    PY,
    USER,
    WORKLOADS,
    Agent,
    Prometheus,
    Pushgateway,
    free_port,
    have,
    http_get,
    poll,
    vm_rss,
    workload,
)
from support import kill_and_reap

from memview.collectors.promql import parse_value, series_name
from memview.collectors.promql_window import parse_time
from memview.store import Store

pytestmark = pytest.mark.skipif(
    not (have("prometheus") and have("prometheus-pushgateway")),
    reason="needs Debian's prometheus and prometheus-pushgateway (scripts/test-deps.sh)",
)

MiB = 2**20
QUERY = 'memview_process_rss_bytes{job="memview"}'


class Fleet:
    def __init__(self, tmp: Path) -> None:
        self.gateway = Pushgateway(tmp / "pushgateway")
        self.a = Agent(tmp / "a.db", 30)
        self.b = Agent(tmp / "b.db", 60)
        self.prom = Prometheus(
            tmp / "prometheus", [self.a.target, self.b.target], pushgateway=f"127.0.0.1:{self.gateway.port}"
        )
        self.prom.series_of(QUERY, 2)

    @property
    def url(self) -> str:
        return "prometheus+" + self.prom.base

    def stop(self) -> None:
        for part in (self.prom, self.a, self.b, self.gateway):
            part.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    yield f
    f.stop()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def instance_of(name: str) -> str:
    return name.split('instance="', 1)[1].split('"', 1)[0]


def one_session(db: Path) -> int:
    return Store(db).sessions()[0]["id"]


def close_to(a: int, b: int, share: float = 0.02) -> bool:
    return abs(a - b) <= share * b


# -- pure parts ------------------------------------------------------------------------------------
def test_api_values_are_strings_and_non_finite_ones_are_gaps():
    assert parse_value("123456") == 123456
    assert parse_value("1.5e9") == 1_500_000_000
    assert parse_value("NaN") is None and parse_value("+Inf") is None and parse_value("-Inf") is None
    assert parse_value(None) is None and parse_value("12MB") is None
    assert series_name({"__name__": "m", "job": "j", "instance": 'a"b'}) == 'prom:m{instance="a\\"b",job="j"}'
    assert series_name({}) == "prom:{}"
    assert parse_time("now-1h", now=10_000) == 6_400
    assert parse_time("2026-12-06T10:00:00Z") == 1796551200.0
    assert parse_time("1796551200.5") == 1796551200.5


# -- 2: the agents ---------------------------------------------------------------------------------
def test_agents_serve_openmetrics_that_match_the_kernel(fleet: Fleet):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    for agent, size in ((fleet.a, 30), (fleet.b, 60)):
        pid = agent.child_pid()

        def served_matches_kernel(agent: Agent = agent, pid: int = pid) -> dict[str, float] | None:
            ctype, text = agent.scrape()
            assert ctype.startswith("application/openmetrics-text"), ctype
            assert text.endswith("# EOF\n")
            samples = {
                (s.name, s.labels.get("pid", "")): s.value
                for fam in text_string_to_metric_families(text)
                for s in fam.samples
            }
            served = samples[("memview_process_rss_bytes", str(pid))]
            kernel = vm_rss(pid)
            return samples if close_to(int(served), kernel) else None

        samples = poll(served_matches_kernel, "served RSS equal to the kernel's VmRSS")
        assert samples[("memview_rss_bytes", "")] >= size * MiB
        assert samples[("memview_peak_rss_bytes", "")] >= samples[("memview_rss_bytes", "")]
        assert samples[("memview_samples_total", "")] >= 1
        assert ("memview_late_samples_total", "") in samples
        assert ("memview_sampler_max_lateness_seconds", "") in samples
        assert samples[("memview_captures_total", "")] == 0
        assert samples[("memview_session_info", "")] == 1


# -- 1: a fleet, live ----------------------------------------------------------------------------
def test_watch_query_returns_both_instances_series(fleet: Fleet, tmp_path: Path):
    db = tmp_path / "w.db"
    res = subprocess.run(
        [
            PY,
            "-m",
            "memview",
            "watch",
            fleet.url,
            "--query",
            QUERY,
            "--interval",
            "0.5",
            "--duration",
            "4",
            "--db",
            str(db),
            "--json",
            str(tmp_path / "s.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    store = Store(db)
    sid = one_session(db)
    names = [n for n in store.series_names(sid) if n != "rss"]
    assert sorted(instance_of(n) for n in names) == sorted([fleet.a.target, fleet.b.target])
    for agent in (fleet.a, fleet.b):
        name = next(n for n in names if instance_of(n) == agent.target)
        assert name.startswith("prom:memview_process_rss_bytes{") and f'pid="{agent.child_pid()}"' in name
        _times, values = store.load_series(sid, name)
        assert values and close_to(values[-1], vm_rss(agent.child_pid()))  # parsed from the API's strings
    # rss is the fleet's total: the sum of the series at each answer
    per = {n: dict(zip(*store.load_series(sid, n))) for n in names}
    for t, total in zip(*store.load_series(sid, "rss")):
        assert total == sum(p[t] for p in per.values() if t in p)
    summary = read_json(tmp_path / "s.json")
    assert summary["kind"] == "watch" and summary["samples"] >= 2
    assert summary["target"] == fleet.url


# -- 1: a past window, stored and comparable --------------------------------------------------------
def test_a_window_is_stored_like_a_session_and_two_windows_compare(fleet: Fleet, tmp_path: Path):
    poll(
        lambda: all(float(r["value"][1]) >= 15 for r in fleet.prom.series_of(f"count_over_time({QUERY}[1m])", 2)),
        "15 s of scraped data",
    )
    end = float(int(time.time()) - 1)
    windows = [(end - 8, end - 4), (end - 4, end)]
    ids = []
    env = {**os.environ, "MEMVIEW_DB": str(tmp_path / "w.db")}
    for n, (start, stop) in enumerate(windows):
        out = tmp_path / f"w{n}.json"
        res = subprocess.run(
            [
                PY,
                "-m",
                "memview",
                "watch",
                fleet.url,
                "--query",
                QUERY,
                "--start",
                f"{start:.0f}",
                "--end",
                f"{stop:.0f}",
                "--interval",
                "1",
                "--name",
                f"window {n}",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert res.returncode == 0, res.stderr
        ids.append(read_json(out)["session_id"])
    store = Store(tmp_path / "w.db")
    for sid, (start, stop) in zip(ids, windows):
        row = store.session(sid)
        assert row["kind"] == "watch" and row["status"] == "completed"
        assert row["started_at"] == start and row["wall_s"] == stop - start
        # the same window asked of the API directly: every point, parsed from its string
        params = urllib.parse.urlencode({"query": QUERY, "start": start, "end": stop, "step": 1})
        direct = json.loads(http_get(f"{fleet.prom.base}/api/v1/query_range?{params}"))["data"]["result"]
        assert len(direct) == 2
        for item in direct:
            times, values = store.load_series(sid, series_name(item["metric"]))
            assert times == [float(ts) - start for ts, _ in item["values"]]
            assert values == [int(v) for _, v in item["values"]]
            assert len(times) == 5
        assert row["samples"] == 5
    res = subprocess.run(
        [PY, "-m", "memview", "compare", str(ids[0]), str(ids[1]), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    peaks = [store.session(sid)["peak_rss_bytes"] for sid in ids]
    assert json.dumps(peaks[0]) in res.stdout and json.dumps(peaks[1]) in res.stdout, doc


# -- faults -----------------------------------------------------------------------------------------
def test_bad_promql_shows_the_servers_message_on_one_line(fleet: Fleet, memview):
    for extra in ([], ["--start", "now-10s"]):
        res = memview("watch", fleet.url, "--query", 'memview_rss_bytes{job="memview"', *extra)
        assert res.returncode == 2, res.stderr
        line = res.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        assert line.startswith("memview: Prometheus refused the query: bad_data:") and "parse error" in line, line
    res = memview("watch", fleet.url, "--query", "memview_rss_bytes[1m]")
    assert (
        res.returncode == 2
        and res.stderr
        == "memview: cannot record this query: it returns a matrix, not an "
        "instant vector (a range selector like [5m] needs a function such as max_over_time)\n"
    )
    res = memview("watch", fleet.url, "--query", "up", "--metric", "up")
    assert res.returncode == 2 and "with --query the server's series are recorded" in res.stderr
    res = memview("watch", fleet.url)
    assert res.returncode == 2 and res.stderr == "memview: a prometheus+ URL needs --query 'PROMQL'\n"


def test_server_down_is_gaps_live_and_one_line_for_a_window(memview, db_path):
    down = f"prometheus+http://127.0.0.1:{free_port()}"  # nothing listens there
    res = memview("watch", down, "--query", "up", "--interval", "0.5", "--duration", "2")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "no answer from the Prometheus server: connection refused" in res.stderr
    assert res.stderr.strip().endswith(
        "the server gave no reading (connection refused by 127.0.0.1:"
        f"{down.rsplit(':', 1)[1]} (is the service running?))"
    )
    store = Store(db_path)
    sid = one_session(db_path)
    assert [e["kind"] for e in store.events(sid)].count("gap") == 1
    res = memview("watch", down, "--query", "up", "--start", "now-1m")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "cannot read the window from" in res.stderr and "connection refused" in res.stderr


def test_a_huge_result_is_capped_with_a_warning(fleet: Fleet, memview, db_path):
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    reg = CollectorRegistry()
    g = Gauge("fleet_many_bytes", "many series", ["i"], registry=reg)
    for i in range(2000):
        g.labels(str(i)).set(i * 1000)
    push_to_gateway(fleet.gateway.base, job="many", registry=reg)
    poll(
        lambda: (r := fleet.prom.query("count(fleet_many_bytes)")) and r[0]["value"][1] == "2000",
        "2000 series in Prometheus",
    )
    res = memview(
        "watch", fleet.url, "--query", "fleet_many_bytes", "--max-series", "50", "--interval", "0.5", "--duration", "2"
    )
    assert res.returncode == 0, res.stderr
    assert "the query returned 2000 series; keeping 50 (--max-series)" in res.stderr
    store = Store(db_path)
    sid = one_session(db_path)
    assert len(store.series_names(sid)) == 51  # 50 label sets + rss
    capped = [e for e in store.events(sid) if e["kind"] == "series_capped"]
    assert len(capped) == 1 and capped[0]["data"] == {"returned": 2000, "kept": 50}
    res = memview("watch", fleet.url, "--query", "fleet_many_bytes", "--max-series", "10", "--start", "now-5s")
    assert res.returncode == 0, res.stderr
    sid = Store(db_path).sessions()[0]["id"]
    assert len(Store(db_path).series_names(sid)) == 11


def test_an_instance_that_disappears_is_a_gap_in_its_series(fleet: Fleet, tmp_path: Path):
    c = Agent(tmp_path / "c.db", 20)
    prom = Prometheus(tmp_path / "prometheus", [fleet.a.target, c.target])
    db = tmp_path / "w.db"
    watch = None
    try:
        prom.series_of("memview_rss_bytes", 2)
        watch = subprocess.Popen(
            [
                PY,
                "-m",
                "memview",
                "watch",
                "prometheus+" + prom.base,
                "--query",
                "memview_rss_bytes",
                "--interval",
                "0.5",
                "--serve-metrics",
                "127.0.0.1:0",
                "--db",
                str(db),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = watch.stderr.readline()
        served = line.split("serving metrics at ", 1)[1].split()[0]

        def names() -> list[str]:
            return [n for n in Store(db).series_names(one_session(db)) if n != "rss"] if db.exists() else []

        poll(lambda: len(names()) == 2, "both instances recorded")
        # the watching memview serves what it records, too
        poll(lambda: c.target in http_get(served).decode(), "the watch's own metrics")
        c_name = next(n for n in names() if instance_of(n) == c.target)
        a_name = next(n for n in names() if instance_of(n) == fleet.a.target)
        c.stop()
        store = Store(db)
        sid = one_session(db)

        def gone() -> dict | None:  # C's (a loaded machine may drop one scrape of A as well)
            return next(
                (e for e in store.events(sid) if e["kind"] == "series_gone" and e["data"]["series"] == c_name), None
            )

        event = poll(gone, "a series_gone event")
        poll(lambda: any(t > event["t_s"] for t in store.load_series(sid, a_name)[0]), "samples after the gap")
        watch.send_signal(signal.SIGTERM)
        _out, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        assert event["data"] == {"series": c_name} and c.target in event["message"]
        assert f"{c_name} stopped answering" in err
        c_times = store.load_series(sid, c_name)[0]
        a_times = store.load_series(sid, a_name)[0]
        assert c_times and max(c_times) < event["t_s"]  # a gap, not zeros
        assert sum(t > event["t_s"] for t in a_times) >= 1
        # the same seen in a window: C's series ends early, with an event; A's goes on to the end. The window
        # ends 3 s from now: C's stale marker is in already (the live watch saw it gone), so its absence spans
        # more than 1.5 steps at the end however soon after the marker this runs on a loaded machine
        end = time.time() + 3.0
        window = subprocess.run(
            [
                PY,
                "-m",
                "memview",
                "watch",
                "prometheus+" + prom.base,
                "--query",
                "memview_rss_bytes",
                "--start",
                f"{store.session(sid)['started_at']:.3f}",
                "--end",
                f"{end:.3f}",
                "--interval",
                "0.5",
                "--db",
                str(db),
                "--json",
                str(tmp_path / "window.json"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert window.returncode == 0, window.stderr
        wid = read_json(tmp_path / "window.json")["session_id"]
        (gone,) = [e for e in store.events(wid) if e["kind"] == "series_gone" and e["data"]["series"] == c_name]
        c_times = store.load_series(wid, c_name)[0]
        assert gone["data"]["series"] == c_name and gone["data"]["from_s"] == max(c_times)
        assert f"{c_name} stopped answering at" in window.stderr
        assert max(store.load_series(wid, a_name)[0]) > max(c_times)
    finally:
        if watch is not None:
            kill_and_reap(watch)
        c.stop()
        prom.stop()


def test_auth_headers_are_used_and_never_stored(fleet: Fleet, tmp_path: Path):
    import base64

    prom = Prometheus(tmp_path / "prometheus", [fleet.a.target], auth=True)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    db = tmp_path / "w.db"
    env = {**os.environ, "MEMVIEW_DB": str(db)}
    url = "prometheus+" + prom.base
    try:
        prom.series_of("memview_rss_bytes", 1)
        mv = [PY, "-m", "memview", "watch", url, "--query", "memview_rss_bytes", "--interval", "0.5"]
        res = subprocess.run([*mv, "--duration", "2"], capture_output=True, text=True, timeout=120, env=env)
        assert res.returncode == 1 and "HTTP 401" in res.stderr
        res = subprocess.run(
            [*mv, "--duration", "2", "-H", f"Authorization: Basic {token}"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert res.returncode == 0, res.stderr
        res = subprocess.run(
            [*mv, "--start", "now-3s", "-H", f"Authorization: Basic {token}"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert res.returncode == 0, res.stderr
        # the same with the credentials in the URL's userinfo
        res = subprocess.run(
            [
                PY,
                "-m",
                "memview",
                "watch",
                url.replace("//", f"//{USER}:{PASSWORD}@"),
                "--query",
                "memview_rss_bytes",
                "--interval",
                "0.5",
                "--duration",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert res.returncode == 0, res.stderr
    finally:
        prom.stop()
    store = Store(db)
    rows = store.sessions()
    assert len(rows) == 4 and all(store.series_names(r["id"]) for r in rows[:3])
    assert "Authorization: ***" in json.dumps(rows[1]["command"])
    Store(db).close()
    for path in tmp_path.glob("w.db*"):
        data = path.read_bytes()
        assert token.encode() not in data and PASSWORD.encode() not in data, path


# -- 3: profile results into the fleet's store --------------------------------------------------
def test_profile_push_is_queryable_back_from_prometheus(fleet: Fleet, memview, tmp_path: Path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, mib in {"small.txt": 20, "large.txt": 45}.items():
        (inputs / name).write_text(f"{mib}\n")
    manifest = tmp_path / "memory.toml"
    manifest.write_text(f"""
root = "{tmp_path}"
[defaults]
interval = "20ms"
[[case]]
name = "fleet_extract"
backend = "python"
command = [{json.dumps(PY)}, {json.dumps(str(WORKLOADS / "from_input.py"))}, "{{input}}"]
inputs = ["inputs/small.txt", "inputs/large.txt"]
[[case]]
name = "fleet_phases"
backend = "python"
command = [{json.dumps(PY)}, {json.dumps(str(WORKLOADS / "phases3.py"))}, "{tmp_path / "p.json"}", "20", "60", "40"]
""")
    res = memview("profile", "-m", str(manifest), "-o", str(tmp_path / "r.json"), "--pushgateway", fleet.gateway.base)
    assert res.returncode == 0, res.stderr
    assert f"pushed 3 record(s) to {fleet.gateway.base}" in res.stderr
    records = read_json(tmp_path / "r.json")["records"]
    for r in records:
        instance = r["input"] or "-"
        result = poll(
            lambda r=r, instance=instance: fleet.prom.query(
                f'memview_profile_peak_rss_bytes{{job="{r["case"]}",instance="{instance}"}}'
            ),
            f"{r['case']} pushed",
        )
        assert len(result) == 1 and int(float(result[0]["value"][1])) == r["peak_rss_bytes"]
        assert result[0]["metric"]["backend"] == "python"
        truth_file = inputs / f"{Path(r['input']).name}.truth.json" if r["input"] else None
        if truth_file:  # the kernel's own figure, written by the workload
            assert close_to(r["peak_rss_bytes"], read_json(truth_file)["hwm_bytes"], 0.01), r["peak_source"]
    phases = next(r for r in records if r["case"] == "fleet_phases")["phases"]
    assert [p["name"] for p in phases] == ["a", "b", "c"]
    result = poll(
        lambda: len(r := fleet.prom.query('memview_profile_phase_peak_rss_bytes{job="fleet_phases"}')) == 3 and r,
        "phase peaks pushed",
    )
    assert {m["metric"]["phase"]: int(float(m["value"][1])) for m in result} == {
        p["name"]: p["peak_rss_bytes"] for p in phases
    }
    # a Pushgateway that is down costs the push, never the results
    (tmp_path / "r.json").unlink()
    res = memview(
        "profile",
        "-m",
        str(manifest),
        "--only",
        "fleet_phases",
        "-o",
        str(tmp_path / "r.json"),
        "--pushgateway",
        f"http://127.0.0.1:{free_port()}",
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "memview: cannot push fleet_phases - to http://127.0.0.1:" in res.stderr
    assert read_json(tmp_path / "r.json")["records"][0]["ok"] is True
    res = memview("profile", "-m", str(manifest), "--pushgateway", "gateway:9091")
    assert (
        res.returncode == 2
        and res.stderr.strip() == "memview: --pushgateway wants an http(s):// URL (got 'gateway:9091')"
    )


# -- 2: attach and phases, bad addresses -----------------------------------------------------------
def test_attach_serves_the_process_and_run_serves_the_open_phase(tmp_path: Path):
    env = {**os.environ, "MEMVIEW_DB": str(tmp_path / "m.db")}
    target = subprocess.Popen(workload("hold.py", 25, 3600), stdout=subprocess.PIPE, text=True)
    assert target.stdout.readline().strip() == "ready"
    mv = subprocess.Popen(
        [
            PY,
            "-m",
            "memview",
            "attach",
            str(target.pid),
            "--interval",
            "0.2",
            "--quiet",
            "--serve-metrics",
            "127.0.0.1:0",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = mv.stderr.readline().split("serving metrics at ", 1)[1].split()[0]
        poll(
            lambda: (
                (text := http_get(url).decode())
                and 'kind="attach"' in text
                and any(
                    line.startswith(f'memview_process_rss_bytes{{name="python3",pid="{target.pid}"}}')
                    and close_to(int(float(line.split()[-1])), vm_rss(target.pid))
                    for line in text.splitlines()
                )
            ),
            "the attached process served at its kernel RSS",
        )
        mv.send_signal(signal.SIGTERM)
        assert mv.wait(60) == 0
    finally:
        kill_and_reap(target)
        kill_and_reap(mv)
    run = subprocess.Popen(
        [
            PY,
            "-m",
            "memview",
            "run",
            "--serve-metrics",
            "0",
            "--quiet",
            "--",
            *workload("fleet_phase.py", "load", 20, "--api-token", "tok-SECRET-1"),
        ],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = run.stderr.readline().split("serving metrics at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")  # a bare port binds loopback
        assert run.stdout.readline().strip() == "ready"
        poll(lambda: 'memview_phase_info{depth="0",phase="load"} 1' in http_get(url).decode(), "the open phase")
        served = http_get(url).decode()
        assert "tok-SECRET-1" not in served and "--api-token <redacted>" in served  # the command's credentials
        run.stdin.close()
        assert run.wait(60) == 0
    finally:
        kill_and_reap(run)


def test_serve_metrics_bad_address_is_one_line(memview):
    res = memview("run", "--serve-metrics", "localhost:http", "--", "true")
    assert (
        res.returncode == 2
        and res.stderr == "memview: --serve-metrics wants HOST:PORT or PORT (got 'localhost:http')\n"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = memview("run", "--serve-metrics", f"127.0.0.1:{port}", "--", "true")
        assert res.returncode == 2
        assert res.stderr == f"memview: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n"
    res = memview(
        "watch", "prometheus+http://127.0.0.1:1", "--query", "up", "--start", "now-1m", "--serve-metrics", "0"
    )
    assert res.returncode == 2 and "serves a live recording" in res.stderr


# -- 4: the Grafana dashboard ------------------------------------------------------------------------
def test_every_dashboard_query_returns_data_from_the_fleet(fleet: Fleet, memview, tmp_path: Path):
    """Each panel's PromQL, asked of the real Prometheus scraping real agents and the Pushgateway."""
    from memview.pushgateway import push_results

    dash = json.loads((Path(__file__).parents[1] / "resources" / "grafana" / "memview-fleet.json").read_text())
    assert dash["uid"] == "memview-fleet" and dash["__inputs"][0]["pluginId"] == "prometheus"
    # a real profile run's record, pushed: the CI panels need one
    (tmp_path / "in.txt").write_text("20\n")
    manifest = tmp_path / "memory.toml"
    manifest.write_text(f"""
root = "{tmp_path}"
[[case]]
name = "dash_case"
command = [{json.dumps(PY)}, {json.dumps(str(WORKLOADS / "phases3.py"))}, "{tmp_path / "p.json"}", "10", "30", "20"]
""")
    assert memview("profile", "-q", "-m", str(manifest), "-o", str(tmp_path / "r.json")).returncode == 0
    assert push_results(fleet.gateway.base, read_json(tmp_path / "r.json")) == 1
    poll(lambda: fleet.prom.query('memview_profile_phase_peak_rss_bytes{job="dash_case"}'), "the push scraped")
    # the agents' phase panel needs an open phase: an agent recording a program inside one
    env = {**os.environ, "MEMVIEW_DB": str(tmp_path / "phase.db")}
    exprs = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    phase_agent = subprocess.Popen(
        [PY, "-m", "memview", "run", "--serve-metrics", "0", "--quiet", "--", *workload("fleet_phase.py", "serve", 10)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = phase_agent.stderr.readline().split("serving metrics at ", 1)[1].split()[0]
    prom = Prometheus(
        tmp_path / "prometheus",
        [fleet.a.target, url.split("//")[1].split("/")[0]],
        pushgateway=f"127.0.0.1:{fleet.gateway.port}",
    )
    try:
        for title, expr in exprs:
            promql = expr.replace("$instance", ".*").replace("$__rate_interval", "1m")
            if "memview_series_value" in promql:
                continue  # only a watch session has other series (covered by the vanishing-instance test)
            poll(lambda promql=promql: prom.query(promql), f"panel {title!r}: {promql}")
    finally:
        prom.stop()
        phase_agent.stdin.close()
        phase_agent.wait(60)
        kill_and_reap(phase_agent)
