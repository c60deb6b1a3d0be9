"""Reading a hostile zip safely: entries streamed out under size and ratio caps, hashed and checked
against the manifest before anything is used, rows and samples parsed lazily and strictly.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from memview.bundle.common import (
    ARTEFACTS,
    CHUNK_BYTES,
    DATA_FILES,
    INT64_LIMIT,
    MANIFEST,
    SAMPLES,
    SAMPLES_HEADER,
    TRACE,
    BundleError,
    Limits,
    is_inside,
)
from memview.bundle.manifest import (
    JSON_DECODER,
    REQUIRED_ROW_FIELDS,
    ROW_FIELDS,
    BundleManifest,
    check_entry,
    check_fields,
    is_dir_entry,
    parse_manifest,
    too_deep,
)
from memview.units import format_bytes


def open_zip(path: Path, limits: Limits) -> zipfile.ZipFile:
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


def stream_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, limits: Limits, sink: Callable[[bytes], None]
) -> tuple[int, str]:
    """Decompress one entry into ``sink``, counting: never more than ``cap`` bytes, whatever the headers say."""
    sha = hashlib.sha256()
    size = 0
    ratio_cap = max(info.compress_size, 1) * limits.max_ratio + limits.ratio_floor_bytes
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(CHUNK_BYTES)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise BundleError(
                        f"entry {info.filename!r} unpacks to more than {format_bytes(cap)} "
                        "(more than its headers or the limits allow)"
                    )
                if size > ratio_cap:
                    raise BundleError(
                        f"entry {info.filename!r} expands more than {limits.max_ratio}:1, a likely zip bomb"
                    )
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
class CheckedBundle:
    """A bundle whose entries passed every check and are unpacked in ``folder``; the data files
    are read (and their records checked) as streams inside the import's transaction."""

    manifest: BundleManifest
    folder: Path
    limits: Limits
    artefact_dir: Path  # the temp folder holding artefacts/…


def read_entries(path: Path, tmp: Path, limits: Limits) -> CheckedBundle:
    zf = open_zip(path, limits)
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise BundleError(f"the zip has {len(infos)} entries, over the limit of {limits.max_entries}")
        seen: dict[str, str] = {}
        total = 0
        for info in infos:
            check_entry(info, limits)
            key = info.filename.lower()
            if key in seen:
                raise BundleError(f"entry {info.filename!r} appears twice (as {seen[key]!r})")
            seen[key] = info.filename
            total += info.file_size
        if total > limits.max_total_bytes:
            raise BundleError(
                f"the bundle would unpack to {format_bytes(total)}, over the "
                f"{format_bytes(limits.max_total_bytes)} limit"
            )
        files = {i.filename: i for i in infos if not is_dir_entry(i)}
        for name in files:
            parts = name.split("/")
            for k in range(1, len(parts)):
                if "/".join(parts[:k]) in files:
                    raise BundleError(f"entry {name!r} lies inside {'/'.join(parts[:k])!r}, which is a file")
        if MANIFEST not in files:
            raise BundleError("not a memview bundle (no manifest.json)")
        if files[MANIFEST].file_size > limits.max_manifest_bytes:
            raise BundleError(
                f"manifest.json is {format_bytes(files[MANIFEST].file_size)}, over the "
                f"{format_bytes(limits.max_manifest_bytes)} limit"
            )
        buf = bytearray()
        stream_member(zf, files[MANIFEST], files[MANIFEST].file_size, limits, buf.extend)
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
                raise BundleError(
                    f"size mismatch for {name!r}: the zip says {info.file_size} bytes, the manifest {want_size}"
                )
            cap = min(want_size, limits.max_file_bytes, limits.max_total_bytes - streamed)
            if name == TRACE:  # derived from the rest: verified, not kept
                size, sha = stream_member(zf, info, cap, limits, lambda _chunk: None)
            else:
                target = tmp / name
                if not is_inside(target, tmp):
                    raise BundleError(f"unsafe entry name {name!r}")
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "xb") as out:
                        size, sha = stream_member(zf, info, cap, limits, _writer(out, name))
                except OSError as exc:
                    raise BundleError(f"cannot unpack {name!r}: {exc.strerror or exc}") from None
            streamed += size
            if size != want_size or sha != want_sha:
                raise BundleError(f"checksum mismatch for {name!r} (the file was changed or damaged)")
    checked = CheckedBundle(manifest, tmp, limits, tmp / ARTEFACTS)
    _validate(checked)
    return checked


