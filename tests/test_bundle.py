"""Trace bundles on real recorded sessions: round trip, Chrome trace, secrets, and hostile zips.

One real session is recorded per module (a child through ``memview run``), given phases, an
event and a capture artefact through the store's own writer, and exported with the real CLI.
The hostile bundles are rebuilt from that good one so each breaks exactly one rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import warnings
import zipfile
from pathlib import Path

import pytest
from support import PY, wait_for, workload

from memview.bundle import BundleError, Limits, import_bundle
from memview.model import Capture, Phase
from memview.recorder import capture_row, phase_row
from memview.store import Store, StoreWriter

SECRET = "sekrit-7f3a9c"


def cli(db: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEMVIEW_DB": str(db)}
    return subprocess.run([PY, "-m", "memview", *args], capture_output=True, text=True, timeout=timeout, env=env)


def add_rows(store: Store, sid: int) -> Path:
    """Phases (nested, a repeated name, one unfinished), an event and a capture with real artefact files."""
    writer = StoreWriter(store.path, sid)
    writer.start()
    phases = [
        Phase("load", 0, 0.05, 0.30, 10_000_000, 12_000_000, 70_000_000, "kernel:VmHWM", ["leak"], {"rows": 3}),
        Phase("parse", 1, 0.10, 0.20, 11_000_000, 11_500_000, 65_000_000),
        Phase("parse", 1, 0.21, 0.29, 11_500_000, 12_000_000, 68_000_000),
        Phase("render", 0, 0.35, None, 12_000_000),
    ]
    for seq, ph in enumerate(phases):
        writer.insert("phases", phase_row(ph, seq))
    writer.insert(
        "events",
        {
            "t_s": 0.25,
            "kind": "trigger",
            "level": "warning",
            "message": "rss above 50 MiB",
            "data": {"rule": "rss>50MiB"},
        },
    )
    folder = store.artefact_dir(sid)
    svg = folder / "pyspy-1.svg"
    svg.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'>" + os.urandom(50_000).hex().encode() + b"</svg>")
    (folder / "heap").mkdir()
    (folder / "heap" / "node.heapsnapshot").write_bytes(json.dumps({"nodes": list(range(5000))}).encode())
    cap = Capture("py-spy", 4242, "rss>50MiB", 0.25, 0.40, str(svg), svg.stat().st_size, 0, "done", "", {"rate": 100})
    writer.insert("captures", capture_row(cap, 0))
    writer.insert(
        "captures",
        capture_row(Capture("node-heap", 4243, "manual", 0.32, 0.33, str(folder / "heap"), None, 0, "done"), 1),
    )
    assert writer.close()
    return folder


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real session (spikes workload) in database A, with phases/events/captures, exported to a bundle."""
    base = tmp_path_factory.mktemp("bundle")
    db = base / "a.db"
    res = cli(db, "run", "-q", "--interval", "0.01", "--", *workload("spikes.py", base / "truth.json", 60, 2))
    assert res.returncode == 0, res.stderr
    store = Store(db)
    (session,) = store.sessions()
    sid = session["id"]
    folder = add_rows(store, sid)
    bundle = base / "run.memview.zip"
    res = cli(db, "export", str(sid), "-o", str(bundle))
    assert res.returncode == 0, res.stderr
    assert f"exported session {sid} to {bundle}" in res.stderr
    return {"db": db, "sid": sid, "bundle": bundle, "folder": folder, "store": store}


