"""No module of memview reaches into another's private names (issue 21, "the seams").

A ``_name`` is private to the module that defines it: changing it should need reading one file.
When two modules share a helper it is public in the module that owns it. Checked on the source
(the AST), so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "memview"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def private_imports(path: Path, me: str | None = None) -> list[str]:
    """``line: what`` for each private name of another memview module this file (module ``me``) imports or reads."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    me = me or _module_name(path)
    is_package = path.name == "__init__.py"
    found: list[str] = []
    modules: set[str] = set()  # local names bound to a memview module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node.module, node.level, me, is_package)
            if not source.startswith("memview") or source == me:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.lineno}: from {source} import {alias.name}")
                else:
                    modules.add(alias.asname or alias.name)  # may be a submodule: its attributes are checked
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("memview"):
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    """The check can fail: each form of reaching into another module is found, a public name is not."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from memview.bundle.common import _hidden, Public\nfrom .manifest import _other\n"
        "from memview import store\nx = store._private\ny = store.public\nfrom . import _mine\n"
    )
    assert private_imports(probe, "memview.bundle.probe") == [
        "1: from memview.bundle.common import _hidden",
        "2: from memview.bundle.manifest import _other",
        "6: from memview.bundle import _mine",
        "4: store._private",
    ]


def test_no_module_imports_another_modules_private_names() -> None:
    offences = {str(p.relative_to(ROOT)): found for p in sorted(PACKAGE.rglob("*.py")) if (found := private_imports(p))}
    assert offences == {}