def _validate(checked: CheckedBundle) -> None:
    """Read every record once, keeping nothing but the keys that must not repeat: a bad bundle is
    refused before the database is even looked at."""
    for _ in iter_samples(checked.folder / SAMPLES, checked.limits):
        pass
    for name in DATA_FILES:
        keys: set[Any] = set()
        key = {"phases.json": "seq", "captures.json": "seq", "series.json": "name"}.get(name)
        for i, row in enumerate(iter_rows(checked.folder / name, name, checked.limits)):
            if name == "captures.json":
                check_capture(i, row, checked.manifest.files)
            if key is not None:
                if row[key] in keys:
                    raise BundleError(
                        "series.json: a series is listed twice"
                        if name == "series.json"
                        else f"{name}: '{key}' values repeat"
                    )
                keys.add(row[key])


def iter_rows(path: Path, name: str, limits: Limits) -> Iterator[dict[str, Any]]:
    """The checked records of one data file (a JSON list of objects), one at a time.

    ``json.loads`` of a whole file turns 114 MiB of ``{}`` into 4.6 GB of objects; here each
    element is decoded alone from a sliding window, checked, handed on and forgotten, and the
    count is capped, so memory stays at about one record whatever the file holds.
    """
    fields, required = ROW_FIELDS[name], REQUIRED_ROW_FIELDS[name]
    decoder = codecs.getincrementaldecoder("utf-8")()
    buf = ""
    pos = 0
    eof = False
    count = 0

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = f.read(CHUNK_BYTES)
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
                        item, end = JSON_DECODER.raw_decode(buf, pos)
                        break
                    except RecursionError:
                        raise BundleError(f"{name}[{count}] is nested too deeply") from None
                    except ValueError as exc:
                        if len(buf) - pos > limits.max_row_bytes:
                            raise BundleError(
                                f"{name}[{count}] is larger than {format_bytes(limits.max_row_bytes)}"
                            ) from None
                        if not more():
                            raise BundleError(f"{name} is not valid JSON ({str(exc)[:80]})") from None
                if end - pos > limits.max_row_bytes:
                    raise BundleError(f"{name}[{count}] is larger than {format_bytes(limits.max_row_bytes)}")
                pos = end
                count += 1
                if count > limits.max_rows:
                    raise BundleError(f"{name} holds more than {limits.max_rows} records, over the limit")
                if too_deep(item, limits.max_depth):
                    raise BundleError(f"{name}[{count - 1}] is nested more than {limits.max_depth} levels deep")
                yield check_fields(item, fields, required, f"{name}[{count - 1}]")
                sep = skip_ws()
                pos += 1
                if sep == "]":
                    break
                if sep != ",":
                    raise BundleError(f"{name} is not valid JSON (expected ',' or ']' after record {count - 1})")
        if skip_ws() != "":
            raise BundleError(f"{name} is not valid JSON (text after the list)")


def iter_samples(path: Path, limits: Limits) -> Iterator[tuple[str, float, int]]:
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
                if (
                    not math.isfinite(t)
                    or not -INT64_LIMIT // 2 <= value < INT64_LIMIT // 2
                    or not 0 < len(row[1]) <= 200
                ):
                    raise BundleError(f"{SAMPLES} line {reader.line_num}: value out of range")
                if row[1] not in names:
                    if len(names) >= limits.max_series:
                        raise BundleError(f"{SAMPLES} holds more than {limits.max_series} series, over the limit")
                    names.add(row[1])
                yield row[1], t, value
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BundleError(f"{SAMPLES} is not valid CSV ({exc})") from None


def check_capture(i: int, cap: dict[str, Any], files: dict[str, tuple[int, str]]) -> None:
    p = cap.get("path")
    if p is None:
        return
    if not p.startswith(ARTEFACTS) or not any(n == p or n.startswith(p + "/") for n in files):
        raise BundleError(f"captures.json[{i}].path {p[:80]!r} is not a file in the bundle")
