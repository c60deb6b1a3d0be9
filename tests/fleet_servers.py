"""Real Prometheus, Pushgateway and memview agents on 127.0.0.1 for tests/test_fleet*.py.

Everything is a real process: Debian's ``prometheus`` and ``prometheus-pushgateway`` (installed by
scripts/test-deps.sh) with temp dirs and free ports, and ``memview run --serve-metrics 127.0.0.1:0``
agents recording real workloads. Nothing sleeps to synchronise: readiness and data are awaited by
polling the servers' own APIs against generous deadlines.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PY = sys.executable
WORKLOADS = Path(__file__).parent / "workloads"


def workload(name: str, *args: object) -> list[str]:
    """argv for a workload script (not imported from conftest: tests/ui has a conftest of the same name)."""
    return [PY, str(WORKLOADS / name), *map(str, args)]


#: basic-auth user for the Prometheus with a web config; the hash is bcrypt (cost 4) of PASSWORD
USER = "fleet"
PASSWORD = "fleet-secret-7f3a"
PASSWORD_HASH = "$2b$04$60ov952xPXB0C6M3ZMGmtOQ/nJm5LRSek6tR7Nzxd/zPcs5k0DxSi"
DEADLINE = 90.0  # seconds: generous, for a loaded 2-core machine


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(predicate: Any, what: str, deadline: float = DEADLINE, every: float = 0.2) -> Any:
    """Ask ``predicate`` until it returns something truthy (a server has no event to await)."""
    end = time.monotonic() + deadline
    last_exc: Exception | None = None
    while time.monotonic() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not up yet
            last_exc = exc
        time.sleep(every)
    raise AssertionError(f"{what}: not within {deadline:g} s (last error: {last_exc})")


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:  # it holds the response's socket: close it here, not in the GC
        # (a server still starting answers 503 while poll() retries: each kept error was an unclosed
        # socket, collected in whichever later test the garbage collector ran in)
        with exc:
            raise OSError(f"HTTP {exc.code} from {url}") from None


class Server:
    """A real server process on a free 127.0.0.1 port, started with ``argv_for(port)``."""

    def __init__(self, name: str, argv_for: Any, ready_path: str, log: Path, headers: dict[str, str] | None = None):
        self.name = name
        self.headers = headers or {}
        for _attempt in range(5):  # a free port can be taken between the probe and the bind: try another
            self.port = free_port()
            self.log = log.open("wb")
            self.proc = subprocess.Popen(argv_for(self.port), stdout=self.log, stderr=subprocess.STDOUT)
            try:
                poll(
                    lambda: self.proc.poll() is not None or http_get(self.base + ready_path, self.headers),
                    f"{name} ready",
                )
            except AssertionError:
                self.stop()
                raise
            if self.proc.poll() is None:
                return
            self.log.close()
        raise AssertionError(f"{name} would not start: {log.read_text()[-2000:]}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Prometheus(Server):
    """``prometheus`` scraping ``targets`` (and a pushgateway, honouring its labels) every second."""

    def __init__(self, tmp: Path, targets: list[str], pushgateway: str | None = None, auth: bool = False) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        jobs: list[dict[str, Any]] = [
            {
                "job_name": "memview",
                "scrape_interval": "1s",
                "scrape_timeout": "900ms",
                "static_configs": [{"targets": targets}],
            }
        ]
        if pushgateway:
            jobs.append(
                {
                    "job_name": "pushgateway",
                    "honor_labels": True,
                    "scrape_interval": "1s",
                    "scrape_timeout": "900ms",
                    "static_configs": [{"targets": [pushgateway]}],
                }
            )
        config = tmp / "prometheus.yml"
        config.write_text(
            json.dumps({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": jobs})
        )  # JSON is YAML
        extra: list[str] = []
        headers: dict[str, str] = {}
        if auth:
            web = tmp / "web.yml"
            web.write_text(json.dumps({"basic_auth_users": {USER: PASSWORD_HASH}}))
            extra = [f"--web.config.file={web}"]
            import base64

            headers = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
        super().__init__(
            "prometheus",
            lambda port: [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                *extra,
            ],
            "/-/ready",
            tmp / "prometheus.log",
            headers,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        return json.loads(http_get(url, self.headers))["data"]["result"]

    def series_of(self, promql: str, n: int) -> list[dict[str, Any]]:
        """Wait until ``promql`` returns at least ``n`` series; return them."""
        return poll(lambda: (r := self.query(promql)) and len(r) >= n and r, f"{n} series of {promql}")


class Pushgateway(Server):
    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        super().__init__(
            "pushgateway",
            lambda port: [
                "prometheus-pushgateway",
                f"--web.listen-address=127.0.0.1:{port}",
                # Debian's default is /var/lib/prometheus/pushgateway.data: shared between runs
                f"--persistence.file={tmp / 'pushgateway.data'}",
            ],
            "/-/ready",
            tmp / "pushgateway.log",
        )


class Agent:
    """``memview run --serve-metrics 127.0.0.1:0 -- hold.py SIZE``: a real process recorded and served."""

    def __init__(self, db: Path, size_mib: int, interval: str = "0.2") -> None:
        env = {**os.environ, "MEMVIEW_DB": str(db)}
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "memview",
                "run",
                "--serve-metrics",
                "127.0.0.1:0",
                "--interval",
                interval,
                "--quiet",
                "--",
                *workload("hold.py", size_mib, 3600),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None and self.proc.stdout is not None
        line = self.proc.stderr.readline()  # the first thing memview says: where it serves
        assert "serving metrics at " in line, line
        self.url = line.split("serving metrics at ", 1)[1].split()[0]
        self.target = self.url.split("//", 1)[1].split("/", 1)[0]
        assert self.proc.stdout.readline().strip() == "ready"

    def child_pid(self) -> int:
        import psutil

        def holds(kid: psutil.Process) -> bool:
            try:
                return any(arg.endswith("hold.py") for arg in kid.cmdline())
            except psutil.Error:  # a short-lived helper memview ran (node --version for the metadata): gone
                return False

        # the workload only: memview may have a metadata helper running beside it for a moment
        kids = [k for k in psutil.Process(self.proc.pid).children() if holds(k)]
        assert len(kids) == 1, kids
        return kids[0].pid

    def scrape(self) -> tuple[str, str]:
        with urllib.request.urlopen(self.url, timeout=10) as resp:
            return resp.headers["Content-Type"], resp.read().decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def vm_rss(pid: int) -> int:
    """The kernel's own figure for a process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")
