"""What a case gets from the runner: the mode, the repetitions, a scratch folder and the peers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Context:
    smoke: bool
    reps: int
    work: Path  # scratch folder of this run (databases, peer logs), under benchmarks/out/
    peers: dict[str, Any] = field(default_factory=dict)
    _n: int = 0

    def path(self, stem: str, suffix: str) -> Path:
        """A fresh file name in the scratch folder."""
        self._n += 1
        return self.work / f"{stem}-{self._n}{suffix}"

    def db(self, stem: str) -> Path:
        """A new, already created memview database: runs then measure recording, not the first migration."""
        from memview.store import Store

        path = self.path(stem, ".db")
        Store(path).close()
        return path
