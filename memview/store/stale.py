"""Leftovers of killed memview processes beside the database: bundle imports' temporary folders.

Why in the store: the folders live beside the database file, and opening the store is the one
moment every memview command passes through, so that is when they are cleared.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from memview.collectors import procfs


def remove_stale_imports(folder: Path) -> list[Path]:
    """Remove the temporary folders of bundle imports whose process is gone (killed mid-import).

    An import unpacks into ``.memview-import-PID-…`` beside the database and removes it when done;
    a SIGKILL leaves it behind, with up to the bundle's size in it. Only folders of this user whose
    PID is not alive are removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".memview-import-"):
            continue
        pid_text = entry.name[len(".memview-import-") :].split("-", 1)[0]
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if pid_text.isdigit() and procfs.alive(int(pid_text)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed
