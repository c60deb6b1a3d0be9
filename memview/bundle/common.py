"""What every part of a trace bundle shares: the layout's names, the limits, the results and the error.

See :mod:`memview.bundle` for the format and why import distrusts every byte.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
CHUNK_BYTES = 1 << 20
INT64_LIMIT = 2**63
#: already-compressed artefacts are stored, not deflated again
STORED_SUFFIXES = (".gz", ".zst", ".xz", ".bz2", ".zip", ".png", ".jpg", ".7z")


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


def is_inside(path: Path, base: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(base)]) == os.path.abspath(base)
    except ValueError:
        return False


def regular_files(root: Path) -> Iterator[Path]:
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
