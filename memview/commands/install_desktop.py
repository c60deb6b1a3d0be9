"""``memview install-desktop [--uninstall] [--prefix DIR]``: put memview in the desktop's app menu.

``pip``/``pipx`` cannot install a desktop entry (a wheel's data files land under the venv, where no
desktop looks), so this command writes the two files a freedesktop menu needs into the user's data
folder ($XDG_DATA_HOME, else ~/.local/share): ``applications/memview.desktop``, whose Exec is the
absolute path of *this* memview (a pipx venv or the one-folder build need not be on the menu's
PATH), and ``icons/hicolor/scalable/apps/memview.svg``. Running it again rewrites the same bytes;
``--uninstall`` removes those two files and nothing else, and only if the .desktop file carries the
key this command writes (so it never deletes an entry someone else made). The menu caches are
refreshed with update-desktop-database and gtk-update-icon-cache when they are installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import click

from memview.commands.common import fail
from memview.resources import DESKTOP, ICON, ResourceMissing, resource_path

MARKER_KEY = "X-Memview-Installed-By"
MARKER = f"{MARKER_KEY}=memview install-desktop"
_TOOL_TIMEOUT_S = 30
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class DesktopInstallError(Exception):
    """Something the user can fix (no memview script found, a foreign file in the way): one line."""


@dataclass(frozen=True)
class Layout:
    """Where the two files go under one data folder (``--prefix`` or $XDG_DATA_HOME)."""

    data_home: Path

    @property
    def desktop_file(self) -> Path:
        return self.data_home / "applications" / DESKTOP

    @property
    def icon_file(self) -> Path:
        return self.data_home / "icons" / "hicolor" / "scalable" / "apps" / ICON


def default_data_home() -> Path:
    """$XDG_DATA_HOME if set to an absolute path (the spec says to ignore a relative one), else ~/.local/share."""
    env = os.environ.get("XDG_DATA_HOME", "")
    return Path(env) if env and os.path.isabs(env) else Path.home() / ".local" / "share"


def memview_executable() -> Path:
    """The absolute path that starts this memview: the frozen app, else the ``memview`` script that ran, else
    the one pip put beside this Python (``python -m memview``), else the first on PATH."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).absolute()
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "memview" and argv0.is_file():
        return argv0.absolute()
    scripts = sysconfig.get_path("scripts")
    found = (scripts and shutil.which("memview", path=scripts)) or shutil.which("memview")
    if found:
        return Path(found).absolute()
    raise DesktopInstallError(
        "cannot find the memview command to put in the menu entry: install memview with "
        "pip or pipx so that a memview script exists"
    )


def _exec_quote(path: str) -> str:
    """One argument of an Exec line (Desktop Entry spec, "The Exec key"), then the string-value escaping."""
    arg = path.replace("%", "%%")
    if any(c in _EXEC_RESERVED for c in arg):
        arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return arg.replace("\\", "\\\\")


def desktop_entry(template: str, executable: Path) -> str:
    """The template with Exec/TryExec pointing at ``executable`` and the marker that --uninstall looks for."""
    lines = []
    for line in template.splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "Exec":
            line = f"Exec={_exec_quote(str(executable))} gui"
        elif key == "TryExec":
            line = "TryExec=" + str(executable).replace("\\", "\\\\")
        elif key == MARKER_KEY:
            continue
        lines.append(line)
    lines.append(MARKER)
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a menu reading the folder never sees half a file
    return True


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace").splitlines()
    except OSError:
        return False


def _refresh_caches(layout: Layout) -> list[str]:
    """Run the cache tools that exist; their failure is a warning (the files are in place either way)."""
    warnings = []
    jobs = [
        ("update-desktop-database", [str(layout.desktop_file.parent)]),
        ("gtk-update-icon-cache", ["-f", "-t", "-q", str(layout.data_home / "icons" / "hicolor")]),
    ]
    for tool, args in jobs:
        exe = shutil.which(tool)
        target = Path(args[-1])
        if exe is None or not target.is_dir():
            continue
        try:
            done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            warnings.append(f"{tool} did not run: {exc}")
            continue
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            warnings.append(f"{tool} failed: {last}")
    return warnings


def install(layout: Layout, executable: Path) -> tuple[list[Path], list[str]]:
    """Write the entry and icon; returns the files that changed and any cache-tool warnings."""
    if layout.desktop_file.exists() and not _ours(layout.desktop_file):
        raise DesktopInstallError(
            f"{layout.desktop_file} exists and was not written by memview install-desktop: move it away first"
        )
    entry = desktop_entry(resource_path(DESKTOP).read_text(), executable)
    changed = []
    if _write_if_changed(layout.icon_file, resource_path(ICON).read_bytes()):
        changed.append(layout.icon_file)
    if _write_if_changed(layout.desktop_file, entry.encode()):
        changed.append(layout.desktop_file)
    return changed, _refresh_caches(layout) if changed else []


def uninstall(layout: Layout) -> tuple[list[Path], list[str]]:
    """Remove the two files if the entry is ours; returns the files removed and any cache-tool warnings."""
    if not layout.desktop_file.exists():
        removed = []
    elif not _ours(layout.desktop_file):
        raise DesktopInstallError(f"{layout.desktop_file} was not written by memview install-desktop: left alone")
    else:
        layout.desktop_file.unlink()
        removed = [layout.desktop_file]
        if layout.icon_file.is_file():
            layout.icon_file.unlink()
            removed.append(layout.icon_file)
    return removed, _refresh_caches(layout) if removed else []


@click.command("install-desktop")
@click.option("--uninstall", "remove", is_flag=True, help="remove the entry and icon this command installed")
@click.option(
    "--prefix",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="data folder to install into (default: $XDG_DATA_HOME, else ~/.local/share)",
)
def install_desktop(remove: bool, prefix: str | None) -> None:
    """Add memview to the desktop's application menu (a .desktop entry and the icon), for this user.

    Run it again after moving memview (e.g. a new pipx venv): the entry points at this memview's path.
    """
    layout = Layout(Path(prefix).expanduser().absolute() if prefix else default_data_home())
    try:
        if remove:
            files, warnings = uninstall(layout)
            verb, none = "removed", "nothing to remove: memview's desktop entry is not installed in"
        else:
            files, warnings = install(layout, memview_executable())
            verb, none = "installed", "already installed, unchanged:"
    except (DesktopInstallError, ResourceMissing) as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(
            f"cannot {'remove' if remove else 'install'} the desktop entry: "
            f"{exc.strerror or exc} ({exc.filename or layout.data_home})",
            1,
        )
    for warning in warnings:
        click.echo(f"memview: warning: {warning}", err=True)
    if not files:
        click.echo(f"{none} {layout.data_home}")
    for path in files:
        click.echo(f"{verb} {path}")
