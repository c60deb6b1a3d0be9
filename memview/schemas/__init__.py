"""JSON Schema files (draft 2020-12) for the documents memview writes for other programs to read.

``session-summary``: ``run/attach/watch --json`` and ``show --json``; ``profile-results``:
``profile --output-json``; ``bundle-manifest``: manifest.json in a ``.memview.zip``. Each document
carries ``format`` and ``version`` keys; tests/test_schemas.py validates real outputs against these.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

NAMES = ("session-summary", "profile-results", "bundle-manifest")


def load(name: str) -> dict[str, Any]:
    """The schema called ``name`` (one of :data:`NAMES`), parsed."""
    if name not in NAMES:
        raise KeyError(f"no schema {name!r}; choose from {', '.join(NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


__all__ = ["NAMES", "load"]
