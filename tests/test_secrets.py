"""Issue 17 item 5: secrets in URLs and in capture files never reach the database, --json, stderr or bundles.

Real ``memview watch`` against a real HTTP server on 127.0.0.1, real ``memview run`` with a real
py-spy dump of a child started with ``--token …`` / ``--password=…``, real export to a bundle;
every byte written is searched for the secrets.
"""

from __future__ import annotations

import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest
from support import read_json, workload
from test_hostile_input import JsonServer

SECRETS = {
    "private_token": "pt-7c1e0b9a55",
    "api-key": "ak-40d3f1e2aa",
    "pass": "pw-9f8e7d6c5b",
    "client-secret": "cs-31a2b3c4d5",
    "X-Amz-Signature": "sg-e5f6a7b8c9",
}
USER_PASSWORD = "up-0a1b2c3d4e"


def _everything_in(db: Path) -> str:
    """Every text and blob cell of every table, plus the files beside it."""
    out = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):  # noqa: S608 - names from sqlite_master
                out += [
                    c if isinstance(c, str) else c.decode("latin-1") if isinstance(c, bytes) else str(c) for c in row
                ]
    return "\n".join(out)


def _bundle_text(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())


def _leaks(text: str) -> list[str]:
    return [s for s in [*SECRETS.values(), USER_PASSWORD] if s in text]


def test_watch_masks_every_query_value_and_userinfo_everywhere(memview, db_path, tmp_path):
    server = JsonServer({"current_usage_mb": 64, "pressure": "normal"})
    try:
        host = server.url.split("//", 1)[1]
        query = "&".join(f"{k}={v}" for k, v in SECRETS.items()) + "&view=full"
        url = f"http://alice:{USER_PASSWORD}@{host}?{query}"
        out, bundle = tmp_path / "w.json", tmp_path / "w.memview.zip"
        res = memview("watch", url, "--interval", "0.1", "--duration", "1", "--keep-query", "view", "--json", str(out))
        assert res.returncode == 0, res.stderr
        assert server.requests >= 3
        summary = read_json(out)
        assert summary["samples"] >= 3
        exported = memview("export", str(summary["session_id"]), "-o", str(bundle))
        assert exported.returncode == 0, exported.stderr
    finally:
        server.close()
    assert not _leaks(out.read_text())
    assert not _leaks(res.stderr + res.stdout + exported.stderr + exported.stdout)
    assert not _leaks(_everything_in(db_path))
    assert not _leaks(_bundle_text(bundle))
    # what is shown: the names, the kept value, masks for the rest
    target = summary["target"]
    assert "alice" not in target and "view=full" in target
    assert all(f"{k}=***" in target for k in SECRETS), target


@pytest.mark.skipif(not shutil.which("py-spy"), reason="needs py-spy")
def test_a_py_spy_dump_in_a_bundle_carries_no_command_line_secrets(memview, db_path, tmp_path):
    """The dump's ``Process N: <command line>`` header names the child's arguments: redacted in the bundle."""
    token, password = "tk-5d4c3b2a19", "pw-11aa22bb33"
    out, bundle = tmp_path / "s.json", tmp_path / "s.memview.zip"
    res = memview(
        "run",
        "--threshold",
        "60MB",
        "--capture",
        "py-spy-dump",
        "--json",
        str(out),
        "--",
        *workload("grow.py", 3.5, 4, 200),
        "--token",
        token,
        f"--password={password}",
    )
    assert res.returncode == 0, res.stderr
    summary = read_json(out)
    (dump,) = summary["captures"]
    assert dump["status"] == "ok", summary["events"]
    on_disk = Path(dump["path"]).read_text()
    assert token in on_disk  # the local artefact is the tool's own output, kept as it is (mode 0700 folder)
    exported = memview("export", str(summary["session_id"]), "-o", str(bundle))
    assert exported.returncode == 0, exported.stderr
    text = _bundle_text(bundle)
    assert token not in text and password not in text
    with zipfile.ZipFile(bundle) as zf:
        dump_name = next(n for n in zf.namelist() if n.endswith(".txt"))
        header = zf.read(dump_name).decode().splitlines()[0]
        manifest = zf.read("manifest.json").decode()
    assert "--token <redacted>" in header and "--password=<redacted>" in header, header
    assert dump_name in manifest  # the manifest says the file was redacted
    # the bundle still imports (checksums match the redacted content)
    again = memview("import", str(bundle), "--db", str(tmp_path / "other.db"))
    assert again.returncode == 0, again.stderr
