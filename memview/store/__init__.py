"""The SQLite store: one file holds every session; every SQL statement of memview is in this package.

- :mod:`.schema`: connecting, refusing foreign or newer files, the schema and its migrations;
- :mod:`.reader`: :class:`Store`, the queries, edits, import and delete;
- :mod:`.writer`: :class:`StoreWriter`, the thread that writes a recording in batches;
- :mod:`.chunks`: the sample chunks' bounds and the time-window query;
- :mod:`.importing`: a whole session in one transaction (bundle import);
- :mod:`.rows`: values made storable, rows made readable; :mod:`.stale`: leftovers of killed imports.
"""

from memview.store.chunks import Window
from memview.store.reader import Store
from memview.store.schema import APPLICATION_ID, SCHEMA_VERSION, StoreError, connect, default_db_path
from memview.store.writer import HOLD_EVERY_S, HOLD_MAX_SAMPLES, StoreWriter

__all__ = [
    "APPLICATION_ID",
    "HOLD_EVERY_S",
    "HOLD_MAX_SAMPLES",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "StoreWriter",
    "Window",
    "connect",
    "default_db_path",
]
