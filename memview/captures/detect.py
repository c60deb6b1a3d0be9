"""What kind of program a process is, so ``--capture auto`` picks the right tool for it.

Cheap checks first (executable and command names), then the mapped libraries, which catch
programs that embed an interpreter (uwsgi, a PyInstaller binary, electron) under another name.
A wrong "node" would be dangerous (SIGUSR1 kills most programs), so node needs a positive sign.
"""

from __future__ import annotations

import re

from memview.collectors import procfs

_PY_NAME = re.compile(r"^(python|pypy)[0-9.]*[dmu]?$")
_NODE_NAME = re.compile(r"^(node|nodejs)$")


def process_kind(pid: int) -> str:
    """``python``, ``node`` or ``native`` (anything else, heaptrack's domain); ``gone`` if it exited."""
    names = procfs.names(pid)
    if not names:
        return "gone"
    if any(_NODE_NAME.match(n) for n in names):
        return "node"
    if any(_PY_NAME.match(n) for n in names):
        return "python"
    found = procfs.maps_mention(pid, ("libpython", "libnode.so"))
    if found == "libpython":
        return "python"
    if found == "libnode.so":
        return "node"
    return "native"


def descendants(pid: int) -> list[int]:
    """All descendants of ``pid`` (children of every thread, recursively)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in procfs.children(todo.pop()):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out
