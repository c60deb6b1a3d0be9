"""Which outside tool opens a capture file, decided by what memview knows the file is.

The desktop's MIME guess sends a heaptrack ``.zst`` nowhere and a 90 MB ``.heapsnapshot`` to a
text editor. memview wrote these files, so it knows their kind from their names and maps each to
the tool built for it: heaptrack_gui for heaptrack data, speedscope for py-spy's profile, Chrome
DevTools (Memory → Load) for a heap snapshot, memray's own HTML flame graph for a memray file.
Each opener is an argv (no shell), or the reason it is unavailable and what to install.
"""

from __future__ import annotations

import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Opener:
    """One way to open a capture file outside memview."""

    label: str  # "Open in heaptrack_gui"
    argv: list[str] | None  # None: unavailable (see ``reason``) or done by the desktop (``url``)
    reason: str = ""  # why unavailable, or what the user does next (Chrome's Load dialog)
    url: str | None = None  # a page or file for the desktop's browser
    produces: str | None = None  # a file ``argv`` writes, to open afterwards (memray's HTML)


def file_kind(path: str | Path) -> str | None:
    """``heaptrack``, ``speedscope``, ``heapsnapshot``, ``memray``, ``folded``, ``svg``, or None."""
    name = Path(path).name
    if name.endswith((".zst", ".gz")) and "heaptrack" in name:
        return "heaptrack"
    if name.endswith(".speedscope.json"):
        return "speedscope"
    if name.endswith(".heapsnapshot"):
        return "heapsnapshot"
    if name.endswith(".memray.bin"):
        return "memray"
    if name.endswith(".folded"):
        return "folded"
    if name.endswith(".svg"):
        return "svg"
    return None


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found is None and name == "memray":
        scripts = sysconfig.get_path("scripts")
        found = shutil.which(name, path=scripts) if scripts else None
    return found


def _chrome() -> str | None:
    for name in ("google-chrome", "google-chrome-stable", "chromium", "chromium-browser", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def openers(path: str | Path) -> list[Opener]:
    """The outside tools for ``path``, first the one made for its kind."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "heaptrack":
        gui = shutil.which("heaptrack_gui")
        return [
            Opener("Open in heaptrack_gui", [gui, str(path)])
            if gui
            else Opener("Open in heaptrack_gui", None, "heaptrack_gui is not installed (apt install heaptrack-gui)")
        ]
    if kind in ("speedscope", "folded"):
        tool = shutil.which("speedscope")
        if tool:
            return [Opener("Open in speedscope", [tool, str(path)])]
        return [
            Opener(
                "Open in speedscope",
                None,
                f"speedscope is not installed (npm install -g speedscope), or "
                f"load {path.name} at https://www.speedscope.app",
                url="https://www.speedscope.app",
            )
        ]
    if kind == "heapsnapshot":
        hint = f"in Chrome: DevTools → Memory → Load… → {path}"
        chrome = _chrome()
        if chrome:
            return [
                Opener(
                    "Open in Chrome DevTools",
                    [chrome, "--new-window", "devtools://devtools/bundled/devtools_app.html"],
                    hint,
                )
            ]
        return [Opener("Open in Chrome DevTools", None, f"no Chrome/Chromium found; {hint}")]
    if kind == "memray":
        memray = _which("memray")
        html = path.with_suffix(".html")
        if memray:
            return [
                Opener(
                    "Open memray flame graph",
                    [memray, "flamegraph", "--force", "-o", str(html), str(path)],
                    produces=str(html),
                )
            ]
        return [Opener("Open memray flame graph", None, "memray is not installed (pip install memray)")]
    if kind == "svg":
        return [Opener("Open flame graph (browser)", None, url=path.as_uri())]
    return []
