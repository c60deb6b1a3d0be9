"""Where memview's non-Python files are: the app icon, the .desktop template, the Node.js probe.

The source tree keeps them in the top-level ``resources/`` folder; a wheel carries a copy as the
package data ``memview/_resources`` (setup.py copies it at build time), and the PyInstaller build
puts the same copy beside the frozen package. Everything that reads one of these files asks
``resource_path`` so there is a single place that knows the three layouts.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

ICON = "memview.svg"
DESKTOP = "memview.desktop"
NODE_PROBE = "probe/memview-probe.js"


class ResourceMissing(FileNotFoundError):
    """The install lost a file memview ships (a broken wheel or build): say which and where we looked."""


def _roots() -> list[Path]:
    package = Path(str(files("memview")))  # a real folder for a wheel, an editable install and PyInstaller
    return [package / "_resources", package.parent / "resources"]


def resource_path(name: str) -> Path:
    """The absolute path of the shipped file ``name`` (e.g. ``"memview.svg"``, ``"probe/memview-probe.js"``)."""
    roots = _roots()
    for root in roots:
        candidate = root / name
        if candidate.is_file():
            return candidate
    raise ResourceMissing(
        f"memview's {name} is missing (looked in {', '.join(str(r) for r in roots)}): reinstall memview"
    )
