"""Importing a checked bundle: its session written through :meth:`memview.store.Store.import_session`
in one transaction, artefacts moved into place after the commit; and :func:`read_manifest`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from memview.bundle.common import (
    ARTEFACTS,
    IMPORT_PREFIX,
    MANIFEST,
    SAMPLES,
    BundleError,
    ImportResult,
    Limits,
    regular_files,
)
from memview.bundle.manifest import check_entry, parse_manifest
from memview.bundle.safezip import (
    CheckedBundle,
    check_capture,
    iter_rows,
    iter_samples,
    open_zip,
    read_entries,
    stream_member,
)
from memview.store import Store


def _rows(
    checked: CheckedBundle, artefact_root: Callable[[int], Path]
) -> Callable[[int], Iterator[tuple[str, dict[str, Any]]]]:
    """The bundle's rows for :meth:`Store.import_session`, each checked as it streams (a bad one raises
    BundleError inside the transaction, which rolls it back); capture paths point at the session's folder."""

    def rows(sid: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, table in (
            ("series.json", "series"),
            ("processes.json", "processes"),
            ("phases.json", "phases"),
            ("events.json", "events"),
        ):
            for row in iter_rows(checked.folder / name, name, checked.limits):
                yield table, row
        root = artefact_root(sid)
        for i, row in enumerate(iter_rows(checked.folder / "captures.json", "captures.json", checked.limits)):
            check_capture(i, row, checked.manifest.files)
            row = dict(row)
            if row.get("path"):
                row["path"] = str(root / row["path"][len(ARTEFACTS) :])
            yield "captures", row

    return rows


def _write(store: Store, checked: CheckedBundle, artefact_root: Callable[[int], Path]) -> int:
    """Insert the checked session in one transaction, streaming its files; returns the new id.

    A record that fails its check half-way raises a BundleError; the transaction is rolled back,
    so the database is as it was.
    """
    session = dict(checked.manifest.session)
    if session["status"] == "running":
        session["status"] = "interrupted"
    return store.import_session(
        session, iter_samples(checked.folder / SAMPLES, checked.limits), _rows(checked, artefact_root)
    )


def _move_artefacts(src: Path, dest: Path) -> int:
    moved = 0
    for f in regular_files(src):
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
            checked = read_entries(path, tmp, limits)
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
                raise BundleError(
                    f"imported as session {sid}, but its artefacts could not be moved into place: {exc.strerror}"
                ) from None
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
        with open_zip(path, limits) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if MANIFEST not in infos:
                raise BundleError("not a memview bundle (no manifest.json)")
            info = infos[MANIFEST]
            check_entry(info, limits)
            buf = bytearray()
            stream_member(zf, info, min(limits.max_manifest_bytes, info.file_size), limits, buf.extend)
        return parse_manifest(bytes(buf)).raw
    except BundleError as exc:
        raise BundleError(f"{path.name}: {exc}") from None
