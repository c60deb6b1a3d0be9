"""Response formats ``memview watch`` understands, and ``--format auto``'s choice among them.

One module per format (:mod:`.memory_profile`, :mod:`.prometheus`, :mod:`.json_fields`); this
module checks the options once at start (so a wrong combination is a one-line error before any
request) and, for ``auto``, looks at the first readable response: a JSON object with
``current_usage_mb`` is the memory-profile document, other JSON needs ``--field``, anything else
is read as Prometheus text. The first successful choice is kept for the session, so an endpoint
that starts answering something else is reported as a failure rather than silently re-read.
"""

from __future__ import annotations

import json
from typing import Any

from memview.collectors.formats import json_fields, memory_profile, prometheus
from memview.collectors.formats.values import FormatError, Parsed, unit_factor

FORMATS = ("auto", memory_profile.NAME, prometheus.NAME, json_fields.NAME)

__all__ = ["FORMATS", "FormatError", "Parsed", "Reader", "load_json"]


def load_json(body: bytes) -> Any:
    """The parsed document, or FormatError("malformed JSON …") saying where it broke."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise FormatError(f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", "malformed") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8/16/32, or nested past Python's limit
        raise FormatError(f"malformed JSON ({type(exc).__name__})", "malformed") from None


class Reader:
    """Reads responses in one format, chosen at start or by the first readable response."""

    def __init__(
        self, fmt: str = "auto", fields: object = None, unit: str | None = None, metric: str | None = None
    ) -> None:
        fmt = (fmt or "auto").strip().lower()
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
        if fields and metric:
            raise ValueError("--field is for JSON documents and --metric for Prometheus text: give one of them")
        if fields:
            if fmt not in ("auto", json_fields.NAME):
                raise ValueError(f"--field works with --format json, not {fmt}")
            fmt = json_fields.NAME
        elif metric:
            if fmt not in ("auto", prometheus.NAME):
                raise ValueError(f"--metric works with --format prometheus, not {fmt}")
            fmt = prometheus.NAME
        if unit and fmt in ("auto", memory_profile.NAME):
            raise ValueError(
                "--unit applies to --field (json) or --metric (prometheus); the memory-profile "
                "document's *_mb figures are MiB"
            )
        if fmt == json_fields.NAME and not fields:
            raise ValueError("--format json needs --field current=path.to.value")
        self.requested = fmt
        self.chosen: str | None = None if fmt == "auto" else fmt
        self.fields = json_fields.parse_fields(fields, unit) if fields else []
        self.selector = prometheus.Selector(metric)
        self.factor = unit_factor(unit) if unit else 1

    def parse(self, body: bytes, content_type: str) -> Parsed:
        fmt = self.chosen or self._detect(body, content_type)
        if fmt == prometheus.NAME:
            parsed = prometheus.parse(body, content_type, self.selector, self.factor)
        else:
            doc = load_json(body)
            if fmt == memory_profile.NAME:
                parsed = memory_profile.parse(doc)
            else:
                parsed = json_fields.parse(doc, self.fields)
        self.chosen = fmt
        return parsed

    def _detect(self, body: bytes, content_type: str) -> str:
        head = body.lstrip()[:1]
        if head in (b"{", b"[") or "json" in content_type.lower():
            if memory_profile.looks_like(load_json(body)):
                return memory_profile.NAME
            raise FormatError(
                "a JSON document without current_usage_mb: say which value is the current usage "
                "with --field current=path.to.value (and --unit)",
                "unknown_format",
            )
        return prometheus.NAME
