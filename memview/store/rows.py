"""Values made storable and rows made readable: the cleaning every write and read goes through.

Why one module: the writer thread, the session edits and the bundle import all bind values that
come from other programs (marker names, JSON from a service); one set of rules decides what a
lone surrogate, an integer past int64 or a NaN becomes, and which columns hold JSON.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

INT64_MAX = 2**63 - 1


def clean_text(text: str) -> str:
    """``text`` as SQLite can bind it: a lone surrogate (``"\\ud800"``) becomes its ``\\ud800`` escape.

    Names come from other programs (marker lines, JSON keys); one that is not valid UTF-8 must
    not stop the writer, and its escaped form still tells the user what was sent.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def clean_value(value: Any) -> Any:
    """One column value made bindable: texts cleaned, integers beyond int64 kept as their text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def json_field(value: Any) -> Any:
    """A column value: lists and dicts as JSON text (never NaN: every reader must parse it), others cleaned."""
    if isinstance(value, (list, dict)):
        # default=str: a value JSON cannot hold (bytes, a set) becomes its text rather than an error;
        # allow_nan=False keeps the column valid JSON for every reader (NaN/Infinity -> null)
        try:
            text = json.dumps(value, default=str, allow_nan=False)
        except ValueError:
            text = json.dumps(_finite(value), default=str)
        return clean_text(text)
    return clean_value(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


#: the columns that hold JSON (written by json_field)
JSON_COLUMNS = {"command", "meta", "tags", "summary", "cmdline", "flags", "data"}


def read_row(row: sqlite3.Row) -> dict[str, Any]:
    """A row as a dict, its JSON columns parsed (a value that is not JSON is left as its text)."""
    out = dict(row)
    for key in JSON_COLUMNS & out.keys():
        if isinstance(out[key], str) and out[key]:
            try:
                out[key] = json.loads(out[key])
            except ValueError:
                pass
    return out
