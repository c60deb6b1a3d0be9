"""The dependency rule as a test: the core never imports Qt (import-linter contracts)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is not installed (pip install -e '.[test]')")
    res = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative): each is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check below can fail: a three-module ring is found, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_import_graph_of_memview_has_no_cycles() -> None:
    """Every import, at module level or inside a function, points one way (issue 21, "the seams").

    grimp is import-linter's own graph builder: it sees function-level imports too, which is where
    the cycles used to hide (commands imported cli's helpers at call time; manifest imported
    baseline to parse a tolerance). A package's ``__init__`` is not counted as importing its
    submodules (it is executed first, not imported *by* them).
    """
    import grimp

    built = grimp.build_graph("memview")
    graph = {m: {i for i in built.find_modules_directly_imported_by(m) if i in built.modules} for m in built.modules}
    cycles = _cycles(graph)
    detail = "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a] & set(c))) + ")"
        for c in cycles
    )
    assert not cycles, f"import cycles: {detail}"


def test_the_bundle_runs_no_sql_of_its_own() -> None:
    """Every statement on the database is a Store method (issue 21): a bundle import goes through
    Store.import_session / Store.session_id_by_uid, never raw INSERTs on store.conn."""
    import re

    sources = [ROOT / "memview" / "bundle.py"] if (ROOT / "memview" / "bundle.py").exists() else []
    sources += sorted((ROOT / "memview" / "bundle").glob("*.py")) if (ROOT / "memview" / "bundle").is_dir() else []
    assert sources
    sql = re.compile(r"\.execute(many)?\(|\.conn\b|\b(INSERT|SELECT|UPDATE|DELETE)\s+(INTO|FROM|\w+\s+SET)\b")
    found = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if sql.search(line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("argv", "code", "line"),
    [
        (["compare", "1"], 2, "memview: compare needs at least two sessions or bundles"),
        (["profile", "--manifest", "no-such-manifest.toml"], 2, "memview: manifest not found"),
        (["import", "no-such-bundle.memview.zip"], 1, "memview: no-such-bundle.memview.zip: "),
    ],
)
def test_a_command_that_cannot_go_on_is_one_line_from_main(
    tmp_path: Path, argv: list[str], code: int, line: str
) -> None:
    """Commands raise CommandError (commands.common.fail); the CLI group prints it once and exits with its code."""
    import os
    import sys

    env = {**os.environ, "MEMVIEW_DB": str(tmp_path / "m.db")}
    res = subprocess.run(
        [sys.executable, "-m", "memview", *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), res.stderr
