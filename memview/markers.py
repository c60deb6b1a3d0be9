"""Marker lines → :class:`Marker`: the MEMVIEW_FD JSON line protocol and log-line regexes.

Pure functions and small classes, no threads and no I/O: the sources that read lines live in
:mod:`memview.marker_sources`, what a marker does to a session lives in :mod:`memview.phases`.

The protocol is one JSON object per line::

    {"event": "phase_start", "name": "parse"}
    {"event": "phase_end",   "name": "parse"}
    {"event": "mark",        "name": "page 500 done"}

with optional ``"t"`` (Unix time), ``"pid"``, ``"data"`` (a small object) and ``"sync"`` (a token
memview writes back, followed by a newline, once it has handled the line: how the Python probe
makes a phase boundary the program's own moment rather than memview's). Anything else is a
:class:`BadLine` with a one-line reason, never an exception: a program's bug must not become ours.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

START, END, MARK = "phase_start", "phase_end", "mark"
EVENTS = frozenset({START, END, MARK})
MAX_LINE = 64 * 1024  # longer lines are dropped (with a warning): a marker is a few hundred bytes
MAX_NAME = 200
MAX_DATA = 16 * 1024  # serialised size of "data"; larger objects are replaced by a note
#: Only this much of a log line is searched by the phase regexes. A regex search holds the
#: interpreter lock for its whole run, and one 64 KB line of repeated "[MEMORY]" took the preset
#: 28 s (quadratic): the sampler starved and the child ran 150x slower. Marker lines are short.
MAX_REGEX_LINE = 1024


class MarkerError(Exception):
    """A marker source cannot be set up; the message is one line for the user."""


@dataclass(slots=True)
class Marker:
    """One thing a program announced: a phase start or end, or a mark."""

    event: str
    name: str | None
    t: float | None = None  # Unix time the program gave, if any
    pid: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    sync: str | None = None
    via: str = "fd"


@dataclass(slots=True)
class BadLine:
    """A line that is not a marker; ``reason`` is for the user, ``line`` is a short excerpt."""

    reason: str
    line: str


def excerpt(raw: bytes | bytearray | str, limit: int = 80) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
    text = text.rstrip("\r\n")
    return text if len(text) <= limit else text[:limit] + "…"


def parse_json_line(raw: bytes | bytearray, via: str = "fd") -> Marker | BadLine | None:
    """One protocol line (without its newline). None for a blank line, which is ignored."""
    if not raw.strip():
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return BadLine("not JSON", excerpt(raw))
    if not isinstance(obj, dict):
        return BadLine("not a JSON object", excerpt(raw))
    event = obj.get("event")
    if not isinstance(event, str) or event not in EVENTS:  # a list or object is unhashable: test the type first
        return BadLine(
            f"unknown event {excerpt(repr(event), 40)}" if event is not None else 'no "event" key', excerpt(raw)
        )
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        name = str(name)
    if not name and event != END:
        return BadLine(f'{event} without a "name"', excerpt(raw))
    if name is not None and len(name) > MAX_NAME:
        name = name[:MAX_NAME] + "…"
    t = obj.get("t")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
        return BadLine('"t" is not a number (Unix time in seconds)', excerpt(raw))
    pid = obj.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        return BadLine('"pid" is not an integer', excerpt(raw))
    data = obj.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        data = {"value": data}
    if data and len(raw) > MAX_DATA and len(json.dumps(data, default=str)) > MAX_DATA:
        data = {"dropped": f"data larger than {MAX_DATA // 1024} KiB"}
    sync = obj.get("sync")
    return Marker(
        event, name or None, None if t is None else float(t), pid, data, None if sync is None else str(sync)[:64], via
    )


# -- markers from log lines -----------------------------------------------------------------------

_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
}

#: Ready-made regexes for ``--phase-preset``. ``memory-log`` reads lines such as
#: ``[MEMORY] before chunk creation: 123.45 MB RSS``: "before/start X" opens phase X, "after/end X"
#: closes it, any other ``[MEMORY] X: N MB`` line is a mark named X; the figure the program
#: printed is kept in the data as ``reported_bytes``. "MB" is read as the program's own
#: ``rss / 1024 / 1024``, i.e. MiB, which is what psutil-based loggers print.
PRESETS: dict[str, str] = {
    "memory-log": (
        r"\[MEMORY\]\s*"
        r"(?:(?P<start>[Bb]efore|BEFORE|[Ss]tart(?:ing)?|START(?:ING)?|[Bb]egin|BEGIN)\s+"
        r"|(?P<end>[Aa]fter|AFTER|[Ee]nd|END|[Ff]inish(?:ed)?|FINISH(?:ED)?|[Dd]one|DONE)\s+)?"
        r"(?P<name>[^:\n]{0,199}?[^:\s])[ \t]{0,16}:[ \t]{0,16}(?P<value>\d{1,15}(?:\.\d{1,9})?)[ \t]{0,16}"
        r"(?P<unit>[KMG]i?B|[KMG]|B)\b"
    ),
}
#: In the memory-log preset a bare "MB" means MiB (see above); in user regexes units are taken literally.
_PRESET_UNITS = {"memory-log": {"kb": 1024, "mb": 1024**2, "gb": 1024**3}}


#: A timestamp near the start of a log line (``logging``'s ``asctime``, ISO 8601): it places the
#: boundary at the moment the program printed the line, not when memview read it.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?[ \t]?(Z|[+-]\d{2}:?\d{2})?"
)


def line_time(line: str) -> float | None:
    """Unix time of a timestamp in the first 64 characters of ``line``; a time without a zone is local
    (``logging``'s default). None when there is none or it is not a real date."""
    m = _TIMESTAMP.search(line, 0, 64 + 35)
    if m is None or m.start() > 64:
        return None
    import datetime

    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    try:
        if zone is None:
            dt = datetime.datetime(y, mo, d, h, mi, sec).astimezone()  # local time
        else:
            offset = (
                datetime.timedelta(0)
                if zone == "Z"
                else datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:])) * (1 if zone[0] == "+" else -1)
            )
            dt = datetime.datetime(y, mo, d, h, mi, sec, tzinfo=datetime.timezone(offset))
    except (ValueError, OverflowError):
        return None
    return dt.timestamp() + frac


