"""A static flame graph SVG and the collapsed-stack (``.folded``) form, from a speedscope file.

py-spy writes one format per recording; recording twice would profile two different windows. So
memview keeps py-spy's speedscope file (interactive, opens at speedscope.app) and derives the
rest from it: an SVG (frames stacked root at the bottom, widths proportional to samples, a
tooltip per box) and the ``.folded`` text flamegraph.pl, inferno and speedscope read.
Stdlib only; a few hundred boxes at most, since boxes narrower than a pixel are dropped.

py-spy's speedscope weights are *seconds* (0.01 per sample at 100 Hz), not samples: counting
weights gave tooltips of "0.99 samples" for 99 samples. Here a sample counts 1 and its weight is
kept as time; the title gives the span py-spy actually recorded, not the duration asked for (a
target that exits early ends the recording early).
"""

from __future__ import annotations

import json
import zlib
from html import escape
from pathlib import Path
from typing import Any

WIDTH = 1200
ROW = 16
PAD = 10
MIN_PX = 0.5


class _Node:
    __slots__ = ("children", "name", "seconds", "value")

    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 0.0  # samples
        self.seconds = 0.0
        self.children: dict[str, _Node] = {}

    def add(self, stack: list[str], weight: float, seconds: float = 0.0) -> None:
        node = self
        node.value += weight
        node.seconds += seconds
        for name in stack:
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(name)
            child.value += weight
            child.seconds += seconds
            node = child

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.children.values()), default=0)


def frame_text(frame: dict[str, Any]) -> str:
    """A speedscope frame as ``name (file:line)`` with the file's full path (stacks in summaries)."""
    name = frame.get("name") or "?"
    file = frame.get("file")
    line = frame.get("line")
    return f"{name} ({file}{':' + str(line) if line else ''})" if file else str(name)


def _frame_label(frame: dict[str, Any]) -> str:
    name = frame.get("name") or "?"
    file = frame.get("file")
    if file:
        line = frame.get("line")
        return f"{name} ({Path(file).name}{':' + str(line) if line else ''})"
    return str(name)


def tree_from_speedscope(doc: dict[str, Any]) -> _Node:
    """Merge every profile (one per thread or process) into one tree under a root."""
    frames = [_frame_label(f) for f in doc["shared"]["frames"]]
    root = _Node("all")
    profiles = doc.get("profiles") or []
    for profile in profiles:
        prefix = [profile.get("name") or "profile"] if len(profiles) > 1 else []
        if profile.get("type") == "sampled":
            in_seconds = profile.get("unit") in ("seconds", "milliseconds", "microseconds", "nanoseconds")
            scale = _UNIT_SECONDS.get(profile.get("unit") or "", 0.0)
            weights = profile.get("weights") or [1] * len(profile["samples"])
            for stack, weight in zip(profile["samples"], weights):
                # a sample is one sample whatever its weight; a weight in a time unit is its duration
                root.add(
                    prefix + [frames[i] for i in stack], 1.0 if in_seconds else float(weight), float(weight) * scale
                )
        elif profile.get("type") == "evented":
            _add_evented(root, prefix, frames, profile)
    return root


_UNIT_SECONDS = {"seconds": 1.0, "milliseconds": 1e-3, "microseconds": 1e-6, "nanoseconds": 1e-9}


def recorded_seconds(doc: dict[str, Any]) -> float | None:
    """The span py-spy really sampled (the longest profile's end - start, in seconds), if it says."""
    spans = [
        (p.get("endValue", 0) - p.get("startValue", 0)) * _UNIT_SECONDS[p["unit"]]
        for p in doc.get("profiles") or []
        if p.get("unit") in _UNIT_SECONDS
    ]
    return max(spans) if spans else None


def folded(root: _Node) -> str:
    """Collapsed stacks, one line per distinct stack root first: ``a;b;c 12`` (samples)."""
    lines: list[str] = []

    def walk(node: _Node, path: list[str]) -> None:
        own = node.value - sum(c.value for c in node.children.values())
        if path and own > 0:
            lines.append(f"{';'.join(n.replace(';', ':') for n in path)} {own:g}")
        for child in node.children.values():
            walk(child, [*path, child.name])

    walk(root, [])
    return "\n".join(lines) + "\n"


def _add_evented(root: _Node, prefix: list[str], frames: list[str], profile: dict[str, Any]) -> None:
    stack: list[int] = []
    last = profile.get("startValue", 0)
    for ev in profile.get("events", []):
        at = ev["at"]
        if stack and at > last:
            root.add(prefix + [frames[i] for i in stack], float(at - last))
        last = at
        if ev["type"] == "O":
            stack.append(ev["frame"])
        elif stack:
            stack.pop()


def _colour(name: str) -> str:
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{(h >> 8) % 130 + 80},{(h >> 16) % 55})"


def render(root: _Node, title: str) -> str:
    depth = root.depth()
    height = depth * ROW + 3 * PAD + ROW
    total = root.value or 1.0
    scale = (WIDTH - 2 * PAD) / total
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="11">',
        '<rect width="100%" height="100%" fill="#fdfdf6"/>',
        f'<text x="{WIDTH / 2}" y="{PAD + 11}" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]

    def draw(node: _Node, x: float, level: int) -> None:
        w = node.value * scale
        if w < MIN_PX:
            return
        y = height - PAD - (level + 1) * ROW
        pct = 100.0 * node.value / total
        label = escape(node.name)
        secs = f", {node.seconds:.2f}s" if node.seconds else ""
        out.append(
            f"<g><title>{label} — {node.value:g} samples ({pct:.1f}%{secs})</title>"
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW - 1}" fill="{_colour(node.name)}" rx="2"/>'
        )
        chars = int(w / 7)
        if chars >= 3:
            text = node.name if len(node.name) <= chars else node.name[: chars - 2] + ".."
            out.append(f'<text x="{x + 3:.1f}" y="{y + ROW - 4}">{escape(text)}</text>')
        out.append("</g>")
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, cx, level + 1)
            cx += child.value * scale

    draw(root, PAD, 0)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(speedscope: Path, svg: Path, title: str, folded_path: Path | None = None) -> dict[str, Any]:
    """The SVG (its title followed by the recorded span and sample count) and, if asked, ``.folded``.

    Returns what was drawn: ``samples`` and ``recorded_s``.
    """
    doc = json.loads(Path(speedscope).read_text())
    root = tree_from_speedscope(doc)
    seconds = recorded_seconds(doc)
    span = f"{seconds:.2f}s, " if seconds is not None else ""
    from memview.captures.base import write_private

    write_private(svg, render(root, f"{title}: {span}{root.value:g} samples"))
    if folded_path is not None:
        write_private(folded_path, folded(root))
    return {"samples": int(root.value), "recorded_s": None if seconds is None else round(seconds, 3)}
