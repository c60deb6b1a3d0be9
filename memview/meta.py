"""Session metadata: where and with what a run happened (the profiling plan's must-haves).

The slow part (``node --version``) runs in a background thread so it never delays the first
sample of a launched child.

The git commit of the working folder is *read*, never asked of ``git``: a repository's own
configuration runs commands through the shell (``core.fsmonitor`` on ``git status``, clean
filters, hooks), and the folder memview is started in may be anybody's checkout. So
:func:`git_commit` follows ``.git`` / ``HEAD`` / the ref file / ``packed-refs`` by hand, accepting
only what a ref can be; no process is started and nothing the repository says is executed.
Whether the tree is dirty cannot be known without hashing files as git would (which is where
the configured commands run), so it is not recorded.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import stat
import subprocess
import sys
import threading
from typing import Any

from memview import __version__


def _quiet(argv: list[str], cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


_HEX = frozenset("0123456789abcdef")
_MAX_READ = 1 << 20


def _read(path: str) -> str | None:
    """A small text file of the repository, or None (missing, too big, not a regular file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO named HEAD must not hang us
            return None
        data = os.read(fd, _MAX_READ)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def _object_id(text: str | None) -> str | None:
    value = (text or "").strip().lower()
    return value if len(value) in (40, 64) and set(value) <= _HEX else None


def _git_dir(start: str) -> tuple[str, str] | None:
    """(git dir, common dir) of the repository holding ``start``: a ``.git`` folder, or a ``.git``
    file (``gitdir: …``, worktrees and submodules) whose ``commondir`` names the shared one."""
    here = os.path.abspath(start)
    while True:
        dot = os.path.join(here, ".git")
        if os.path.isdir(dot):
            git_dir = dot
            break
        if os.path.isfile(dot):
            text = _read(dot) or ""
            if not text.startswith("gitdir:"):
                return None
            git_dir = os.path.normpath(os.path.join(here, text[len("gitdir:") :].strip()))
            break
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
    common = git_dir
    rel = _read(os.path.join(git_dir, "commondir"))
    if rel:
        common = os.path.normpath(os.path.join(git_dir, rel.strip()))
    return git_dir, common


_BAD_REF_CHARS = frozenset(" ~^:?*[\\\0")


def _valid_ref(name: str) -> bool:
    parts = name.split("/")
    return (
        name.startswith("refs/")
        and len(name) < 512
        and ".." not in name
        and all(p and not p.startswith(".") for p in parts)
        and not _BAD_REF_CHARS & set(name)
    )


def git_commit(cwd: str) -> str | None:
    """The commit ``HEAD`` names in the repository holding ``cwd``, read from files; None if unknown."""
    found = _git_dir(cwd)
    if found is None:
        return None
    git_dir, common = found
    head = (_read(os.path.join(git_dir, "HEAD")) or "").strip()
    if not head.startswith("ref:"):
        return _object_id(head)  # a detached HEAD holds the id itself
    ref = head[4:].strip()
    for _ in range(5):  # a symbolic ref may point at another
        if not _valid_ref(ref):
            return None
        text = None
        for base in (git_dir, common):
            text = _read(os.path.join(base, *ref.split("/")))
            if text is not None:
                break
        if text is None:
            break
        text = text.strip()
        if text.startswith("ref:"):
            ref = text[4:].strip()
            continue
        return _object_id(text)
    packed = _read(os.path.join(common, "packed-refs")) or ""
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref:
            return _object_id(sha)
    return None


def collect(cwd: str) -> dict[str, Any]:
    """Host, platform, Python, node, git commit of ``cwd`` (read, never run), memview version."""
    meta: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "memview": __version__,
        "node": None,
        "git_sha": None,
    }
    if shutil.which("node"):
        meta["node"] = _quiet(["node", "--version"])
    try:
        meta["git_sha"] = git_commit(cwd)
    except (OSError, ValueError):  # metadata must never fail a session
        pass
    try:
        import psutil

        meta["total_memory_bytes"] = psutil.virtual_memory().total
    except Exception:  # metadata must never fail a session
        pass
    return meta


class MetaCollector(threading.Thread):
    """Collects :func:`collect` in the background; ``result()`` waits for it."""

    def __init__(self, cwd: str) -> None:
        super().__init__(name="memview-meta", daemon=True)
        self.cwd = cwd
        self._meta: dict[str, Any] = {}

    def run(self) -> None:
        self._meta = collect(self.cwd)

    def result(self, timeout: float = 10.0) -> dict[str, Any]:
        self.join(timeout)
        return dict(self._meta)
