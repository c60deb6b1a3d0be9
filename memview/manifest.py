"""``profiling/memory.toml``: the cases a batch profile runs, read strictly before anything runs.

Why strict: a CI manifest with a typo (``comand``), a glob that matches nothing or an input that
was renamed must fail loudly at once, with the file and the case named — not profile less than it
claims and pass. Every problem is a :class:`ManifestError` with a one-line message.

The layout (all paths relative to ``root``, which is relative to the manifest's folder)::

    root = ".."                                  # optional; default: the manifest's folder
    [defaults]                                   # optional; any case key except name/command/inputs
    interval = "50ms"
    [[case]]
    name = "python-stress"
    backend = "python"                           # a label: rust, python, node, any, ...
    command = ["python", "extract.py", "{input}"] # argv list, or one string split like a shell would
    inputs = "tests/stress/*.pdf"                # a glob, or a list of paths and globs
    thresholds = ["800MB"]                       # handed to the trigger engine
    captures = ["py-spy-record"]

Commands never go through a shell: a string is split with :func:`shlex.split` and ``{input}`` is
replaced inside each argument, so an input path with spaces stays one argument.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memview.results import NO_INPUT  # the input key of a case whose command takes no input

PLACEHOLDER = "{input}"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_GLOB_CHARS = set("*?[")

_TOP_KEYS = {"root", "defaults", "case"}
_CASE_KEYS = {
    "name",
    "command",
    "backend",
    "inputs",
    "interval",
    "thresholds",
    "captures",
    "repeat",
    "tolerance",
    "timeout",
    "cwd",
    "env",
}
_DEFAULT_KEYS = _CASE_KEYS - {"name", "command", "inputs"}


class ManifestError(Exception):
    """The manifest cannot be used; the message names the file, the case and the key."""


@dataclass(frozen=True, slots=True)
class Case:
    """One named command profiled over each of its inputs."""

    name: str
    command: tuple[str, ...]  # argv template; ``{input}`` is replaced per input
    backend: str
    inputs: tuple[str, ...]  # as written or globbed, relative to root; () when the command takes none
    cwd: Path
    interval: float = 0.05
    thresholds: tuple[str, ...] = ()
    captures: tuple[str, ...] = ()
    repeat: int | None = None
    tolerance: str | None = None
    timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict)

    def input_keys(self) -> list[str]:
        """The inputs this case runs over; ``["-"]`` for a command without ``{input}``."""
        return list(self.inputs) or [NO_INPUT]

    def argv(self, input_key: str) -> list[str]:
        """The command for one input: ``{input}`` replaced inside every argument."""
        if input_key == NO_INPUT:
            return list(self.command)
        return [arg.replace(PLACEHOLDER, input_key) for arg in self.command]


@dataclass(frozen=True, slots=True)
class Manifest:
    path: Path
    root: Path
    cases: tuple[Case, ...]

    def select(self, only: list[str] | tuple[str, ...] | None) -> list[Case]:
        """The cases named in ``only`` (all when empty), in manifest order; unknown names are an error."""
        if not only:
            return list(self.cases)
        names = [c.name for c in self.cases]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ManifestError(
                f"{self.path}: no case named {', '.join(map(repr, unknown))} (cases: {', '.join(names)})"
            )
        return [c for c in self.cases if c.name in only]


def load(path: str | Path) -> Manifest:
    """Read and check a manifest; raises :class:`ManifestError` for anything that would not run."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: invalid TOML: {exc}") from None
    return parse(data, path)


