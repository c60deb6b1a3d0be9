"""What kind of program a process is, so ``--capture auto`` picks the right tool for it.

Cheap checks first (executable and command names), then the mapped libraries, which catch
programs that embed an interpreter (uwsgi, a PyInstaller binary, electron) under another name.
A wrong "node" would be dangerous (SIGUSR1 kills most programs), so node needs a positive sign.
"""

from __future__ import annotations

import os
import re

_PY_NAME = re.compile(r"^(python|pypy)[0-9.]*[dmu]?$")
_NODE_NAME = re.compile(r"^(node|nodejs)$")


def _names(pid: int) -> list[str]:
    names = []
    try:
        names.append(os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)"))
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/comm") as f:
            names.append(f.read().strip())
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            first = f.read().split(b"\0", 1)[0].decode(errors="replace")
        if first:
            names.append(os.path.basename(first))
    except OSError:
        pass
    return names


def _maps_mention(pid: int, needles: tuple[str, ...]) -> str | None:
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                for needle in needles:
                    if needle in line:
                        return needle
    except OSError:
        return None
    return None


def process_kind(pid: int) -> str:
    """``python``, ``node`` or ``native`` (anything else, heaptrack's domain); ``gone`` if it exited."""
    names = _names(pid)
    if not names:
        return "gone"
    if any(_NODE_NAME.match(n) for n in names):
        return "node"
    if any(_PY_NAME.match(n) for n in names):
        return "python"
    found = _maps_mention(pid, ("libpython", "libnode.so"))
    if found == "libpython":
        return "python"
    if found == "libnode.so":
        return "node"
    return "native"


def descendants(pid: int) -> list[int]:
    """All descendants of ``pid`` (children of every thread, recursively)."""
    from memview.collectors import procfs

    out: list[int] = []
    todo = [pid]
    while todo:
        for child in procfs.children(todo.pop()):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out
