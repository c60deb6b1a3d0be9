"""The checks of a bundle's names and records: entry names and types, the strict JSON reader, the
manifest's shape and every row's fields. Pure functions of bytes and dicts; nothing here touches
the disk or the database.
"""

from __future__ import annotations

import json
import math
import re
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from memview.bundle.common import (
    ARTEFACTS,
    DATA_FILES,
    FORMAT,
    INT64_LIMIT,
    MANIFEST,
    SAMPLES,
    TRACE,
    VERSION,
    BundleError,
    Limits,
)
from memview.units import format_bytes

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


def is_dir_entry(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith("/")


def check_entry(info: zipfile.ZipInfo, limits: Limits) -> None:
    """Type, flags and declared sizes of one entry, before a byte of it is decompressed."""
    name = info.filename
    _check_name(name)
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode) if info.create_system == 3 else 0
    if kind == stat.S_IFLNK:
        raise BundleError(f"entry {name!r} is a symbolic link; bundles hold regular files only")
    if is_dir_entry(info):
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
        raise BundleError(
            f"entry {name!r} would unpack to {format_bytes(info.file_size)}, over the "
            f"{format_bytes(limits.max_file_bytes)} limit for one file"
        )
    _check_ratio(name, info.file_size, info.compress_size, limits)


def _check_ratio(name: str, size: int, compressed: int, limits: Limits) -> None:
    if size > limits.ratio_floor_bytes and size > max(compressed, 1) * limits.max_ratio:
        raise BundleError(
            f"entry {name!r} expands {size // max(compressed, 1)}:1, a likely zip bomb (limit {limits.max_ratio}:1)"
        )


# --- the manifest's shape --------------------------------------------------------------------

_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))
_JSONISH = (dict, list, str, int, float, bool, type(None))

#: column -> accepted types; unknown columns of a newer memview are ignored, known ones are checked
SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "uid": (str,),
    "kind": (str,),
    "name": _OPT_STR,
    "command": (list, str, type(None)),
    "target": _OPT_STR,
    "pid": _OPT_INT,
    "cwd": _OPT_STR,
    "started_at": _NUM,
    "ended_at": _OPT_NUM,
    "wall_s": _OPT_NUM,
    "status": (str,),
    "exit_code": _OPT_INT,
    "signal": _OPT_INT,
    "interval_s": _OPT_NUM,
    "samples": _OPT_INT,
    "peak_rss_bytes": _OPT_INT,
    "peak_source": _OPT_STR,
    "avg_rss_bytes": _OPT_INT,
    "final_rss_bytes": _OPT_INT,
    "meta": (dict, type(None)),
    "tags": (list, type(None)),
    "notes": _OPT_STR,
    "summary": _JSONISH,
}
ROW_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "series.json": {"name": (str,), "unit": _OPT_STR, "label": _OPT_STR},
    "processes.json": {
        "pid": (int,),
        "ppid": _OPT_INT,
        "name": _OPT_STR,
        "cmdline": (list, str, type(None)),
        "create_time": _OPT_NUM,
        "first_s": _OPT_NUM,
        "last_s": _OPT_NUM,
        "peak_rss_bytes": _OPT_INT,
        "peak_source": _OPT_STR,
        "exit_code": _OPT_INT,
    },
    "phases.json": {
        "seq": (int,),
        "name": (str,),
        "depth": _OPT_INT,
        "start_s": _NUM,
        "end_s": _OPT_NUM,
        "start_rss_bytes": _OPT_INT,
        "end_rss_bytes": _OPT_INT,
        "peak_rss_bytes": _OPT_INT,
        "peak_source": _OPT_STR,
        "growth_bytes": _OPT_INT,
        "flags": (list, type(None)),
        "data": (dict, type(None)),
    },
    "events.json": {"t_s": _NUM, "kind": (str,), "level": _OPT_STR, "message": _OPT_STR, "data": (dict, type(None))},
    "captures.json": {
        "seq": (int,),
        "tool": (str,),
        "pid": _OPT_INT,
        "trigger": _OPT_STR,
        "started_s": _OPT_NUM,
        "ended_s": _OPT_NUM,
        "path": _OPT_STR,
        "size_bytes": _OPT_INT,
        "exit_status": _OPT_INT,
        "status": _OPT_STR,
        "stderr_tail": _OPT_STR,
        "data": (dict, type(None)),
    },
}
REQUIRED_ROW_FIELDS = {
    "series.json": ("name",),
    "processes.json": ("pid",),
    "phases.json": ("seq", "name", "start_s"),
    "events.json": ("t_s", "kind"),
    "captures.json": ("seq", "tool"),
}


def _typecheck(value: Any, types: tuple[type, ...], where: str) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64_LIMIT <= value < INT64_LIMIT:
        ok = False
    if not ok:
        names = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in types}))
        raise BundleError(f"{where}: expected {names}, got {type(value).__name__} {str(value)[:40]!r}")


def check_fields(
    obj: Any, fields: dict[str, tuple[type, ...]], required: tuple[str, ...], where: str
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
class BundleManifest:
    session: dict[str, Any]
    summary: dict[str, Any]
    files: dict[str, tuple[int, str]]  # name -> (size, sha256)
    raw: dict[str, Any] = field(default_factory=dict)


_SHA = re.compile(r"^[0-9a-f]{64}$")


def parse_manifest(data: bytes) -> BundleManifest:
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
        raise BundleError(
            f"bundle format version {version} is newer than this memview reads ({VERSION}); upgrade memview"
        )
    if version < 1:
        raise BundleError(f"unknown bundle format version {version}")
    session = check_fields(
        doc.get("session"), SESSION_FIELDS, ("uid", "kind", "status", "started_at"), "manifest.json: session"
    )
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
        f = check_fields(entry, {"name": (str,), "size": (int,), "sha256": (str,)}, ("name", "size", "sha256"), where)
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
    return BundleManifest(session, summary, files, doc)


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


JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)


def too_deep(value: Any, limit: int) -> bool:
    """True when ``value`` nests deeper than ``limit`` (iterative: a deep value must not recurse here)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
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
        value = JSON_DECODER.decode(text)
    except RecursionError:
        raise BundleError(f"{name} is nested too deeply") from None
    except ValueError as exc:
        raise BundleError(f"{name} is not valid JSON ({str(exc)[:80]})") from None
    if too_deep(value, max_depth):
        raise BundleError(f"{name} is nested more than {max_depth} levels deep")
    return value