def parse(data: dict[str, Any], path: Path) -> Manifest:
    """Check the decoded TOML of ``path`` and build the manifest (inputs globbed now)."""
    _unknown_keys(data, _TOP_KEYS, f"{path}")
    root_text = data.get("root", ".")
    if not isinstance(root_text, str) or not root_text:
        raise ManifestError(f"{path}: root must be a folder path (a string)")
    root = (path.parent / root_text).resolve()
    if not root.is_dir():
        raise ManifestError(f"{path}: root folder does not exist: {root}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ManifestError(f"{path}: [defaults] must be a table")
    _unknown_keys(defaults, _DEFAULT_KEYS, f"{path}: [defaults]")
    tables = data.get("case")
    if tables is None:
        raise ManifestError(f"{path}: no cases: add at least one [[case]] table with a name and a command")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ManifestError(f"{path}: cases must be [[case]] tables")
    cases: list[Case] = []
    seen: set[str] = set()
    for i, table in enumerate(tables, 1):
        case = _case({**defaults, **table}, root, f"{path}: case {table.get('name', f'#{i}')!r}")
        if case.name in seen:
            raise ManifestError(f"{path}: two cases are named {case.name!r}; names must be unique")
        seen.add(case.name)
        cases.append(case)
    return Manifest(path, root, tuple(cases))


def _case(t: dict[str, Any], root: Path, where: str) -> Case:
    _unknown_keys(t, _CASE_KEYS, where)
    name = t.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ManifestError(f"{where}: name must be letters, digits and _ . + - (got {name!r})")
    command = _command(t.get("command"), where)
    has_placeholder = any(PLACEHOLDER in arg for arg in command)
    inputs = _inputs(t.get("inputs"), root, where)
    if inputs and not has_placeholder:
        raise ManifestError(f"{where}: the case lists inputs but its command has no {PLACEHOLDER} placeholder")
    if has_placeholder and not inputs:
        raise ManifestError(f"{where}: the command uses {PLACEHOLDER} but the case has no inputs")
    backend = t.get("backend", "any")
    if not isinstance(backend, str) or not _NAME_RE.match(backend):
        raise ManifestError(f"{where}: backend must be a label such as rust, python, node or any (got {backend!r})")
    cwd = root / _string(t.get("cwd", "."), "cwd", where)
    if not cwd.is_dir():
        raise ManifestError(f"{where}: cwd does not exist: {cwd}")
    env = t.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ManifestError(f'{where}: env must be a table of strings, e.g. env = {{ RAYON_NUM_THREADS = "4" }}')
    interval = _duration(t.get("interval", 0.05), "interval", where)
    if interval < 0.001:
        raise ManifestError(f"{where}: the shortest interval is 1ms")
    timeout = None if t.get("timeout") is None else _duration(t["timeout"], "timeout", where)
    repeat = t.get("repeat")
    if repeat is not None and (not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1):
        raise ManifestError(f"{where}: repeat must be a whole number >= 1 (got {repeat!r})")
    tolerance = t.get("tolerance")
    if tolerance is not None:
        from memview.tolerance import ToleranceError, parse_tolerance

        try:
            parse_tolerance(tolerance)
        except ToleranceError as exc:
            raise ManifestError(f"{where}: {exc}") from None
    return Case(
        name=name,
        command=tuple(command),
        backend=backend,
        inputs=tuple(inputs),
        cwd=cwd,
        interval=interval,
        thresholds=_strings(t.get("thresholds", []), "thresholds", where),
        captures=_strings(t.get("captures", []), "captures", where),
        repeat=repeat,
        tolerance=tolerance,
        timeout=timeout,
        env=dict(env),
    )


def _command(value: Any, where: str) -> list[str]:
    if value is None:
        raise ManifestError(f'{where}: no command (e.g. command = ["python", "extract.py", "{PLACEHOLDER}"])')
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ManifestError(f"{where}: cannot split the command string ({exc}); use an argv list") from None
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        argv = list(value)
    else:
        raise ManifestError(f"{where}: command must be a list of strings or one string")
    if not argv or not argv[0]:
        raise ManifestError(f"{where}: the command is empty")
    return argv


def _inputs(value: Any, root: Path, where: str) -> list[str]:
    """Paths as written (globs expanded, sorted), relative to root; each must exist or match."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise ManifestError(f"{where}: inputs must be a glob or a non-empty list of paths and globs")
    out: list[str] = []
    for item in items:
        if _GLOB_CHARS & set(item):
            found = sorted(glob.glob(item, root_dir=root, recursive=True))
            if not found:
                raise ManifestError(f"{where}: the glob {item!r} matches no file under {root}")
            out.extend(Path(f).as_posix() for f in found)
        else:
            if not (root / item).exists():
                raise ManifestError(f"{where}: input not found: {item} (under {root})")
            out.append(Path(item).as_posix())
    return list(dict.fromkeys(out))


def _duration(value: Any, key: str, where: str) -> float:
    from memview.units import UnitError, parse_duration

    if isinstance(value, bool):
        raise ManifestError(f"{where}: {key} must be a duration such as 50ms or 2s")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(str(value))
        except UnitError as exc:
            raise ManifestError(f"{where}: {key}: {exc}") from None
    if seconds <= 0:
        raise ManifestError(f"{where}: {key} must be positive")
    return seconds


def _string(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: {key} must be a non-empty string")
    return value


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise ManifestError(f"{where}: {key} must be a string or a list of strings")
    return tuple(i.strip() for i in items)


def _unknown_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(allowed))})"
            raise ManifestError(f"{where}: unknown key {key!r}{hint}")


def case_env(case: Case) -> dict[str, str]:
    """The environment a case runs with: memview's own, plus the case's ``env``."""
    return {**os.environ, **case.env}
