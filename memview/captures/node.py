"""Node.js heap snapshots: by node's own signal when it was started for that, else over its inspector.

**Signal**: a node started with ``--heapsnapshot-signal=SIG`` (on its command line or in
``NODE_OPTIONS``) writes ``Heap.<date>.<time>.<pid>.<tid>.<seq>.heapsnapshot`` into its working
directory (or ``--diagnostic-dir``) when sent SIG. The file exists from the first byte, so it is
complete when node no longer holds it open; memview then moves it into the session's folder.

**Inspector** (only with ``--node-inspector``, or when the inspector is already open): by
default memview refuses, because any local user can connect to a TCP port on 127.0.0.1 and run
code in the target while it is open (a ``nobody`` process did, in a root-owned node, during a
capture). SIGUSR1 makes a running node listen on 127.0.0.1 (port 9229, or ``--inspect-port``;
``memview run`` sets ``--inspect-port=0`` so a busy 9229 cannot get in the way). memview finds the
port among the process's own listening sockets, asks ``/json/list`` for the WebSocket URL, runs
``HeapProfiler.takeHeapSnapshot`` and streams the chunks to disk. While it is open anyone on this
machine can run code in that process, so memview closes it right after (``process._debugEnd()``)
and checks the port is gone — unless the inspector was already open before memview came.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

from memview.captures import heapsnapshot
from memview.captures.base import CaptureContext, CaptureError
from memview.captures.detect import process_kind
from memview.captures.devtools import DevTools, DevToolsError, targets
from memview.collectors import procfs
from memview.model import Capture

DEFAULT_INSPECT_PORT = 9229
OPEN_WAIT = 2.0
_CLOSE_EXPR = (
    "typeof process._debugEnd === 'function' ? process._debugEnd() "
    ": process.mainModule && process.mainModule.require('inspector').close()"
)


# -- reading node's options --------------------------------------------------------------------------


def node_options(pid: int) -> list[str]:
    """Node's own options: the command line up to the script, then NODE_OPTIONS from its environment."""
    opts: list[str] = []
    for arg in (procfs.cmdline(pid) or [])[1:]:
        if not arg.startswith("-"):
            break  # the script: what follows are its own arguments
        opts.append(arg)
    opts.extend((procfs.environ_value(pid, "NODE_OPTIONS") or "").split())
    return opts


def _option(opts: list[str], name: str) -> str | None:
    value = None
    for i, opt in enumerate(opts):
        if opt.startswith(name + "="):
            value = opt.split("=", 1)[1]
        elif opt == name and i + 1 < len(opts):
            value = opts[i + 1]
    return value


def snapshot_signal(pid: int) -> int | None:
    """The signal node was told to write a heap snapshot on, if any."""
    value = _option(node_options(pid), "--heapsnapshot-signal")
    if not value:
        return None
    name = value.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None


def inspect_port(pid: int) -> int:
    """The port SIGUSR1 will open the inspector on (``--inspect-port``, else 9229)."""
    opts = node_options(pid)
    for name in ("--inspect-port", "--debug-port", "--inspect", "--inspect-brk"):
        value = _option(opts, name)
        if value:
            port = value.rsplit(":", 1)[-1]
            if port.isdigit():
                return int(port)
    return DEFAULT_INSPECT_PORT


def _diagnostic_dir(pid: int) -> Path:
    value = _option(node_options(pid), "--diagnostic-dir")
    cwd = procfs.cwd(pid)
    if cwd is None:
        raise OSError(f"cannot read the working directory of PID {pid}")
    if value:
        return cwd / value
    return cwd


# -- the capture ------------------------------------------------------------------------------------


