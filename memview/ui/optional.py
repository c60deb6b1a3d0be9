"""The app's seams to features that land on other branches: triggers, watch, bundles, compare.

Each is imported lazily and guarded: the app works (with the action greyed out and a one-line
reason) when a module is not there yet, and gains the feature without a UI change when it is.
All the guesses about those modules' entry points live here, in one file, so merging a feature
means checking one function rather than hunting through widgets.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from memview.store import Store

#: Tools the trigger engine knows by name (issue 5); the run dialog offers these.
CAPTURE_TOOLS = ["none", "py-spy-dump", "py-spy-record", "heaptrack", "node-heap-snapshot"]


def _module(name: str) -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        if exc.name == name:
            return None, f"{name} is not part of this build"
        return None, f"{name} cannot be loaded: {exc}"


def missing(name: str, attr: str | None = None) -> str | None:
    """None when ``name`` (and ``attr`` in it) can be used, else the reason in one line."""
    mod, reason = _module(name)
    if mod is None:
        return reason
    if attr is not None and not hasattr(mod, attr):
        return f"{name} has no {attr} in this build"
    return None


# -- watch (issue 4) ------------------------------------------------------------------------------
def watch_missing() -> str | None:
    return missing("memview.watch", "WatchSession")


def start_watch(url: str, store: Store, interval: float, fmt: str = "auto",
                headers: dict[str, str] | None = None) -> Any:
    """``memview.watch.WatchSession.start(...)``: an object with ``.recorder`` and ``.close()``."""
    mod = importlib.import_module("memview.watch")
    return mod.WatchSession.start(url, store, interval, fmt=fmt, headers=headers or None)


# -- triggers and captures (issue 5) --------------------------------------------------------------
def triggers_missing() -> str | None:
    return missing("memview.triggers", "attach")


def attach_triggers(session: Any, threshold: str | None, capture: str | None, store: Store) -> None:
    """Wire the trigger engine into a session before it starts sampling.

    Expected entry point: ``memview.triggers.attach(recorder, thresholds=[...], capture=tool,
    store=store)``, which sets ``recorder.threshold_handler`` (so the GUI's line moves the rule)
    and ``recorder.capture_handler`` (so "Capture now" works).
    """
    mod = importlib.import_module("memview.triggers")
    mod.attach(session.recorder, thresholds=[threshold] if threshold else [],
               capture=None if capture in (None, "", "none") else capture, store=store)


# -- bundles and compare (issue 7) --------------------------------------------------------------------
def bundle_missing() -> str | None:
    return missing("memview.bundle", "export_session")


def export_session(store: Store, sid: int, path: Path) -> Path:
    """``memview.bundle.export_session(store, sid, path)`` -> the written file."""
    mod = importlib.import_module("memview.bundle")
    out = mod.export_session(store, sid, path)
    return Path(out) if out else path


def import_missing() -> str | None:
    return missing("memview.bundle", "import_bundle")


def import_bundle(store: Store, path: Path) -> Any:
    """``memview.bundle.import_bundle(store, path)`` -> the new session id."""
    mod = importlib.import_module("memview.bundle")
    return mod.import_bundle(store, path)


def compare_missing() -> str | None:
    return missing("memview.ui.compare_view", "CompareView")


def compare_view(store: Store, session_ids: list[int], parent: Any = None) -> Any:
    """``memview.ui.compare_view.CompareView(store, session_ids, parent)``: a QWidget."""
    mod = importlib.import_module("memview.ui.compare_view")
    return mod.CompareView(store, session_ids, parent)
