"""Why a ptrace-based tool (py-spy, gdb for heaptrack, memray attach) was refused, in one line.

Why a module: the refusal has four causes (another tracer holds the process, another user's
process, Yama's ``ptrace_scope``, a container without ``SYS_PTRACE``) and each tool's capture
reports it the same way; the checks read ``/proc`` through :mod:`memview.collectors.procfs`.
"""

from __future__ import annotations

import os
import re

from memview.collectors import procfs

_PTRACE_RE = re.compile(
    r"operation not permitted|permission denied|os error 1\b|os error 13|ptrace|eperm", re.IGNORECASE
)


def looks_like_ptrace_refusal(text: str) -> bool:
    return bool(_PTRACE_RE.search(text or ""))


def _status_field(pid: int, key: str) -> str | None:
    return (procfs.status(pid) or {}).get(key)


def ptrace_advice(pid: int, tool: str) -> str:
    """Why ``tool`` may not trace ``pid`` here and how to allow it, in one line."""
    tracer = _status_field(pid, "TracerPid")
    if tracer and tracer != "0":
        name = _status_field(int(tracer), "Name") or "?"
        return (
            f"ptrace refused: PID {pid} is already being traced by {name} (PID {tracer}); only one debugger "
            f"can attach at a time — detach it and capture again"
        )
    parts = [f"ptrace refused: {tool} may not inspect PID {pid}."]
    uid = _status_field(pid, "Uid")
    if uid is not None:
        owner = int(uid.split()[0])
        if owner != os.geteuid():
            parts.append(f"It runs as uid {owner} and memview as uid {os.geteuid()}: run memview as the same user.")
    scope = procfs.ptrace_scope()
    if scope not in (None, "0"):
        parts.append(
            f"kernel.yama.ptrace_scope is {scope}: allow tracing with `sudo sysctl kernel.yama.ptrace_scope=0`."
        )
    # least privilege only: never `setcap cap_sys_ptrace+ep` on the tool (every user could then trace
    # every process); as root, memview already runs the tool with the target's own credentials
    parts.append(
        f"Or run memview as root (`sudo memview attach {pid}`): it then runs {tool} as the target's "
        "own user; in a container, start it with --cap-add SYS_PTRACE."
    )
    return " ".join(parts)