def snapshot(ctx: CaptureContext, capture: Capture) -> None:
    """A ``.heapsnapshot`` of ``ctx.pid`` that Chrome DevTools (Memory tab → Load) opens."""
    kind = process_kind(ctx.pid)
    if kind == "gone":
        raise CaptureError(f"PID {ctx.pid} exited before its heap snapshot", status="exited")
    if kind != "node":
        raise CaptureError(f"PID {ctx.pid} is not a node process ({kind}); no heap snapshot taken")
    sig = snapshot_signal(ctx.pid)
    out = ctx.path(".heapsnapshot")
    if sig is not None:
        capture.data["method"] = f"signal {signal.Signals(sig).name}"
        _via_signal(ctx, sig, out)
    else:
        already = _inspector_ports(ctx.pid, listening_ports(ctx.pid))
        if not already and not ctx.allow_inspector:
            raise CaptureError(refusal(ctx.pid), status="refused")
        capture.data["method"] = "inspector"
        capture.data.update(_via_inspector(ctx, out))
    ctx.keep(out)
    if not _looks_complete(out):
        capture.status = "partial"
        ctx.notes.append("the heap snapshot file is not complete JSON")
        return
    capture.data["distorts"] = True  # node paused for the snapshot and grew by its own bookkeeping
    previous = next((p for p in reversed(ctx.previous) if p.suffix == ".heapsnapshot" and p.exists()), None)
    try:
        capture.data["summary"] = heapsnapshot.summarise(out, previous).as_dict()
    except (OSError, ValueError, KeyError, IndexError, MemoryError) as exc:
        ctx.notes.append(f"the heap snapshot could not be summarised ({exc!r})")


def refusal(pid: int) -> str:
    """Why memview will not open node's inspector by itself, and the two ways forward, in one line."""
    return (
        f"no heap snapshot of PID {pid}: node was not started with --heapsnapshot-signal, and opening its "
        "inspector on 127.0.0.1 would let any local user run code in it; restart it with "
        "NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2 (memview run does this), or pass --node-inspector "
        "to accept that risk"
    )


def _looks_complete(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            start = f.read(16)
            f.seek(max(0, path.stat().st_size - 16))
            end = f.read().rstrip()
    except OSError:
        return False
    return start.lstrip().startswith(b"{") and end.endswith(b"}")


def _via_signal(ctx: CaptureContext, sig: int, out: Path) -> None:
    folder = _diagnostic_dir(ctx.pid)
    pattern = re.compile(rf"^Heap\.\d+\.\d+\.{ctx.pid}\.\d+\.\d+\.heapsnapshot$")

    def found() -> set[Path]:
        try:
            return {folder / n for n in os.listdir(folder) if pattern.match(n)}
        except OSError:
            return set()

    before = found()
    os.kill(ctx.pid, sig)
    while True:
        new = sorted(found() - before)
        if new and not procfs.holds_open(ctx.pid, new[0]) and new[0].stat().st_size > 0:
            shutil.move(str(new[0]), out)
            return
        if not procfs.alive(ctx.pid):
            if new and new[0].exists() and new[0].stat().st_size > 0:
                shutil.move(str(new[0]), out)
                return
            raise CaptureError(f"PID {ctx.pid} exited before writing its heap snapshot", status="exited")
        if ctx.remaining() <= 0:
            where = f" ({new[0]}, still being written)" if new else f" (nothing appeared in {folder})"
            raise CaptureError(
                f"node did not finish its heap snapshot within {ctx.time_limit:g}s{where}", status="timeout"
            )
        time.sleep(0.05)


def listening_ports(pid: int) -> set[int]:
    import psutil

    try:
        proc = psutil.Process(pid)
        conns = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
    except psutil.Error:
        return set()
    return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}


def _port_holder(port: int) -> str:
    import psutil

    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN:
                if c.pid:
                    try:
                        return f"{psutil.Process(c.pid).name()} (PID {c.pid})"
                    except psutil.Error:
                        return f"PID {c.pid}"
                return "another process"
    except psutil.Error:
        pass
    return "another process"