def entries(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_bundle_layout_and_manifest_checksums(recorded):
    files = entries(recorded["bundle"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["format"] == "memview-bundle" and manifest["version"] == 1
    assert manifest["memview"] and manifest["session"]["uid"]
    assert manifest["summary"]["peak_rss_bytes"] == recorded["store"].session(recorded["sid"])["peak_rss_bytes"]
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    assert {
        "samples.csv",
        "trace.json",
        "phases.json",
        "events.json",
        "captures.json",
        "processes.json",
        "series.json",
        "artefacts/pyspy-1.svg",
        "artefacts/heap/node.heapsnapshot",
    } <= set(listed)
    for name, data in files.items():
        if name != "manifest.json":
            assert listed[name]["size"] == len(data)
            assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
    # the samples CSV holds every stored sample of every series, exactly
    store, sid = recorded["store"], recorded["sid"]
    rows = files["samples.csv"].decode().splitlines()
    assert rows[0] == "t_s,series,value"
    by_series: dict[str, list[tuple[float, int]]] = {}
    for line in rows[1:]:
        t, name, v = line.split(",")
        by_series.setdefault(name, []).append((float(t), int(v)))
    assert set(by_series) == set(store.series_names(sid)) and "rss" in by_series
    assert any(name.startswith("pid:") for name in by_series)
    for name, pairs in by_series.items():
        times, values = store.load_series(sid, name)
        assert [v for _, v in pairs] == values
        assert max(abs(a - b) for (a, _), b in zip(pairs, times)) < 1e-6
    captures = json.loads(files["captures.json"])
    assert [c["path"] for c in captures] == ["artefacts/pyspy-1.svg", "artefacts/heap"]


def _show(db: Path, sid: int) -> dict:
    res = cli(db, "show", str(sid), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_round_trip_into_a_fresh_database_equals_the_original(recorded, tmp_path):
    db_b = tmp_path / "b.db"
    res = cli(db_b, "import", str(recorded["bundle"]))
    assert res.returncode == 0, res.stderr
    new_id = int(res.stdout.strip())
    original, copy = _show(recorded["db"], recorded["sid"]), _show(db_b, new_id)
    folder_b = Store(db_b).artefact_dir(new_id)
    # artefact paths point into each database's own artefact folder, with the same relative names
    for c_a, c_b in zip(original["captures"], copy["captures"]):
        assert Path(c_a.pop("path")).relative_to(recorded["folder"]) == Path(c_b.pop("path")).relative_to(folder_b)
    assert original.pop("session_id") == recorded["sid"] and copy.pop("session_id") == new_id
    assert copy == original
    assert len(original["phases"]) == 4 and original["events"] and len(original["captures"]) == 2
    # the artefacts themselves, byte for byte
    for rel in ("pyspy-1.svg", "heap/node.heapsnapshot"):
        assert (folder_b / rel).read_bytes() == (recorded["folder"] / rel).read_bytes()
    # every series, sample for sample
    a, b = recorded["store"], Store(db_b)
    assert b.series_names(new_id) == a.series_names(recorded["sid"])
    assert b.series_units(new_id) == a.series_units(recorded["sid"])
    for name in a.series_names(recorded["sid"]):
        assert b.load_series(new_id, name) == a.load_series(recorded["sid"], name)
    # importing again does not duplicate: the existing id is reported
    before = b.conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    again = cli(db_b, "import", str(recorded["bundle"]))
    assert again.returncode == 0 and int(again.stdout.strip()) == new_id
    assert "already in the database" in again.stderr
    assert b.conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == before == 1


def test_trace_json_is_valid_chrome_trace(recorded):
    trace = json.loads(entries(recorded["bundle"])["trace.json"])
    events = trace["traceEvents"]
    assert isinstance(events, list) and trace["displayTimeUnit"] == "ms"
    kinds = {e["ph"] for e in events}
    assert kinds == {"M", "C", "X", "i"}
    timed = [e for e in events if e["ph"] != "M"]
    ts = [e["ts"] for e in timed]
    assert all(isinstance(t, int) and t >= 0 for t in ts)
    assert ts == sorted(ts), "timestamps must be monotonic"
    for e in events:
        assert isinstance(e["name"], str) and isinstance(e["pid"], int) and isinstance(e["tid"], int)
    counters = [e for e in events if e["ph"] == "C"]
    assert all(all(isinstance(v, (int, float)) for v in e["args"].values()) for e in counters)
    store, sid = recorded["store"], recorded["sid"]
    times, values = store.load_series(sid)
    rss = [e for e in counters if e["name"] == "RSS (tree)"]
    assert len(rss) == len(times)
    assert abs(max(e["args"]["MiB"] for e in rss) - max(values) / 2**20) < 0.001
    assert {e["name"] for e in counters} > {"RSS (tree)"}  # per-process tracks too
    slices = [e for e in events if e["ph"] == "X"]
    assert [e["name"] for e in slices] == ["load", "parse", "parse", "render"]
    load = slices[0]
    assert load["ts"] == 50_000 and load["dur"] == 250_000 and load["args"]["peak_rss_bytes"] == 70_000_000
    render = slices[-1]
    assert render["args"]["unfinished"] is True
    assert render["ts"] + render["dur"] == round(store.session(sid)["wall_s"] * 1e6)
    instants = [e for e in events if e["ph"] == "i"]
    assert all(e["s"] in ("g", "p", "t") for e in instants)
    names = [e["name"] for e in instants]
    assert "capture: py-spy" in names and "trigger: rss above 50 MiB" in names


def test_secrets_never_leave(tmp_path):
    db = tmp_path / "s.db"
    res = cli(
        db,
        "run",
        "-q",
        "--",
        PY,
        "-c",
        "import time; x = bytearray(10_000_000); time.sleep(0.2)",
        f"--password={SECRET}",
        "--api-token",
        SECRET,
        f"https://user:{SECRET}@example.invalid/x?key={SECRET}",
    )
    assert res.returncode == 0, res.stderr
    store = Store(db)
    (s,) = store.sessions()
    meta = {
        **s["meta"],
        "env": {"GITHUB_TOKEN": SECRET, "AWS_SECRET_ACCESS_KEY": SECRET, "LANG": "C.UTF-8"},
        "headers": {"Authorization": f"Bearer {SECRET}", "Cookie": f"sid={SECRET}", "Accept": "application/json"},
    }
    store.conn.execute("UPDATE sessions SET meta = ? WHERE id = ?", (json.dumps(meta), s["id"]))
    bundle = tmp_path / "s.memview.zip"
    res = cli(db, "export", str(s["id"]), "-o", str(bundle))
    assert res.returncode == 0, res.stderr
    assert "left out" in res.stderr
    for name, data in entries(bundle).items():
        assert SECRET.encode() not in data, name
    manifest = json.loads(entries(bundle)["manifest.json"])
    assert {
        "meta.env.GITHUB_TOKEN",
        "meta.env.AWS_SECRET_ACCESS_KEY",
        "meta.headers.Authorization",
        "meta.headers.Cookie",
    } <= set(manifest["redacted"])
    kept = manifest["session"]["meta"]
    assert kept["env"] == {"LANG": "C.UTF-8"} and kept["headers"] == {"Accept": "application/json"}
    assert kept["python"] == s["meta"]["python"]  # the rest of the metadata travels
    command = manifest["session"]["command"]
    assert (
        command[-4:]
        == [
            "--password=<redacted>",
            "--api-token",
            "<redacted>",
            "https://user:<redacted>@example.invalid/x?key=%3Credacted%3E",
        ]
        or command[-1] == "https://user:<redacted>@example.invalid/x?key=<redacted>"
    )
    # the imported copy is usable and still secret-free
    db_b = tmp_path / "b.db"
    res = cli(db_b, "import", str(bundle))
    assert res.returncode == 0, res.stderr
    shown = cli(db_b, "show", res.stdout.strip(), "--json").stdout
    assert SECRET not in shown and "--password=<redacted>" in shown


def test_export_refuses_what_it_should(recorded, tmp_path):
    db, sid = recorded["db"], recorded["sid"]
    res = cli(db, "export", str(sid), "-o", str(recorded["bundle"]))
    assert res.returncode == 1 and "exists" in res.stderr and "Traceback" not in res.stderr
    res = cli(db, "export", "999", "-o", str(tmp_path / "x.zip"))
    assert res.returncode == 1 and res.stderr.strip() == f"memview: no session 999 in {db}"
    running = recorded["store"].create_session(kind="run", target="x", started_at=0.0)
    try:
        res = cli(db, "export", str(running), "-o", str(tmp_path / "x.zip"))
        assert res.returncode == 1 and "still recording" in res.stderr
    finally:
        recorded["store"].delete_session(running)
    assert not (tmp_path / "x.zip").exists()
    assert not list(tmp_path.glob(".*tmp"))


# ---- hostile bundles ---------------------------------------------------------------------------


def rebuild(
    good: Path,
    dst: Path,
    drop: tuple[str, ...] = (),
    replace: dict[str, bytes] | None = None,
    add: list[tuple[zipfile.ZipInfo | str, bytes]] | None = None,
    relist: bool = True,
    manifest: dict | bytes | None = None,
) -> None:
    """A copy of ``good`` with entries dropped, replaced or added; ``relist`` fixes the manifest's
    file list (sizes, checksums) so that only the intended fault remains."""
    files = entries(good)
    doc = json.loads(files.pop("manifest.json"))
    for name in drop:
        files.pop(name)
    files.update(replace or {})
    extra = add or []
    if relist:
        listed = {f["name"]: f for f in doc["files"] if f["name"] not in drop}
        for name, data in [
            *((n, files[n]) for n in (replace or {})),
            *((i if isinstance(i, str) else i.filename, d) for i, d in extra),
        ]:
            listed[name] = {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        doc["files"] = list(listed.values())
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest if manifest is not None else doc).encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the faults
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
            for info, data in extra:
                zf.writestr(info, data)
            zf.writestr("manifest.json", body)


def manifest_of(good: Path) -> dict:
    return json.loads(entries(good)["manifest.json"])


def db_state(db: Path) -> tuple[str, list[tuple[str, int]]]:
    """A digest of every row, plus the files beside the database (artefacts, stray temp folders)."""
    conn = sqlite3.connect(db)
    try:
        dump = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()
    files = sorted(
        (str(p.relative_to(db.parent)), p.stat().st_size if p.is_file() else -1)
        for p in db.parent.rglob("*")
        if not p.name.endswith(("-wal", "-shm"))
    )
    return dump, files


@pytest.fixture
def target_db(recorded, tmp_path) -> Path:
    """A database that already holds one imported session, so "unchanged" means something."""
    folder = tmp_path / "target"
    folder.mkdir()
    db = folder / "t.db"
    store = Store(db)
    assert import_bundle(store, recorded["bundle"]).created
    store.close()
    return db


def _symlink_info() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("artefacts/passwd")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _fifo_info() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("artefacts/pipe")
    info.create_system = 3
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    return info


def _csv_with_one_byte_changed(good: Path) -> bytes:
    data = bytearray(entries(good)["samples.csv"])
    i = data.rindex(b"\n", 0, len(data) - 1) + 1  # first digit of the last row's time
    data[i] = ord("9") if data[i] != ord("9") else ord("8")
    return bytes(data)


HOSTILE = {
    # name: (how to build it from the good bundle, expected words in the error)
    "traversal": (lambda g, d: rebuild(g, d, add=[("../evil.txt", b"pwned")]), "escapes the bundle folder"),
    "nested traversal": (
        lambda g, d: rebuild(g, d, add=[("artefacts/../../evil.txt", b"pwned")]),
        "escapes the bundle folder",
    ),
    "absolute path": (lambda g, d: rebuild(g, d, add=[("/tmp/memview-evil.txt", b"pwned")]), "absolute path"),
    "drive letter": (lambda g, d: rebuild(g, d, add=[("C:/evil.txt", b"pwned")]), "drive letter"),
    "backslash": (lambda g, d: rebuild(g, d, add=[("artefacts\\..\\..\\evil.txt", b"pwned")]), "backslash"),
    "symlink": (lambda g, d: rebuild(g, d, add=[(_symlink_info(), b"/etc/passwd")]), "symbolic link"),
    "fifo": (lambda g, d: rebuild(g, d, add=[(_fifo_info(), b"")]), "not a regular file"),
    "bad checksum": (
        lambda g, d: rebuild(g, d, replace={"samples.csv": _csv_with_one_byte_changed(g)}, relist=False),
        "checksum mismatch for 'samples.csv'",
    ),
    "wrong size": (
        lambda g, d: rebuild(g, d, replace={"events.json": b"[]\n"}, relist=False),
        "size mismatch for 'events.json'",
    ),
    "missing file": (
        lambda g, d: rebuild(g, d, drop=("phases.json",), relist=False),
        "'phases.json' is listed in the manifest but missing",
    ),
    "unlisted file": (
        lambda g, d: rebuild(g, d, add=[("artefacts/extra.bin", b"x")], relist=False),
        "not listed in the manifest",
    ),
    "duplicate entry": (
        lambda g, d: rebuild(g, d, add=[("samples.csv", b"t_s,series,value\n")], relist=False),
        "appears twice",
    ),
    "unknown version": (
        lambda g, d: rebuild(g, d, manifest={**manifest_of(g), "version": 2}),
        "bundle format version 2 is newer than this memview reads (1)",
    ),
    "not a bundle manifest": (
        lambda g, d: rebuild(g, d, manifest={**manifest_of(g), "format": "other"}),
        "not a memview bundle",
    ),
    "manifest not json": (
        lambda g, d: rebuild(g, d, manifest=b'{"format": "memview-bundle", '),
        "manifest.json is not valid JSON",
    ),
    "manifest wrong shape": (
        lambda g, d: rebuild(g, d, manifest={**manifest_of(g), "session": [1, 2]}),
        "session: expected an object",
    ),
    "manifest bad field": (
        lambda g, d: rebuild(
            g, d, manifest={**manifest_of(g), "session": {**manifest_of(g)["session"], "peak_rss_bytes": "lots"}}
        ),
        "session.peak_rss_bytes: expected int or null",
    ),
    "file inside a file": (
        lambda g, d: rebuild(g, d, add=[("artefacts/pyspy-1.svg/x", b"x")]),
        "lies inside 'artefacts/pyspy-1.svg', which is a file",
    ),
    "bad sample": (
        lambda g, d: rebuild(g, d, replace={"samples.csv": b"t_s,series,value\n0.1,rss,lots\n"}),
        "samples.csv line 2: not a number",
    ),
    "capture path escapes": (
        lambda g, d: rebuild(
            g,
            d,
            replace={
                "captures.json": json.dumps(
                    [{"seq": 0, "tool": "py-spy", "path": "artefacts/../../../etc/passwd"}]
                ).encode()
            },
        ),
        "is not a file in the bundle",
    ),
    # issue 17 item 13: each of these was a traceback (RecursionError, Infinity printed back, ValueError)
    "deep json": (
        lambda g, d: rebuild(
            g,
            d,
            replace={
                "phases.json": b'[{"seq": 0, "name": "x", "start_s": 0, '
                b'"data": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}]"
            },
        ),
        "phases.json[0] is nested too deeply",
    ),
    "deep manifest": (
        lambda g, d: rebuild(
            g,
            d,
            manifest=json.dumps({**manifest_of(g), "summary": {}})
            .encode()
            .replace(b'"summary": {}', b'"summary": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ),
        "manifest.json is nested too deeply",
    ),
    "1e999": (
        lambda g, d: rebuild(g, d, replace={"events.json": b'[{"t_s": 0.5, "kind": "x", "data": {"v": 1e999}}]'}),
        "events.json is not valid JSON (number 1e999 is out of range",
    ),
    "4000 digits": (
        lambda g, d: rebuild(
            g, d, replace={"events.json": b'[{"t_s": 0.5, "kind": "x", "data": {"v": ' + b"7" * 4000 + b"}}]"}
        ),
        "is out of range",
    ),
    "huge sample": (
        lambda g, d: rebuild(g, d, replace={"samples.csv": b"t_s,series,value\n0.1,rss," + b"9" * 4000 + b"\n"}),
        "samples.csv line 2: value out of range",
    ),
    "not a zip": (lambda g, d: d.write_bytes(b"hello, this is not a zip file\n" * 100), "not a zip file, or truncated"),
    "truncated": (lambda g, d: d.write_bytes(g.read_bytes()[: g.stat().st_size // 2]), "not a zip file, or truncated"),
    "truncated tail": (lambda g, d: d.write_bytes(g.read_bytes()[:-10]), "not a zip file, or truncated"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_bundle_is_refused_and_changes_nothing(case, recorded, target_db, tmp_path):
    build, expected = HOSTILE[case]
    hostile = tmp_path / "hostile.memview.zip"
    build(recorded["bundle"], hostile)
    before = db_state(target_db)
    res = cli(target_db, "import", str(hostile))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith("memview: hostile.memview.zip: "), res.stderr
    assert expected in res.stderr, res.stderr
    assert res.stdout == ""
    assert db_state(target_db) == before
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/memview-evil.txt").exists()


@pytest.fixture(scope="module")
def gigabyte_bomb(tmp_path_factory: pytest.TempPathFactory, recorded) -> Path:
    """1 GiB of zeros in one entry, deflated by zipfile from a stream: about 4.5 MB on disk."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.memview.zip"
    rebuild(recorded["bundle"], path)
    doc = manifest_of(path)
    doc["files"].append({"name": "artefacts/zeros.bin", "size": 2**30, "sha256": "0" * 64})
    files = entries(path)
    files["manifest.json"] = json.dumps(doc).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zero = bytes(2**20)
        with zf.open("artefacts/zeros.bin", "w", force_zip64=True) as f:
            for _ in range(1024):
                f.write(zero)
    assert path.stat().st_size < 8 * 2**20
    return path


def test_gigabyte_bomb_is_refused_before_unpacking(gigabyte_bomb, target_db):
    before = db_state(target_db)
    res = cli(target_db, "import", str(gigabyte_bomb), timeout=30)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip() == (
        "memview: bomb.memview.zip: entry 'artefacts/zeros.bin' would unpack to "
        "1.0 GiB, over the 512.0 MiB limit for one file"
    )
    assert db_state(target_db) == before


def test_bomb_under_the_size_cap_is_caught_by_its_ratio(recorded, target_db, tmp_path):
    zeros = bytes(64 * 2**20)
    path = tmp_path / "ratio.memview.zip"
    rebuild(recorded["bundle"], path, add=[("artefacts/zeros.bin", zeros)])
    before = db_state(target_db)
    with pytest.raises(BundleError, match=r"artefacts/zeros.bin' expands \d+:1, a likely zip bomb"):
        import_bundle(Store(target_db), path)
    assert db_state(target_db) == before


def test_a_lying_size_header_does_not_let_more_out(recorded, target_db, tmp_path):
    """The zip claims 1000 bytes for an entry that inflates to 32 MiB: the stream stops at the claim."""
    path = tmp_path / "liar.memview.zip"
    zeros = bytes(32 * 2**20)
    doc = manifest_of(recorded["bundle"])
    doc["files"].append(
        {"name": "artefacts/zeros.bin", "size": 1000, "sha256": hashlib.sha256(zeros[:1000]).hexdigest()}
    )
    rebuild(recorded["bundle"], path, add=[("artefacts/zeros.bin", zeros)], manifest=doc)
    raw = bytearray(path.read_bytes())
    patched = 0
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        start = 0
        while (i := raw.find(sig, start)) >= 0:
            start = i + 4
            name_len_at = 26 if sig == b"PK\x03\x04" else 28
            name_at = 30 if sig == b"PK\x03\x04" else 46
            n = int.from_bytes(raw[i + name_len_at : i + name_len_at + 2], "little")
            if bytes(raw[i + name_at : i + name_at + n]) == b"artefacts/zeros.bin":
                raw[i + size_at : i + size_at + 4] = (1000).to_bytes(4, "little")
                patched += 1
    assert patched == 2
    path.write_bytes(bytes(raw))
    before = db_state(target_db)
    with pytest.raises(BundleError, match="damaged entry 'artefacts/zeros.bin'|checksum mismatch"):
        import_bundle(Store(target_db), path)
    assert db_state(target_db) == before


def test_total_size_cap(recorded, target_db):
    before = db_state(target_db)
    with pytest.raises(BundleError, match=r"^run.memview.zip: the bundle would unpack to .* over the 64.0 KiB limit"):
        import_bundle(Store(target_db), recorded["bundle"], Limits(max_total_bytes=64 * 1024))
    assert db_state(target_db) == before


def test_failure_inside_the_transaction_rolls_everything_back(recorded, tmp_path):
    """Rows that pass every check but break a unique index (one process listed twice) are only
    caught by the database, mid-transaction: nothing of the bundle stays, not even a folder."""
    processes = json.loads(entries(recorded["bundle"])["processes.json"])
    path = tmp_path / "dup.memview.zip"
    rebuild(recorded["bundle"], path, replace={"processes.json": json.dumps(processes + [processes[0]]).encode()})
    db = tmp_path / "t" / "t.db"
    db.parent.mkdir()
    store = Store(db)
    before = db_state(db)
    with pytest.raises(BundleError, match="^dup.memview.zip: the bundle's rows contradict each other"):
        import_bundle(store, path)
    assert db_state(db) == before
    assert store.conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 0


def test_import_of_a_missing_file_is_one_line(tmp_path):
    res = cli(tmp_path / "x.db", "import", str(tmp_path / "nope.memview.zip"))
    assert res.returncode == 1 and res.stderr.strip() == "memview: nope.memview.zip: no such file"


def test_chrome_trace_thinning_keeps_spikes():
    from memview.chrome_trace import thin

    times = [i / 1000 for i in range(100_000)]
    values = [1000] * 100_000
    values[54_321] = 9999
    values[77_777] = 1
    t, v = thin(times, values, 2000)
    assert len(v) <= 2000 and max(v) == 9999 and min(v) == 1
    assert t == sorted(t)


# -- issue 17 item 7: bounded memory on import, and a killed import leaves nothing behind ----------------


def _many_processes_bundle(good: Path, dst: Path, rows: int) -> int:
    """``good`` with a processes.json of ``rows`` small valid objects (within every size and ratio limit)."""
    import random

    rnd = random.Random(7)
    body = b"[" + b",".join(b'{"pid":%d}' % rnd.randrange(1, 4_000_000) for _ in range(rows)) + b"]"
    rebuild(good, dst, replace={"processes.json": body})
    return len(body)


def _import_limited(db: Path, bundle: Path, address_space: int) -> tuple[subprocess.CompletedProcess[str], int]:
    """``memview import`` with its address space capped (so a memory bomb fails instead of eating the
    machine); returns the result and the importer's own peak RSS (``ru_maxrss``) in bytes."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    env = {**os.environ, "MEMVIEW_DB": str(db)}
    out, err = bundle.with_name(bundle.name + ".out"), bundle.with_name(bundle.name + ".err")
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(
            [PY, "-m", "memview", "import", str(bundle)], stdout=o, stderr=e, env=env, preexec_fn=limit
        )
    _, status, usage = os.wait4(proc.pid, 0)  # the importer's own ru_maxrss
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (
        subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text()),
        usage.ru_maxrss * 1024,
    )


def test_a_data_file_of_millions_of_small_records_is_refused_in_bounded_memory(recorded, target_db, tmp_path):
    """Before: json.loads of the whole file: 114 MiB of small objects took 4.6 GB. Now records stream
    one at a time and their count is capped; memview's peak stays near its own footprint."""
    bomb = tmp_path / "many.memview.zip"
    size = _many_processes_bundle(recorded["bundle"], bomb, 8_000_000)
    assert size > 100 * 2**20 and bomb.stat().st_size < 64 * 2**20
    before = db_state(target_db)
    res, peak = _import_limited(target_db, bomb, 1536 * 2**20)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr[-2000:]
    assert "processes.json holds more than 500000 records" in res.stderr
    assert db_state(target_db) == before
    print(
        f"FIGURE import of a {size / 2**20:.0f} MiB processes.json ({bomb.stat().st_size / 2**20:.1f} MiB "
        f"bundle): refused, importer peak RSS {peak / 2**20:.0f} MiB"
    )
    assert peak < 400 * 2**20


def test_many_records_under_the_cap_import_in_bounded_memory(recorded, tmp_path):
    """400k processes (60% more than any real session) import, and memory does not follow the record count."""
    bundle = tmp_path / "many.memview.zip"
    size = _many_processes_bundle(recorded["bundle"], bundle, 400_000)
    db = tmp_path / "n.db"
    res, peak = _import_limited(db, bundle, 1536 * 2**20)
    assert res.returncode == 0, res.stderr[-2000:]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM processes").fetchone()[0] == 400_000
    print(
        f"FIGURE import of {size / 2**20:.1f} MiB processes.json (400k records): importer peak RSS "
        f"{peak / 2**20:.0f} MiB"
    )
    assert peak < 250 * 2**20


def test_a_killed_import_leaves_no_temporary_folder_after_the_next_start(recorded, tmp_path):
    import signal

    bundle = tmp_path / "big.memview.zip"
    _many_processes_bundle(recorded["bundle"], bundle, 400_000)
    folder = tmp_path / "k"
    folder.mkdir()
    db = folder / "k.db"
    Store(db).close()
    env = {**os.environ, "MEMVIEW_DB": str(db)}
    proc = subprocess.Popen(
        [PY, "-m", "memview", "import", str(bundle)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: list(folder.glob(".memview-import-*/processes.json")), timeout=120, interval=0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert list(folder.glob(".memview-import-*")), "the kill came too late to leave a folder"
    res = cli(db, "sessions")
    assert res.returncode == 0, res.stderr
    assert not list(folder.glob(".memview-import-*"))


def test_terminal_controls_and_bidi_overrides_in_imported_names_are_shown_escaped(recorded, tmp_path):
    """Before: an ESC sequence or U+202E in a stranger's session name was printed raw by ``sessions``."""
    evil = "build \x1b[2J\x1b[31mOK\u202egpj.exe"
    phases = [{"seq": 0, "name": "load\x1b]0;owned\x07", "start_s": 0.0, "end_s": 0.1}]
    step = tmp_path / "step.memview.zip"
    rebuild(recorded["bundle"], step, replace={"phases.json": json.dumps(phases).encode()})
    m = manifest_of(step)
    m["session"] = {**m["session"], "name": evil, "uid": "evilname0001"}
    bundle = tmp_path / "evil.memview.zip"
    rebuild(step, bundle, manifest=m)
    db = tmp_path / "e.db"
    res = cli(db, "import", str(bundle))
    assert res.returncode == 0, res.stderr
    listing = cli(db, "sessions")
    shown = cli(db, "show", res.stdout.strip())
    for out in (listing.stdout + listing.stderr, shown.stdout + shown.stderr):
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out, out
    assert "\\u001b[2J" in listing.stdout and "\\u202e" in listing.stdout
