"""A V8 ``.heapsnapshot`` read into memview's site summary: constructors by self and retained size.

A snapshot is a graph in flat arrays (``nodes``, ``edges``, ``strings``, described by
``snapshot.meta``). Like Chrome DevTools' *Summary* view, nodes are grouped by constructor: an
``object`` by its name (the class), every other type under ``(type)`` (``(string)``,
``(array)``, ``(compiled code)``…). Self size is each node's own; retained size is what would be
freed with it: its subtree in the dominator tree (computed here with the iterative algorithm of
Cooper, Harvey and Kennedy over the strong edges from the root). A constructor's retained size is
the sum over its objects that are not dominated by another object of the same constructor, so
nested instances are not counted twice.

Two snapshots of one process give the difference (``growth``): which constructors gained bytes
and objects between them — the usual grow → snapshot → grow → snapshot hunt, done for the user.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memview.captures.sites import Site, Summary

#: above this many nodes the dominator tree is skipped (pure Python; seconds per million nodes)
MAX_RETAINED_NODES = 1_000_000
_GROUPED_BY_NAME = {"object", "native"}  # a closure is "(closure)", as in DevTools
_TYPE_LABEL = {
    "code": "(compiled code)",
    "hidden": "(system)",
    "synthetic": "(synthetic)",
    "concatenated string": "(concatenated string)",
    "sliced string": "(sliced string)",
}


class Graph:
    """The parts of a snapshot needed here, as plain lists."""

    def __init__(self, doc: dict[str, Any]) -> None:
        meta = doc["snapshot"]["meta"]
        nf, ef = meta["node_fields"], meta["edge_fields"]
        self.strings: list[str] = doc["strings"]
        node_types: list[str] = meta["node_types"][0]
        edge_types: list[str] = meta["edge_types"][0]
        nodes: list[int] = doc["nodes"]
        edges: list[int] = doc["edges"]
        step, estep = len(nf), len(ef)
        it, iname, isize, iedges = nf.index("type"), nf.index("name"), nf.index("self_size"), nf.index("edge_count")
        ietype, ito = ef.index("type"), ef.index("to_node")
        self.n = len(nodes) // step
        self.types = [node_types[t] for t in nodes[it::step]]
        self.names = nodes[iname::step]
        self.self_size = nodes[isize::step]
        weak = edge_types.index("weak") if "weak" in edge_types else -1
        shortcut = edge_types.index("shortcut") if "shortcut" in edge_types else -1
        self.children: list[list[int]] = []
        e = 0
        for count in nodes[iedges::step]:
            kids = []
            for k in range(e, e + count * estep, estep):
                if edges[k + ietype] not in (weak, shortcut):
                    kids.append(edges[k + ito] // step)
            self.children.append(kids)
            e += count * estep

    def constructor(self, i: int) -> str:
        kind = self.types[i]
        if kind in _GROUPED_BY_NAME:
            return self.strings[self.names[i]] or f"({kind})"
        return _TYPE_LABEL.get(kind, f"({kind})")


def dominators(g: Graph, root: int = 0) -> tuple[list[int], list[int]]:
    """(immediate dominator of each node, -1 if unreachable; reachable nodes in reverse postorder)."""
    order: list[int] = []
    seen = [False] * g.n
    seen[root] = True
    stack = [(root, 0)]
    while stack:  # iterative DFS, postorder
        node, k = stack[-1]
        kids = g.children[node]
        if k < len(kids):
            stack[-1] = (node, k + 1)
            child = kids[k]
            if not seen[child]:
                seen[child] = True
                stack.append((child, 0))
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    # work in reverse-postorder numbers: "is a above b" is then a plain integer comparison
    rpo = [-1] * g.n
    for pos, node in enumerate(order):
        rpo[node] = pos
    preds: list[list[int]] = [[] for _ in order]
    for pos, node in enumerate(order):
        for child in g.children[node]:
            preds[rpo[child]].append(pos)
    dom = [-1] * len(order)
    dom[0] = 0
    changed = True
    while changed:
        changed = False
        for pos in range(1, len(order)):
            new = -1
            for p in preds[pos]:
                if dom[p] == -1:
                    continue
                if new == -1:
                    new = p
                    continue
                a, b = p, new
                while a != b:
                    while a > b:
                        a = dom[a]
                    while b > a:
                        b = dom[b]
                new = a
            if dom[pos] != new:
                dom[pos] = new
                changed = True
    idom = [-1] * g.n
    for pos, node in enumerate(order):
        idom[node] = order[dom[pos]]
    return idom, order


def constructors(path: Path) -> tuple[dict[str, list[int]], int, list[str]]:
    """Per constructor [self bytes, count, retained bytes]; the heap's total self size; notes."""
    with open(path, "rb") as f:
        g = Graph(json.load(f))
    table: dict[str, list[int]] = {}
    names = [g.constructor(i) for i in range(g.n)]
    for i in range(g.n):
        row = table.setdefault(names[i], [0, 0, 0])
        row[0] += g.self_size[i]
        row[1] += 1
    notes = []
    if g.n <= MAX_RETAINED_NODES:
        idom, order = dominators(g)
        retained = list(g.self_size)
        for node in reversed(order[1:]):
            retained[idom[node]] += retained[node]
        for node in order[1:]:
            up, own = idom[node], names[node]
            while up != 0 and names[up] != own:  # counted once: under the outermost same-constructor owner
                up = idom[up]
            if up == 0:
                table[own][2] += retained[node]
    else:
        notes.append(f"{g.n} nodes: retained sizes not computed (above {MAX_RETAINED_NODES})")
    return table, sum(g.self_size), notes


def _sites(table: dict[str, list[int]], column: int) -> list[Site]:
    return sorted((Site(name, "", None, row[column], row[1]) for name, row in table.items()), key=lambda s: -s.bytes)


def summarise(path: Path, previous: Path | None = None) -> Summary:
    """``retained`` and ``self`` tables by constructor, and ``growth`` since ``previous`` if given."""
    table, total, notes = constructors(path)
    out = Summary(kind="node", headline="growth" if previous else "retained", peak_bytes=total, notes=notes)
    out.tables = {"retained": _sites(table, 2), "self": _sites(table, 0)}
    if previous is not None:
        before, before_total, _ = constructors(previous)
        growth = []
        for name, row in table.items():
            old = before.get(name, [0, 0, 0])
            if row[0] > old[0]:
                growth.append(Site(name, "", None, row[0] - old[0], row[1] - old[1]))
        out.tables = {"growth": sorted(growth, key=lambda s: -s.bytes), **out.tables}
        out.notes.append(f"since {previous.name}: heap {before_total} → {total} bytes (self sizes)")
    # the flame graph: constructors under the heap, by retained size (no stacks in a snapshot)
    out.stacks = [([s.function], s.bytes) for s in out.tables["retained"][:200] if s.bytes > 0]
    return out
