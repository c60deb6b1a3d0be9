"""Writing a trace bundle: one session, redacted, streamed into a zip with every file's size and SHA-256.

See :mod:`memview.bundle` for the layout.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from memview import __version__, chrome_trace
from memview.analysis import session_summary
from memview.bundle.common import (
    ARTEFACTS,
    CHUNK_BYTES,
    FORMAT,
    MANIFEST,
    SAMPLES,
    SAMPLES_HEADER,
    STORED_SUFFIXES,
    TRACE,
    VERSION,
    BundleError,
    ExportResult,
    Limits,
    is_inside,
    regular_files,
)
from memview.redact import redact_argv, redact_text, redact_value
from memview.store import Store, StoreError
from memview.units import format_bytes

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


def _redact_rows(
    rows: list[dict[str, Any]], table: str, text_cols: tuple[str, ...], found: list[str], argv_col: str | None = None
) -> list[dict[str, Any]]:
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


def _collect_artefacts(
    store: Store, sid: int, captures: list[dict[str, Any]]
) -> tuple[dict[str, Path], list[str | None], list[str]]:
    """Bundle name -> file on disk; each capture's bundle path; captures whose files are gone."""
    base = store.artefact_dir(sid)
    files: dict[str, Path] = {}
    for p in regular_files(base):
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
        if is_inside(p, base):
            name = ARTEFACTS + Path(os.path.relpath(os.path.abspath(p), os.path.abspath(base))).as_posix()
            found = any(n == name or n.startswith(name + "/") for n in files)
        else:  # an artefact kept outside the session's folder travels under its own subfolder
            name = f"{ARTEFACTS}capture-{cap['seq']}/{p.name}"
            found = False
            for f in regular_files(p):
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
            if buf.tell() > CHUNK_BYTES:
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
    for cap, cap_path in zip(captures, cap_paths):
        cap["path"] = cap_path

    summary = session_summary(store, sid)
    summary_redacted: list[str] = []
    summary.update(
        command=session.get("command"),
        target=session.get("target"),
        name=session.get("name"),
        meta=session.get("meta") or {},
        notes=session.get("notes") or "",
    )
    summary["processes"] = [
        {
            k: p[k]
            for k in (
                "pid",
                "ppid",
                "name",
                "cmdline",
                "peak_rss_bytes",
                "peak_source",
                "first_s",
                "last_s",
                "exit_code",
            )
        }
        for p in processes
    ]
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
        (
            TRACE,
            lambda: _trace_chunks(trace, {"memview": __version__, "session_uid": row["uid"], "counters": "MiB"}),
            True,
            len(trace) * 200 > 2**31 - 2**26,
        ),
    ]
    for name, path in sorted(artefacts.items()):
        size = path.stat().st_size
        chunks: Callable[[], Iterable[bytes]] = (
            _redacted_chunks(path, name, redacted) if _is_text_artefact(path, size) else _file_chunks(path)
        )
        entries.append((name, chunks, not path.name.lower().endswith(STORED_SUFFIXES), size > 2**31 - 2**26))

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
    out = [
        f"{f['name']} is {format_bytes(f['size'])}: over the {format_bytes(limits.max_file_bytes)} a default "
        "import accepts for one file"
        for f in listed
        if f["size"] > limits.max_file_bytes
    ]
    total = sum(f["size"] for f in listed)
    if total > limits.max_total_bytes:
        out.append(
            f"the bundle unpacks to {format_bytes(total)}: over the {format_bytes(limits.max_total_bytes)} "
            "a default import accepts"
        )
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
            while chunk := f.read(CHUNK_BYTES):
                yield chunk

    return gen


def _zip_info(name: str, stamp: tuple[int, ...], deflate: bool) -> zipfile.ZipInfo:
    year, month, day, hour, minute, second = (max(v, lo) for v, lo in zip(stamp, (1980, 1, 1, 0, 0, 0)))
    info = zipfile.ZipInfo(name, date_time=(year, month, day, hour, minute, second))
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.create_system = 3
    return info
