"""``heaptrack_print`` output read into memview's site summary (:mod:`memview.captures.sites`).

heaptrack's own reader does the hard part (symbols, inlined frames, merging); memview parses its
text, which is stable across 1.x: a header per section (``PEAK MEMORY CONSUMERS``, ``MEMORY
LEAKS``, ``MOST TEMPORARY ALLOCATIONS``, ``MOST CALLS TO ALLOCATION FUNCTIONS``), then one block
per location::

    33.55M peak memory consumed over 20 calls from
    spike_buffer
      at /src/leak_spike.c:16
      in /usr/bin/leak_spike

followed by the indented backtraces of its callers (skipped). Sizes are decimal (``33.55M`` is
33,550,000 bytes, heaptrack's rounding of 33,554,432), so a parsed size is within 0.05 % of the
true one. The flame graph stacks come from ``-F`` (folded, root first, exact byte counts).
"""

from __future__ import annotations

import re
from pathlib import Path

from memview.captures.sites import Site, Summary

SECTIONS = {
    "PEAK MEMORY CONSUMERS": "peak",
    "MEMORY LEAKS": "leaked",
    "MOST TEMPORARY ALLOCATIONS": "temporary",
    "MOST CALLS TO ALLOCATION FUNCTIONS": "calls",
}
_SIZE = r"([\d.]+)([KMGTP]?)B?"
_HEAD = {
    "peak": re.compile(rf"^{_SIZE} peak memory consumed over (\d+) calls from$"),
    "leaked": re.compile(rf"^{_SIZE} leaked over (\d+) calls from$"),
    "calls": re.compile(rf"^(\d+) calls to allocation functions with {_SIZE} peak consumption from$"),
    "temporary": re.compile(r"^(\d+) temporary allocations of (\d+) allocations in total .* from$"),
}
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_TOTALS = {
    "peak heap memory consumption": "peak_heap",
    "total memory leaked": "leaked",
    "peak RSS (including heaptrack overhead)": "peak_rss",
}


def size(number: str, suffix: str) -> int:
    """``33.55`` ``M`` → 33,550,000 (heaptrack prints decimal units)."""
    return round(float(number) * _SCALE[suffix])


def parse(text: str) -> tuple[dict[str, list[Site]], dict[str, int]]:
    """The sites of each section, and the totals at the end (``peak_heap``, ``leaked``, ``peak_rss``)."""
    tables: dict[str, list[Site]] = {name: [] for name in SECTIONS.values()}
    totals: dict[str, int] = {}
    section: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line in SECTIONS:
            section = SECTIONS[line]
        elif ":" in line and not line.startswith(" "):
            key, _, value = line.partition(":")
            m = re.match(rf"^\s*{_SIZE}$", value)
            if key in _TOTALS and m:
                totals[_TOTALS[key]] = size(m.group(1), m.group(2))
        elif section is not None and line and not line.startswith(" "):
            m = _HEAD[section].match(line)
            if m and i + 1 < len(lines):
                site = _site(section, m, lines, i + 1)
                if site is not None:
                    tables[section].append(site)
        i += 1
    return tables, totals


def _site(section: str, m: re.Match[str], lines: list[str], at: int) -> Site | None:
    function = lines[at].strip()
    file, line = "", None
    if at + 1 < len(lines) and lines[at + 1].startswith("  at "):
        where = lines[at + 1][5:].strip()
        path, _, number = where.rpartition(":")
        if number.isdigit():
            file, line = path, int(number)
        else:
            file = where
    elif at + 1 < len(lines) and lines[at + 1].startswith("  in "):
        file = lines[at + 1][5:].strip()
    if section in ("peak", "leaked"):
        return Site(function, file, line, size(m.group(1), m.group(2)), int(m.group(3)))
    if section == "calls":
        return Site(function, file, line, size(m.group(2), m.group(3)), int(m.group(1)))
    return Site(function, file, line, 0, int(m.group(1)))  # temporary: a count, not bytes


def folded_stacks(path: Path) -> list[tuple[list[str], int]]:
    """``heaptrack_print -F`` lines (``a (f.c);b (g.c); 1234``) as (frames root first, bytes)."""
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        stack, _, weight = line.rpartition(" ")
        if weight.isdigit() and int(weight) > 0:
            out.append(([f for f in stack.rstrip(";").split(";") if f], int(weight)))
    return out


def summary(text: str, stacks: list[tuple[list[str], int]]) -> Summary:
    """The site summary of one heaptrack file: ``peak`` first, then leaks, temporary, calls."""
    tables, totals = parse(text)
    out = Summary(
        kind="heaptrack",
        headline="peak",
        tables={k: v for k, v in tables.items() if v},
        stacks=stacks,
        peak_bytes=totals.get("peak_heap"),
    )
    if "leaked" in totals:
        out.notes.append(f"{totals['leaked']} bytes leaked in all")
    return out
