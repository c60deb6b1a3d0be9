"""Copies the top-level ``resources/`` folder into the wheel as ``memview/_resources``.

Everything else is declared in pyproject.toml. The files stay where the source tree keeps them
(the Node probe is required from there by path, the icon and .desktop file are edited there); only
the built package gets a copy, which ``memview.resources`` finds with importlib.resources. An
editable install has no copy and ``memview.resources`` falls back to the source tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "resources"
TARGET = Path("memview") / "_resources"


class BuildWithResources(build_py):
    """build_py, then resources/ -> <build_lib>/memview/_resources (no caches, no editor droppings)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the source tree is on the path; memview.resources reads resources/ there
            return
        target = Path(self.build_lib) / TARGET
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*~", ".*"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        target = Path(self.build_lib) / TARGET
        extra = [str(target / p.relative_to(SOURCE)) for p in SOURCE.rglob("*") if p.is_file()]
        return [*super().get_outputs(include_bytecode), *extra]


setup(cmdclass={"build_py": BuildWithResources})