class RegexError(ValueError):
    """A --phase-regex that cannot be used; the message says why."""


class RegexMarkers:
    """Turns log lines into markers with named groups: ``start``, ``end``, ``name``, ``value``/``unit``.

    A line matching a regex is a phase start if the ``start`` group took part, an end if ``end``
    did, else a mark. The name is the ``name`` group, else the ``start``/``end`` group's text, else
    the whole match (an end without a name closes the innermost phase). ``value`` with an optional
    ``unit`` (B, KB, MB, GB, KiB, MiB, GiB) becomes ``data["reported_bytes"]``. The first regex
    that matches a line wins.
    """

    def __init__(self, patterns: list[str] | tuple[str, ...] = (), presets: list[str] | tuple[str, ...] = ()) -> None:
        self._rules: list[tuple[re.Pattern[str], dict[str, int]]] = []
        for preset in presets:
            if preset not in PRESETS:
                raise RegexError(f"unknown phase preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
            self._rules.append((re.compile(PRESETS[preset]), _UNITS | _PRESET_UNITS.get(preset, {})))
        for pattern in patterns:
            try:
                rx = re.compile(pattern)
            except re.error as exc:
                raise RegexError(f"--phase-regex {pattern!r} is not a valid regex: {exc}") from None
            if not {"start", "end", "name"} & set(rx.groupindex):
                raise RegexError(
                    f"--phase-regex {pattern!r} needs a named group: (?P<start>…), (?P<end>…) or (?P<name>…)"
                )
            self._rules.append((rx, _UNITS))

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, line: str, via: str = "log") -> Marker | None:
        """The marker a log line announces, if any; only its first :data:`MAX_REGEX_LINE` characters are read."""
        line = line[:MAX_REGEX_LINE]
        for rx, units in self._rules:
            m = rx.search(line)
            if m is None:
                continue
            groups = m.groupdict()
            if groups.get("start") is not None:
                event, role = START, "start"
            elif groups.get("end") is not None:
                event, role = END, "end"
            else:
                event, role = MARK, None
            name = groups.get("name")
            if not name and role is not None and "name" not in groups:
                name = groups.get(role)
            if not name and event == MARK:
                name = m.group(0)
            name = (name or "").strip()[:MAX_NAME] or None
            if name is None and event == START:
                name = "phase"
            data: dict[str, Any] = {"line": excerpt(line, 200)}
            value = _bytes(groups.get("value"), groups.get("unit"), units)
            if value is not None:
                data["reported_bytes"] = value
            return Marker(event, name, line_time(line), None, data, None, via)
        return None


def _bytes(value: str | None, unit: str | None, units: dict[str, int]) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return round(number * units.get((unit or "b").lower(), 1))
