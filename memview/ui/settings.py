"""What the app remembers between runs (QSettings): last database, geometry, interval, recents.

A thin typed wrapper, so the rest of the UI never spells a settings key and tests can point
the whole thing at a throwaway file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6 import QtCore

MAX_RECENT = 12


class Settings:
    def __init__(self, qsettings: QtCore.QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QtCore.QSettings("memview", "memview")

    @classmethod
    def at(cls, path: Path) -> Settings:
        """Settings kept in an INI file at ``path`` (tests; portable installs)."""
        return cls(QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat))

    def _get(self, key: str, default: Any = None) -> Any:
        value = self.q.value(key, default)
        return default if value is None else value

    # -- database ---------------------------------------------------------------------------------
    @property
    def last_db(self) -> str | None:
        value = self._get("db/last")
        return str(value) if value else None

    @last_db.setter
    def last_db(self, path: str) -> None:
        self.q.setValue("db/last", str(path))

    # -- sampling ---------------------------------------------------------------------------------
    @property
    def interval(self) -> float:
        try:
            return max(0.001, float(self._get("record/interval", 0.05)))
        except (TypeError, ValueError):
            return 0.05

    @interval.setter
    def interval(self, seconds: float) -> None:
        self.q.setValue("record/interval", float(seconds))

    @property
    def watch_interval(self) -> float:
        try:
            return max(0.05, float(self._get("watch/interval", 1.0)))
        except (TypeError, ValueError):
            return 1.0

    @watch_interval.setter
    def watch_interval(self, seconds: float) -> None:
        self.q.setValue("watch/interval", float(seconds))

    # -- recents ----------------------------------------------------------------------------------
    def recent(self, kind: str) -> list[str]:
        value = self._get(f"recent/{kind}", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value if v]

    def remember(self, kind: str, item: str) -> None:
        items = [item] + [x for x in self.recent(kind) if x != item]
        self.q.setValue(f"recent/{kind}", items[:MAX_RECENT])

    @property
    def last_cwd(self) -> str | None:
        value = self._get("record/cwd")
        return str(value) if value else None

    @last_cwd.setter
    def last_cwd(self, path: str) -> None:
        self.q.setValue("record/cwd", path)

    @property
    def library_sort(self) -> str | None:
        value = self._get("library/sort")
        return str(value) if value else None

    @library_sort.setter
    def library_sort(self, mode: str) -> None:
        self.q.setValue("library/sort", mode)

    # -- window -----------------------------------------------------------------------------------
    def geometry(self) -> QtCore.QByteArray | None:
        value = self._get("window/geometry")
        return value if isinstance(value, QtCore.QByteArray) else None

    def state(self, name: str) -> QtCore.QByteArray | None:
        value = self._get(f"window/{name}")
        return value if isinstance(value, QtCore.QByteArray) else None

    def save_window(self, geometry: QtCore.QByteArray, **states: QtCore.QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        for name, value in states.items():
            self.q.setValue(f"window/{name}", value)

    def sync(self) -> None:
        self.q.sync()