def _inspector_ports(pid: int, ports: set[int]) -> list[tuple[int, str]]:
    out = []
    for port in sorted(ports):
        try:
            for target in targets("127.0.0.1", port, timeout=1.0):
                url = target.get("webSocketDebuggerUrl")
                if url:
                    out.append((port, url))
                    break
        except DevToolsError:
            continue
    return out


def _via_inspector(ctx: CaptureContext, out: Path) -> dict[str, object]:
    pid = ctx.pid
    already = _inspector_ports(pid, listening_ports(pid))
    opened = not already
    if already:
        port, url = already[0]
    else:
        before = listening_ports(pid)
        os.kill(pid, signal.SIGUSR1)
        port, url = _wait_inspector(ctx, before)
    info: dict[str, object] = {"inspector_port": port, "inspector_opened_by_memview": opened}
    try:
        tools = DevTools(url, timeout=min(5.0, max(ctx.remaining(), 0.1)))
    except DevToolsError as exc:
        if opened:
            _close_inspector(ctx, port, url, None)
        raise CaptureError(f"cannot talk to node's inspector on port {port}: {exc}") from None
    try:
        out.unlink(missing_ok=True)
        with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "w") as f:

            def on_event(method: str, params: dict[str, object]) -> None:
                if method == "HeapProfiler.addHeapSnapshotChunk":
                    f.write(str(params["chunk"]))

            tools.call(
                "HeapProfiler.takeHeapSnapshot", {"reportProgress": False}, deadline=ctx.deadline, on_event=on_event
            )
    except TimeoutError:
        raise CaptureError(
            f"node's heap snapshot did not finish within {ctx.time_limit:g}s", status="timeout"
        ) from None
    except (DevToolsError, OSError) as exc:
        status = "exited" if not procfs.alive(pid) else "failed"
        raise CaptureError(f"heap snapshot over the inspector failed: {exc}", status=status) from None
    finally:
        if opened:
            info["inspector_closed"] = _close_inspector(ctx, port, url, tools)
            if not info["inspector_closed"]:
                ctx.notes.append(f"node's inspector is still listening on 127.0.0.1:{port}")
        else:
            tools.close()
    return info


def _wait_inspector(ctx: CaptureContext, before: set[int]) -> tuple[int, str]:
    pid = ctx.pid
    deadline = time.monotonic() + min(OPEN_WAIT, ctx.remaining())
    while time.monotonic() < deadline:
        new = listening_ports(pid) - before
        if new:
            found = _inspector_ports(pid, new)
            if found:
                return found[0]
        if not procfs.alive(pid):
            raise CaptureError(f"PID {pid} exited before its inspector opened", status="exited")
        time.sleep(0.02)
    port = inspect_port(pid)
    holder = _port_holder(port)
    if holder != "another process" or port in _all_listening():
        raise CaptureError(
            f"node could not open its inspector: 127.0.0.1:{port} is in use by {holder}. Start node with "
            f"--inspect-port=0 (any free port) or --heapsnapshot-signal=SIGUSR2 (memview run sets the former)"
        )
    raise CaptureError(f"node did not open its inspector within {OPEN_WAIT:g}s of SIGUSR1 (port {port})")


def _all_listening() -> set[int]:
    import psutil

    try:
        return {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr}
    except psutil.Error:
        return set()


def _close_inspector(ctx: CaptureContext, port: int, url: str, tools: DevTools | None) -> bool:
    """Close the inspector memview opened; True once the port no longer listens."""
    try:
        if tools is None:
            tools = DevTools(url, timeout=2.0)
        tools.send("Runtime.evaluate", {"expression": _CLOSE_EXPR})
        until = time.monotonic() + 1.0
        while tools.ws.recv_text(until) is not None:  # node closes the session as the inspector ends
            pass
    except (DevToolsError, OSError, TimeoutError):
        pass
    finally:
        if tools is not None:
            tools.close()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if port not in listening_ports(ctx.pid):
            return True
        time.sleep(0.02)
    return port not in listening_ports(ctx.pid)
