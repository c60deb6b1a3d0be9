"""Trace bundles: one session in one zip, to hand to a colleague or attach to a bug report.

Layout of ``run.memview.zip`` (format ``memview-bundle``, version 1):

- ``manifest.json`` — format name and version, memview version, the session's metadata (its
  ``sessions`` row), the summary (:func:`memview.analysis.session_summary`), what was redacted,
  and every other file with its size and SHA-256;
- ``samples.csv`` — ``t_s,series,value``: every sample of every series (``rss``, ``pid:N``,
  ``component:NAME``…), seconds since the start with microsecond resolution, integer values;
- ``series.json``, ``processes.json``, ``phases.json``, ``events.json``, ``captures.json`` — the
  session's other rows, as stored;
- ``artefacts/…`` — the capture artefacts (py-spy, heaptrack, heap snapshots);
- ``trace.json`` — the session in the Chrome Trace Event format (:mod:`memview.chrome_trace`).

Import treats the file as hostile until proven otherwise, because bundles arrive from strangers
through bug trackers. Everything is checked before anything is written: entry names (no ``..``,
absolute paths, drive letters or backslashes), entry types (regular files only: no symlinks),
sizes (per-file and total caps on what the headers declare *and* on what actually streams out,
and a cap on the compression ratio), the manifest's shape and version, and every file's size
and SHA-256. Only then is the session written, in one transaction; artefacts wait in a temporary
folder and are moved into place after the commit. Any failure is a :class:`BundleError` with a
one-line message, and the database is as it was.

Credentials never leave: :mod:`memview.redact` scrubs the command line, target, metadata and
free-text fields on export, and the manifest lists where it hid something.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from memview import __version__, chrome_trace
from memview.analysis import session_summary
from memview.redact import redact_argv, redact_text, redact_value
from memview.store import Store, StoreError
from memview.units import format_bytes

FORMAT = "memview-bundle"
VERSION = 1
MANIFEST = "manifest.json"
SAMPLES = "samples.csv"
TRACE = "trace.json"
ARTEFACTS = "artefacts/"
#: the temporary folder of an import in progress, beside the database: ``.memview-import-PID-…``;
#: one whose process is gone (a killed import) is removed when the store is next opened
IMPORT_PREFIX = ".memview-import-"
DATA_FILES = ("series.json", "processes.json", "phases.json", "events.json", "captures.json")
SAMPLES_HEADER = ["t_s", "series", "value"]
_CHUNK = 1 << 20
_INT64 = 2**63
#: already-compressed artefacts are stored, not deflated again
_STORED_SUFFIXES = (".gz", ".zst", ".xz", ".bz2", ".zip", ".png", ".jpg", ".7z")


class BundleError(Exception):
    """A bundle cannot be written or read; the message is one line that says why."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What an import accepts. Checked against the zip headers first, then against the bytes that
    actually come out of the decompressor (headers can lie), so a bomb stops within one chunk."""

    max_entries: int = 10_000
    max_file_bytes: int = 512 * 2**20
    max_total_bytes: int = 2 * 2**30
    max_ratio: int = 200  # uncompressed/compressed; deflate tops out near 1032 on zeros
    ratio_floor_bytes: int = 2**20  # small files may compress far better than that, harmlessly
    max_manifest_bytes: int = 16 * 2**20
    # what the unpacked files may hold: read as streams, one record at a time, so memory stays
    # bounded by these counts (not by how many small objects a file of 512 MiB can pack)
    max_rows: int = 500_000  # per data file (processes, phases, events, captures, series)
    max_row_bytes: int = 4 * 2**20  # one record of a data file
    max_series: int = 10_000
    max_depth: int = 64  # nesting of JSON values (phase data, metadata)


@dataclass(slots=True)
class ExportResult:
    path: Path
    session_id: int
    size_bytes: int
    files: int
    redacted: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ImportResult:
    session_id: int
    created: bool  # False: the same session (uid) was already in the database
    uid: str
    files: int = 0


# ==========================================================================================
# export
# ==========================================================================================

_SESSION_PRIVATE = ("id", "writer_pid", "writer_host")


class _HashingWriter:
    """Counts and hashes what goes into one zip entry while it streams."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.size = 0
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.size += len(data)
        self.sha.update(data)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=False, allow_nan=False) + "\n").encode()


def _redact_session(row: dict[str, Any], found: list[str]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in _SESSION_PRIVATE}
    if isinstance(out.get("command"), list):
        out["command"], idx = redact_argv(out["command"])
        found += [f"command[{i}]" for i in idx]
    for key in ("target", "notes", "name"):
        if isinstance(out.get(key), str):
            out[key], hit = redact_text(out[key])
            if hit:
                found.append(key)
    for key in ("meta", "summary"):
        if out.get(key) is not None:
            out[key], sub = redact_value(out[key], key)
            found += sub
    return out


