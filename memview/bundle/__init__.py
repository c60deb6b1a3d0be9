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

from memview.bundle.common import (
    ARTEFACTS,
    DATA_FILES,
    FORMAT,
    MANIFEST,
    SAMPLES,
    TRACE,
    VERSION,
    BundleError,
    ExportResult,
    ImportResult,
    Limits,
)
from memview.bundle.export import export_session
from memview.bundle.importer import import_bundle, read_manifest
from memview.bundle.manifest import loads_strict, parse_manifest, visible

__all__ = [
    "ARTEFACTS",
    "BundleError",
    "DATA_FILES",
    "ExportResult",
    "FORMAT",
    "ImportResult",
    "Limits",
    "MANIFEST",
    "SAMPLES",
    "TRACE",
    "VERSION",
    "export_session",
    "import_bundle",
    "loads_strict",
    "parse_manifest",
    "read_manifest",
    "visible",
]