def _redact_rows(rows: list[dict[str, Any]], table: str, text_cols: tuple[str, ...], found: list[str],
                 argv_col: str | None = None) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(rows):
        row = {k: v for k, v in row.items() if k not in ("id", "session_id")}
        if argv_col and isinstance(row.get(argv_col), list):
            row[argv_col], idx = redact_argv(row[argv_col])
            found += [f"{table}[{i}].{argv_col}[{j}]" for j in idx]
        for col in text_cols:
            if isinstance(row.get(col), str):
                row[col], hit = redact_text(row[col])
                if hit:
                    found.append(f"{table}[{i}].{col}")
        for col in ("data", "flags"):
            if isinstance(row.get(col), (dict, list)):
                row[col], sub = redact_value(row[col], f"{table}[{i}].{col}")
                found += sub
        out.append(row)
    return out


def _inside(path: Path, base: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(base)]) == os.path.abspath(base)
    except ValueError:
        return False


def _regular_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` (or ``root`` itself), never following symlinks: a link in an
    artefact folder could point at ~/.ssh, and a bundle must not carry what it points to."""
    try:
        st = os.lstat(root)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode):
        yield root
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if stat.S_ISREG(os.lstat(p).st_mode):
                yield p


def _collect_artefacts(store: Store, sid: int, captures: list[dict[str, Any]]) -> tuple[
        dict[str, Path], list[str | None], list[str]]:
    """Bundle name -> file on disk; each capture's bundle path; captures whose files are gone."""
    base = store.artefact_dir(sid)
    files: dict[str, Path] = {}
    for p in _regular_files(base):
        files[ARTEFACTS + p.relative_to(base).as_posix()] = p
    cap_paths: list[str | None] = []
    missing: list[str] = []
    for cap in captures:
        raw = cap.get("path")
        if not raw:
            cap_paths.append(None)
            continue
        p = Path(raw)
        if not p.is_absolute():
            p = base / p
        if _inside(p, base):
            name = ARTEFACTS + Path(os.path.relpath(os.path.abspath(p), os.path.abspath(base))).as_posix()
            found = any(n == name or n.startswith(name + "/") for n in files)
        else:  # an artefact kept outside the session's folder travels under its own subfolder
            name = f"{ARTEFACTS}capture-{cap['seq']}/{p.name}"
            found = False
            for f in _regular_files(p):
                rel = f.relative_to(p).as_posix() if f != p else ""
                files[name + ("/" + rel if rel else "")] = f
                found = True
        if found:
            cap_paths.append(name)
        else:
            cap_paths.append(None)
            missing.append(str(raw))
    return files, cap_paths, missing


def _samples_chunks(series: dict[str, tuple[list[float], list[int]]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SAMPLES_HEADER)
    for name in sorted(series, key=lambda s: (s != "rss", s)):
        times, values = series[name]
        for t, v in zip(times, values):
            writer.writerow((f"{t:.6f}", name, v))
            if buf.tell() > _CHUNK:
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
    yield buf.getvalue().encode()


_EVENT_JSON = json.JSONEncoder(allow_nan=False, separators=(", ", ": "))


def _trace_chunks(events: list[dict[str, Any]], other: dict[str, Any]) -> Iterator[bytes]:
    """The trace document, one event per line, without building one giant string."""
    doc = chrome_trace.trace_document([], other)
    head = json.dumps({k: v for k, v in doc.items() if k != "traceEvents"})
    yield b'{"traceEvents": [\n'
    lines: list[str] = []
    for i, ev in enumerate(events):
        lines.append(("" if i == 0 else ",\n") + _EVENT_JSON.encode(ev))
        if len(lines) >= 5000:
            yield "".join(lines).encode()
            lines = []
    yield ("".join(lines) + "\n],\n" + head[1:]).encode()


def export_session(store: Store, sid: int, out: Path | str, overwrite: bool = False) -> ExportResult:
    """Write session ``sid`` of ``store`` to the bundle ``out`` (atomically: a temp file, then a rename).

    Refuses a session that is still recording (its data is not final) and an existing ``out``
    unless ``overwrite``.
    """
    out = Path(out)
    try:
        row = store.session(sid)
    except StoreError as exc:
        raise BundleError(str(exc)) from None
    if row["status"] == "running":
        raise BundleError(f"session {sid} is still recording; export it when it has ended")
    if out.exists() and not overwrite:
        raise BundleError(f"{out} exists; choose another name or pass --force")
    if not out.parent.is_dir():
        raise BundleError(f"folder {out.parent} does not exist")

    redacted: list[str] = []
    session = _redact_session(row, redacted)
    series = {name: store.load_series(sid, name) for name in store.series_names(sid)}
    units = store.series_units(sid)
    processes = _redact_rows(store.processes(sid), "processes", ("name",), redacted, argv_col="cmdline")
    phases = _redact_rows(store.phases(sid), "phases", ("name",), redacted)
    events = _redact_rows(store.events(sid), "events", ("message",), redacted)
    captures = _redact_rows(store.captures(sid), "captures", ("stderr_tail",), redacted)
    artefacts, cap_paths, missing = _collect_artefacts(store, sid, store.captures(sid))
    for cap, path in zip(captures, cap_paths):
        cap["path"] = path

    summary = session_summary(store, sid)
    summary_redacted: list[str] = []
    summary.update(command=session.get("command"), target=session.get("target"), name=session.get("name"),
                   meta=session.get("meta") or {}, notes=session.get("notes") or "")
    summary["processes"] = [{k: p[k] for k in ("pid", "ppid", "name", "cmdline", "peak_rss_bytes", "peak_source",
                                               "first_s", "last_s", "exit_code")} for p in processes]
    for ph_sum, ph in zip(summary["phases"], phases):
        ph_sum.update(name=ph["name"], data=ph["data"] or {}, flags=ph["flags"] or [])
    for c_sum, c in zip(summary["captures"], captures):
        c_sum.update(path=c["path"], stderr_tail=c["stderr_tail"], data=c["data"])
    for e_sum, e in zip(summary["events"], events):
        e_sum["message"] = e["message"]
    summary, summary_redacted = redact_value(summary)  # anything the row-wise pass did not reach
    redacted += [f"summary.{p}" for p in summary_redacted]

    units_rows = [{"name": n, "unit": u["unit"], "label": u["label"]} for n, u in sorted(units.items())]
    trace = chrome_trace.trace_events(session | {"id": sid}, series, units, phases, events, captures, processes)
    n_samples = sum(len(t) for t, _ in series.values())

    entries: list[tuple[str, Callable[[], Iterable[bytes]], bool, bool]] = [
        (SAMPLES, lambda: _samples_chunks(series), True, n_samples * 48 > 2**31 - 2**26),
        ("series.json", lambda: [_json_bytes(units_rows)], True, False),
        ("processes.json", lambda: [_json_bytes(processes)], True, False),
        ("phases.json", lambda: [_json_bytes(phases)], True, False),
        ("events.json", lambda: [_json_bytes(events)], True, False),
        ("captures.json", lambda: [_json_bytes(captures)], True, False),
        (TRACE, lambda: _trace_chunks(trace, {"memview": __version__, "session_uid": row["uid"],
                                              "counters": "MiB"}), True, len(trace) * 200 > 2**31 - 2**26),
    ]
    for name, path in sorted(artefacts.items()):
        size = path.stat().st_size
        chunks = _redacted_chunks(path, name, redacted) if _is_text_artefact(path, size) else _file_chunks(path)
        entries.append((name, chunks, not path.name.lower().endswith(_STORED_SUFFIXES), size > 2**31 - 2**26))

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    listed: list[dict[str, Any]] = []
    stamp = time.localtime(row["started_at"] or time.time())[:6]
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for name, chunks, deflate, big in entries:
                info = _zip_info(name, stamp, deflate)
                with zf.open(info, "w", force_zip64=big) as raw:
                    w = _HashingWriter(raw)
                    for chunk in chunks():
                        w.write(chunk)
                listed.append({"name": name, "size": w.size, "sha256": w.sha.hexdigest()})
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "memview": __version__,
                "exported_at": time.time(),
                "session": session,
                "summary": summary,
                "redacted": redacted,
                "missing_artefacts": missing,
                "files": listed,
            }
            zf.writestr(_zip_info(MANIFEST, stamp, True), _json_bytes(manifest))
        os.replace(tmp, out)
        warnings = _limit_warnings(listed, Limits())
    except OSError as exc:
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. a NaN in a JSON column
        raise BundleError(f"cannot export session {sid}: {exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportResult(out, sid, out.stat().st_size, len(listed) + 1, redacted, warnings)


def _limit_warnings(listed: list[dict[str, Any]], limits: Limits) -> list[str]:
    """What a default import would refuse, said at export time rather than discovered by the recipient."""
    out = [f"{f['name']} is {format_bytes(f['size'])}: over the {format_bytes(limits.max_file_bytes)} a default "
           "import accepts for one file" for f in listed if f["size"] > limits.max_file_bytes]
    total = sum(f["size"] for f in listed)
    if total > limits.max_total_bytes:
        out.append(f"the bundle unpacks to {format_bytes(total)}: over the {format_bytes(limits.max_total_bytes)} "
                   "a default import accepts")
    return out


#: artefacts written as text by capture tools: py-spy's dump (``Process N: python app.py --token …``),
#: its JSON and speedscope files, stderr logs, flame graphs. They carry command lines and paths, so
#: they pass through :func:`memview.redact.redact_text` line by line on their way into a bundle.
_TEXT_SUFFIXES = (".txt", ".json", ".log", ".stderr", ".svg", ".folded", ".collapsed", ".csv", ".html", ".md")
#: a heap snapshot is JSON too, but it is the heap itself (hundreds of MB); it travels as it is
_NOT_REDACTED = (".heapsnapshot",)
_TEXT_MAX = 256 * 2**20
_LINE_MAX = 1 << 20  # longer "lines" (minified JSON) are redacted in pieces of this size


def _is_text_artefact(path: Path, size: int) -> bool:
    low = path.name.lower()
    return size <= _TEXT_MAX and low.endswith(_TEXT_SUFFIXES) and not low.endswith(_NOT_REDACTED)


def _redacted_chunks(path: Path, name: str, redacted: list[str]) -> Callable[[], Iterator[bytes]]:
    """A text artefact with credential-looking arguments hidden (bytes that are not UTF-8 kept as they are).

    A value inside a JSON string ends at its closing quote (``redact_text`` never takes the quote
    along), so JSON artefacts stay valid JSON.
    """

    def gen() -> Iterator[bytes]:
        hit_any = False
        with open(path, "rb") as f:
            while line := f.readline(_LINE_MAX):
                text = line.decode("utf-8", "surrogateescape")
                new, hit = redact_text(text)
                if hit:
                    hit_any = True
                    line = new.encode("utf-8", "surrogateescape")
                yield line
        if hit_any:
            redacted.append(name)

    return gen


def _file_chunks(path: Path) -> Callable[[], Iterator[bytes]]:
    def gen() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk

    return gen


def _zip_info(name: str, stamp: tuple[int, ...], deflate: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=tuple(max(v, lo) for v, lo in zip(stamp, (1980, 1, 1, 0, 0, 0))))
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.create_system = 3
    return info


# ==========================================================================================
# import: checks
# ==========================================================================================

_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_name(name: str) -> None:
    """An entry name we would extract: relative, forward slashes, no ``..``, no drive letter."""
    shown = repr(name)[:120]
    if not name or len(name) > 1024:
        raise BundleError(f"invalid entry name {shown}")
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        raise BundleError(f"entry name {shown} contains control characters")
    if "\\" in name:
        raise BundleError(f"unsafe entry name {shown} (backslashes are not allowed)")
    if name.startswith("/"):
        raise BundleError(f"unsafe entry name {shown} (absolute path)")
    if _DRIVE.match(name):
        raise BundleError(f"unsafe entry name {shown} (drive letter)")
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if any(p == ".." for p in parts):
        raise BundleError(f"unsafe entry name {shown} (escapes the bundle folder)")
    if any(p in ("", ".") for p in parts):
        raise BundleError(f"invalid entry name {shown} (empty or '.' path component)")
    if any(len(p.encode()) > 255 for p in parts):
        raise BundleError(f"invalid entry name {shown} (a path component is too long)")


def _is_dir_entry(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/")


def _check_entry(info: zipfile.ZipInfo, limits: Limits) -> None:
    """Type, flags and declared sizes of one entry, before a byte of it is decompressed."""
    name = info.filename
    _check_name(name)
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode) if info.create_system == 3 else 0
    if kind == stat.S_IFLNK:
        raise BundleError(f"entry {name!r} is a symbolic link; bundles hold regular files only")
    if _is_dir_entry(info):
        if info.file_size or (kind and kind != stat.S_IFDIR):
            raise BundleError(f"entry {name!r} is not a regular file")
        return
    if kind and kind != stat.S_IFREG:
        raise BundleError(f"entry {name!r} is not a regular file (mode {oct(mode)})")
    if info.external_attr & 0x10:
        raise BundleError(f"entry {name!r} is marked as a folder but has a file name")
    if info.flag_bits & 0x1:
        raise BundleError(f"entry {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleError(f"entry {name!r} uses an unsupported compression method ({info.compress_type})")
    if info.file_size > limits.max_file_bytes:
        raise BundleError(f"entry {name!r} would unpack to {format_bytes(info.file_size)}, over the "
                          f"{format_bytes(limits.max_file_bytes)} limit for one file")
    _check_ratio(name, info.file_size, info.compress_size, limits)


def _check_ratio(name: str, size: int, compressed: int, limits: Limits) -> None:
    if size > limits.ratio_floor_bytes and size > max(compressed, 1) * limits.max_ratio:
        raise BundleError(f"entry {name!r} expands {size // max(compressed, 1)}:1, a likely zip bomb "
                          f"(limit {limits.max_ratio}:1)")


# --- the manifest's shape --------------------------------------------------------------------

_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))
_JSONISH = (dict, list, str, int, float, bool, type(None))

#: column -> accepted types; unknown columns of a newer memview are ignored, known ones are checked
SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "uid": (str,), "kind": (str,), "name": _OPT_STR, "command": (list, str, type(None)), "target": _OPT_STR,
    "pid": _OPT_INT, "cwd": _OPT_STR, "started_at": _NUM, "ended_at": _OPT_NUM, "wall_s": _OPT_NUM,
    "status": (str,), "exit_code": _OPT_INT, "signal": _OPT_INT, "interval_s": _OPT_NUM, "samples": _OPT_INT,
    "peak_rss_bytes": _OPT_INT, "peak_source": _OPT_STR, "avg_rss_bytes": _OPT_INT, "final_rss_bytes": _OPT_INT,
    "meta": (dict, type(None)), "tags": (list, type(None)), "notes": _OPT_STR, "summary": _JSONISH,
}
ROW_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "series.json": {"name": (str,), "unit": _OPT_STR, "label": _OPT_STR},
    "processes.json": {
        "pid": (int,), "ppid": _OPT_INT, "name": _OPT_STR, "cmdline": (list, str, type(None)),
        "create_time": _OPT_NUM, "first_s": _OPT_NUM, "last_s": _OPT_NUM, "peak_rss_bytes": _OPT_INT,
        "peak_source": _OPT_STR, "exit_code": _OPT_INT,
    },
    "phases.json": {
        "seq": (int,), "name": (str,), "depth": _OPT_INT, "start_s": _NUM, "end_s": _OPT_NUM,
        "start_rss_bytes": _OPT_INT, "end_rss_bytes": _OPT_INT, "peak_rss_bytes": _OPT_INT, "peak_source": _OPT_STR,
        "growth_bytes": _OPT_INT, "flags": (list, type(None)), "data": (dict, type(None)),
    },
    "events.json": {"t_s": _NUM, "kind": (str,), "level": _OPT_STR, "message": _OPT_STR,
                    "data": (dict, type(None))},
    "captures.json": {
        "seq": (int,), "tool": (str,), "pid": _OPT_INT, "trigger": _OPT_STR, "started_s": _OPT_NUM,
        "ended_s": _OPT_NUM, "path": _OPT_STR, "size_bytes": _OPT_INT, "exit_status": _OPT_INT,
        "status": _OPT_STR, "stderr_tail": _OPT_STR, "data": (dict, type(None)),
    },
}
_REQUIRED_ROW = {"series.json": ("name",), "processes.json": ("pid",), "phases.json": ("seq", "name", "start_s"),
                 "events.json": ("t_s", "kind"), "captures.json": ("seq", "tool")}


def _typecheck(value: Any, types: tuple[type, ...], where: str) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        ok = False
    if not ok:
        names = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in types}))
        raise BundleError(f"{where}: expected {names}, got {type(value).__name__} {str(value)[:40]!r}")


def _check_fields(obj: Any, fields: dict[str, tuple[type, ...]], required: tuple[str, ...], where: str
                  ) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise BundleError(f"{where}: expected an object")
    for key in required:
        if key not in obj:
            raise BundleError(f"{where}: '{key}' is missing")
    out = {}
    for key, types in fields.items():
        if key in obj:
            _typecheck(obj[key], types, f"{where}.{key}")
            value = obj[key]
            out[key] = visible(value) if isinstance(value, str) else value
    return out


#: characters a terminal acts on rather than shows: C0/C1 controls (ESC starts escape sequences)
#: and the bidirectional overrides/isolates that make text display in another order than it reads
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with terminal controls and bidi overrides written as ``\\uXXXX`` (tab and newline kept).

    Names and messages in a bundle come from strangers and are later printed by ``sessions``,
    ``show`` and ``compare``: an ESC sequence or a U+202E must show as what it is, not act.
    """
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@dataclass(slots=True)
class _Manifest:
    session: dict[str, Any]
    summary: dict[str, Any]
    files: dict[str, tuple[int, str]]  # name -> (size, sha256)
    raw: dict[str, Any] = field(default_factory=dict)


_SHA = re.compile(r"^[0-9a-f]{64}$")


def parse_manifest(data: bytes) -> _Manifest:
    """Check the manifest's format, version and shape; raise BundleError naming the first problem."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"manifest.json is not valid JSON ({str(exc)[:80]})") from None
    doc = loads_strict(text, "manifest.json")
    if not isinstance(doc, dict):
        raise BundleError("manifest.json: expected an object")
    if doc.get("format") != FORMAT:
        raise BundleError(f"not a memview bundle (manifest format {str(doc.get('format'))[:40]!r})")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError("manifest.json: 'version' must be an integer")
    if version > VERSION:
        raise BundleError(f"bundle format version {version} is newer than this memview reads ({VERSION}); "
                          "upgrade memview")
    if version < 1:
        raise BundleError(f"unknown bundle format version {version}")
    session = _check_fields(doc.get("session"), SESSION_FIELDS, ("uid", "kind", "status", "started_at"),
                            "manifest.json: session")
    if not re.fullmatch(r"[0-9A-Za-z_\-]{8,64}", session["uid"]):
        raise BundleError("manifest.json: session.uid is not a session id")
    summary = doc.get("summary")
    if not isinstance(summary, dict):
        raise BundleError("manifest.json: 'summary' must be an object")
    listed = doc.get("files")
    if not isinstance(listed, list):
        raise BundleError("manifest.json: 'files' must be a list")
    files: dict[str, tuple[int, str]] = {}
    for i, entry in enumerate(listed):
        where = f"manifest.json: files[{i}]"
        f = _check_fields(entry, {"name": (str,), "size": (int,), "sha256": (str,)}, ("name", "size", "sha256"),
                          where)
        _check_name(f["name"])
        if f["name"] == MANIFEST or f["name"].endswith("/"):
            raise BundleError(f"{where}: invalid name {f['name']!r}")
        if f["size"] < 0 or not _SHA.match(f["sha256"]):
            raise BundleError(f"{where}: invalid size or sha256")
        if f["name"] in files:
            raise BundleError(f"{where}: {f['name']!r} is listed twice")
        files[f["name"]] = (f["size"], f["sha256"])
    for name in (SAMPLES, *DATA_FILES):
        if name not in files:
            raise BundleError(f"manifest.json does not list {name}")
    for name in files:
        if name not in (SAMPLES, TRACE, *DATA_FILES) and not name.startswith(ARTEFACTS):
            raise BundleError(f"manifest.json lists an unknown file {name!r}")
    return _Manifest(session, summary, files, doc)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 is read as inf, and inf is printed back as invalid JSON
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:  # beyond int64 (and a 4000-digit number costs quadratic time)
        raise ValueError(f"number {text[:20]}… is out of range")
    return int(text)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)


def _too_deep(value: Any, limit: int) -> bool:
    """True when ``value`` nests deeper than ``limit`` (iterative: a deep value must not recurse here)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def loads_strict(text: str, name: str, max_depth: int = 64) -> Any:
    """JSON from a stranger: no NaN/Infinity, no number beyond int64 or float range, bounded nesting;
    a :class:`BundleError` naming ``name`` for anything else (never a RecursionError)."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise BundleError(f"{name} is nested too deeply") from None
    except ValueError as exc:
        raise BundleError(f"{name} is not valid JSON ({str(exc)[:80]})") from None
    if _too_deep(value, max_depth):
        raise BundleError(f"{name} is nested more than {max_depth} levels deep")
    return value


# ==========================================================================================
# import: reading
# ==========================================================================================

def _open_zip(path: Path, limits: Limits) -> zipfile.ZipFile:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BundleError("no such file") from None
    except OSError as exc:
        raise BundleError(f"cannot read it: {exc.strerror}") from None
    if not path.is_file():
        raise BundleError("not a file")
    if size > limits.max_total_bytes + limits.max_manifest_bytes:
        raise BundleError(f"the file is {format_bytes(size)}, over the {format_bytes(limits.max_total_bytes)} limit")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise BundleError(f"not a memview bundle: not a zip file, or truncated ({exc})") from None
    except (OSError, ValueError, EOFError) as exc:
        raise BundleError(f"not a memview bundle: unreadable zip ({exc})") from None


class _SinkError(Exception):
    """Writing what was read failed (disk full…): not the bundle's fault, so not "damaged"."""


def _writer(out: IO[bytes], name: str) -> Callable[[bytes], None]:
    def write(chunk: bytes) -> None:
        try:
            out.write(chunk)
        except OSError as exc:
            raise _SinkError(f"cannot unpack {name!r}: {exc.strerror or exc}") from None

    return write


def _stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, limits: Limits,
            sink: Callable[[bytes], None]) -> tuple[int, str]:
    """Decompress one entry into ``sink``, counting: never more than ``cap`` bytes, whatever the headers say."""
    sha = hashlib.sha256()
    size = 0
    ratio_cap = max(info.compress_size, 1) * limits.max_ratio + limits.ratio_floor_bytes
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise BundleError(f"entry {info.filename!r} unpacks to more than {format_bytes(cap)} "
                                      "(more than its headers or the limits allow)")
                if size > ratio_cap:
                    raise BundleError(f"entry {info.filename!r} expands more than {limits.max_ratio}:1, "
                                      "a likely zip bomb")
                sha.update(chunk)
                sink(chunk)
    except BundleError:
        raise
    except _SinkError as exc:
        raise BundleError(str(exc)) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise BundleError(f"damaged entry {info.filename!r} ({exc})") from None
    return size, sha.hexdigest()


@dataclass(slots=True)
class _Checked:
    """A bundle whose entries passed every check and are unpacked in ``folder``; the data files
    are read (and their records checked) as streams inside the import's transaction."""

    manifest: _Manifest
    folder: Path
    limits: Limits
    artefact_dir: Path  # the temp folder holding artefacts/…


def _read_entries(path: Path, tmp: Path, limits: Limits) -> _Checked:
    zf = _open_zip(path, limits)
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise BundleError(f"the zip has {len(infos)} entries, over the limit of {limits.max_entries}")
        seen: dict[str, str] = {}
        total = 0
        for info in infos:
            _check_entry(info, limits)
            key = info.filename.lower()
            if key in seen:
                raise BundleError(f"entry {info.filename!r} appears twice (as {seen[key]!r})")
            seen[key] = info.filename
            total += info.file_size
        if total > limits.max_total_bytes:
            raise BundleError(f"the bundle would unpack to {format_bytes(total)}, over the "
                              f"{format_bytes(limits.max_total_bytes)} limit")
        files = {i.filename: i for i in infos if not _is_dir_entry(i)}
        for name in files:
            parts = name.split("/")
            for k in range(1, len(parts)):
                if "/".join(parts[:k]) in files:
                    raise BundleError(f"entry {name!r} lies inside {'/'.join(parts[:k])!r}, which is a file")
        if MANIFEST not in files:
            raise BundleError("not a memview bundle (no manifest.json)")
        if files[MANIFEST].file_size > limits.max_manifest_bytes:
            raise BundleError(f"manifest.json is {format_bytes(files[MANIFEST].file_size)}, over the "
                              f"{format_bytes(limits.max_manifest_bytes)} limit")
        buf = bytearray()
        _stream(zf, files[MANIFEST], files[MANIFEST].file_size, limits, buf.extend)
        manifest = parse_manifest(bytes(buf))
        for name in manifest.files:
            if name not in files:
                raise BundleError(f"{name!r} is listed in the manifest but missing from the bundle")
        for name in files:
            if name != MANIFEST and name not in manifest.files:
                raise BundleError(f"{name!r} is in the bundle but not listed in the manifest")
        # stream everything, counting against the manifest, the headers and the caps
        streamed = 0
        for name, (want_size, want_sha) in manifest.files.items():
            info = files[name]
            if info.file_size != want_size:
                raise BundleError(f"size mismatch for {name!r}: the zip says {info.file_size} bytes, "
                                  f"the manifest {want_size}")
            cap = min(want_size, limits.max_file_bytes, limits.max_total_bytes - streamed)
            if name == TRACE:  # derived from the rest: verified, not kept
                size, sha = _stream(zf, info, cap, limits, lambda _chunk: None)
            else:
                target = tmp / name
                if not _inside(target, tmp):
                    raise BundleError(f"unsafe entry name {name!r}")
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "xb") as out:
                        size, sha = _stream(zf, info, cap, limits, _writer(out, name))
                except OSError as exc:
                    raise BundleError(f"cannot unpack {name!r}: {exc.strerror or exc}") from None
            streamed += size
            if size != want_size or sha != want_sha:
                raise BundleError(f"checksum mismatch for {name!r} (the file was changed or damaged)")
    checked = _Checked(manifest, tmp, limits, tmp / ARTEFACTS)
    _validate(checked)
    return checked


def _validate(checked: _Checked) -> None:
    """Read every record once, keeping nothing but the keys that must not repeat: a bad bundle is
    refused before the database is even looked at."""
    for _ in _iter_samples(checked.folder / SAMPLES, checked.limits):
        pass
    for name in DATA_FILES:
        keys: set[Any] = set()
        key = {"phases.json": "seq", "captures.json": "seq", "series.json": "name"}.get(name)
        for i, row in enumerate(_iter_rows(checked.folder / name, name, checked.limits)):
            if name == "captures.json":
                _check_capture(i, row, checked.manifest.files)
            if key is not None:
                if row[key] in keys:
                    raise BundleError("series.json: a series is listed twice" if name == "series.json"
                                      else f"{name}: '{key}' values repeat")
                keys.add(row[key])


def _iter_rows(path: Path, name: str, limits: Limits) -> Iterator[dict[str, Any]]:
    """The checked records of one data file (a JSON list of objects), one at a time.

    ``json.loads`` of a whole file turns 114 MiB of ``{}`` into 4.6 GB of objects; here each
    element is decoded alone from a sliding window, checked, handed on and forgotten, and the
    count is capped, so memory stays at about one record whatever the file holds.
    """
    fields, required = ROW_FIELDS[name], _REQUIRED_ROW[name]
    decoder = codecs.getincrementaldecoder("utf-8")()
    buf = ""
    pos = 0
    eof = False
    count = 0

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = f.read(_CHUNK)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise BundleError(f"{name} is not valid JSON ({str(exc)[:80]})") from None
        if not chunk:
            eof = True
        buf = buf[pos:] + text
        pos = 0
        return bool(chunk) or bool(text)

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    with open(path, "rb") as f:
        if skip_ws() != "[":
            raise BundleError(f"{name}: expected a list")
        pos += 1
        if skip_ws() == "]":
            pos += 1
        else:
            while True:
                skip_ws()
                while True:
                    try:
                        item, end = _DECODER.raw_decode(buf, pos)
                        break
                    except RecursionError:
                        raise BundleError(f"{name}[{count}] is nested too deeply") from None
                    except ValueError as exc:
                        if len(buf) - pos > limits.max_row_bytes:
                            raise BundleError(f"{name}[{count}] is larger than "
                                              f"{format_bytes(limits.max_row_bytes)}") from None
                        if not more():
                            raise BundleError(f"{name} is not valid JSON ({str(exc)[:80]})") from None
                if end - pos > limits.max_row_bytes:
                    raise BundleError(f"{name}[{count}] is larger than {format_bytes(limits.max_row_bytes)}")
                pos = end
                count += 1
                if count > limits.max_rows:
                    raise BundleError(f"{name} holds more than {limits.max_rows} records, over the limit")
                if _too_deep(item, limits.max_depth):
                    raise BundleError(f"{name}[{count - 1}] is nested more than {limits.max_depth} levels deep")
                yield _check_fields(item, fields, required, f"{name}[{count - 1}]")
                sep = skip_ws()
                pos += 1
                if sep == "]":
                    break
                if sep != ",":
                    raise BundleError(f"{name} is not valid JSON (expected ',' or ']' after record {count - 1})")
        if skip_ws() != "":
            raise BundleError(f"{name} is not valid JSON (text after the list)")


def _iter_samples(path: Path, limits: Limits) -> Iterator[tuple[str, float, int]]:
    """(series, t, value) for every line of samples.csv, checked, one at a time."""
    names: set[str] = set()
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if header != SAMPLES_HEADER:
                raise BundleError(f"{SAMPLES}: the first line must be {','.join(SAMPLES_HEADER)}")
            for row in reader:
                if len(row) != 3:
                    raise BundleError(f"{SAMPLES} line {reader.line_num}: expected 3 fields")
                if len(row[0]) > 40 or len(row[2]) > 20:
                    raise BundleError(f"{SAMPLES} line {reader.line_num}: value out of range")
                try:
                    t, value = float(row[0]), int(row[2])
                except ValueError:
                    raise BundleError(f"{SAMPLES} line {reader.line_num}: not a number") from None
                if not math.isfinite(t) or not -_INT64 // 2 <= value < _INT64 // 2 or not 0 < len(row[1]) <= 200:
                    raise BundleError(f"{SAMPLES} line {reader.line_num}: value out of range")
                if row[1] not in names:
                    if len(names) >= limits.max_series:
                        raise BundleError(f"{SAMPLES} holds more than {limits.max_series} series, over the limit")
                    names.add(row[1])
                yield row[1], t, value
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BundleError(f"{SAMPLES} is not valid CSV ({exc})") from None


def _check_capture(i: int, cap: dict[str, Any], files: dict[str, tuple[int, str]]) -> None:
    p = cap.get("path")
    if p is None:
        return
    if not p.startswith(ARTEFACTS) or not any(n == p or n.startswith(p + "/") for n in files):
        raise BundleError(f"captures.json[{i}].path {p[:80]!r} is not a file in the bundle")


# ==========================================================================================
# import: writing
# ==========================================================================================

def _rows(checked: _Checked,
          artefact_root: Callable[[int], Path]) -> Callable[[int], Iterator[tuple[str, dict[str, Any]]]]:
    """The bundle's rows for :meth:`Store.import_session`, each checked as it streams (a bad one raises
    BundleError inside the transaction, which rolls it back); capture paths point at the session's folder."""

    def rows(sid: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, table in (("series.json", "series"), ("processes.json", "processes"), ("phases.json", "phases"),
                            ("events.json", "events")):
            for row in _iter_rows(checked.folder / name, name, checked.limits):
                yield table, row
        root = artefact_root(sid)
        for i, row in enumerate(_iter_rows(checked.folder / "captures.json", "captures.json", checked.limits)):
            _check_capture(i, row, checked.manifest.files)
            row = dict(row)
            if row.get("path"):
                row["path"] = str(root / row["path"][len(ARTEFACTS):])
            yield "captures", row

    return rows


def _write(store: Store, checked: _Checked, artefact_root: Callable[[int], Path]) -> int:
    """Insert the checked session in one transaction, streaming its files; returns the new id.

    A record that fails its check half-way raises a BundleError; the transaction is rolled back,
    so the database is as it was.
    """
    session = dict(checked.manifest.session)
    if session["status"] == "running":
        session["status"] = "interrupted"
    return store.import_session(session, _iter_samples(checked.folder / SAMPLES, checked.limits),
                                _rows(checked, artefact_root))


def _move_artefacts(src: Path, dest: Path) -> int:
    moved = 0
    for f in _regular_files(src):
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(f, target)
        moved += 1
    return moved


def import_bundle(store: Store, path: Path | str, limits: Limits | None = None) -> ImportResult:
    """Check bundle ``path`` completely, then add its session to ``store`` (once: a session whose
    uid is already there is not duplicated; its id is returned with ``created=False``).

    Raises :class:`BundleError` with a one-line message, prefixed with the file's name, for any
    problem; the database and the artefact folders are then as they were.
    """
    path = Path(path)
    limits = limits or Limits()
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f"{IMPORT_PREFIX}{os.getpid()}-", dir=store.path.parent))
    except OSError as exc:
        raise BundleError(f"cannot unpack beside {store.path}: {exc.strerror}") from None
    created_dirs: list[Path] = []

    def artefact_root(sid: int) -> Path:
        # only known once the session row has its id; created inside the transaction, removed on rollback
        base = store.path.with_name(store.path.stem + ".artefacts") / f"session-{sid}"
        if not base.exists():
            created_dirs.append(base)
        return store.artefact_dir(sid)

    try:
        try:
            checked = _read_entries(path, tmp, limits)
        except BundleError as exc:
            raise BundleError(f"{path.name}: {exc}") from None
        uid = checked.manifest.session["uid"]
        existing = store.session_id_by_uid(uid)
        if existing is not None:
            return ImportResult(existing, False, uid)
        try:
            sid = _write(store, checked, artefact_root)
        except BundleError as exc:  # a record that failed its check while streaming: rolled back
            for d in created_dirs:
                _rmdir_if_empty(d)
            raise BundleError(f"{path.name}: {exc}") from None
        except sqlite3.IntegrityError:
            for d in created_dirs:
                _rmdir_if_empty(d)
            again = store.session_id_by_uid(uid)
            if again is not None:  # imported by someone else meanwhile
                return ImportResult(again, False, uid)
            raise BundleError(f"{path.name}: the bundle's rows contradict each other") from None
        except sqlite3.Error as exc:
            for d in created_dirs:
                _rmdir_if_empty(d)
            raise BundleError(f"cannot write to {store.path}: {exc}") from None
        moved = 0
        if checked.artefact_dir.is_dir():
            try:
                moved = _move_artefacts(checked.artefact_dir, store.artefact_dir(sid))
            except OSError as exc:
                raise BundleError(f"imported as session {sid}, but its artefacts could not be moved into "
                                  f"place: {exc.strerror}") from None
        return ImportResult(sid, True, uid, moved)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def read_manifest(path: Path | str, limits: Limits | None = None) -> dict[str, Any]:
    """A bundle's checked manifest without unpacking the rest (what ``compare`` needs).

    The entry names and declared sizes are checked as on import, and the manifest itself is
    parsed and validated; the other files are not read.
    """
    path = Path(path)
    limits = limits or Limits()
    try:
        with _open_zip(path, limits) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if MANIFEST not in infos:
                raise BundleError("not a memview bundle (no manifest.json)")
            info = infos[MANIFEST]
            _check_entry(info, limits)
            buf = bytearray()
            _stream(zf, info, min(limits.max_manifest_bytes, info.file_size), limits, buf.extend)
        return parse_manifest(bytes(buf)).raw
    except BundleError as exc:
        raise BundleError(f"{path.name}: {exc}") from None
