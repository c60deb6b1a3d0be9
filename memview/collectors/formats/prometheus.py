"""Prometheus text exposition (``/metrics``) -> the ``rss`` series, with prometheus_client's parser.

The exposition format has escaping, comments, timestamps, ``NaN``/``+Inf`` and an OpenMetrics
dialect; the official parser gets all of that right where a regex would not. The metric is
``process_resident_memory_bytes`` (what every official client library exports) unless the user
picks another with ``--metric 'name{label="value"}'``; the selector itself is read by the same
parser, so label escaping means the same on both sides. A selector must match exactly one
sample: several matches is an error that lists them, never a silent sum or a first pick.
"""

from __future__ import annotations

from typing import Any

from memview.collectors.formats.values import BadValue, FormatError, Parsed, scaled
from memview.model import RSS_SERIES

NAME = "prometheus"
DEFAULT_METRIC = "process_resident_memory_bytes"


class Selector:
    """``name{label="x",…}``: a metric name and the labels a sample must have."""

    def __init__(self, text: str | None) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.text = (text or DEFAULT_METRIC).strip()
        try:
            samples = [s for fam in text_string_to_metric_families(self.text + " 0\n") for s in fam.samples]
        except Exception:  # the parser raises bare ValueErrors and worse on junk
            samples = []
        if len(samples) != 1:
            raise ValueError(f'not a metric selector: {self.text!r} (expected e.g. name or name{{label="x"}})')
        self.name: str = samples[0].name
        self.labels: dict[str, str] = dict(samples[0].labels)

    def matches(self, sample: Any) -> bool:
        return sample.name == self.name and all(sample.labels.get(k) == v for k, v in self.labels.items())


def parse(body: bytes, content_type: str, selector: Selector, factor: int = 1) -> Parsed:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("the metrics text is not UTF-8", "malformed") from None
    if content_type.lower().startswith("application/openmetrics-text"):
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    try:
        samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]
    except Exception as exc:  # noqa: BLE001 - the parser's errors are ValueError, IndexError, …
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise FormatError(f"not Prometheus text exposition ({detail})", "malformed") from None
    found = [s for s in samples if selector.matches(s)]
    if not found:
        same = [s for s in samples if s.name == selector.name]
        hint = ""
        if same:
            hint = "; it has " + ", ".join(_show(s) for s in same[:4]) + (" …" if len(same) > 4 else "")
        raise FormatError(f"no {selector.text} in the metrics{hint}", "missing")
    if len(found) > 1:
        shown = ", ".join(_show(s) for s in found[:4]) + (" …" if len(found) > 4 else "")
        raise FormatError(f"{len(found)} samples match {selector.text} ({shown}); add labels to pick one", "ambiguous")
    sample = found[0]
    out = Parsed()
    try:
        out.put(RSS_SERIES, scaled(sample.value, factor, selector.text), "bytes", selector.text)
    except BadValue as exc:
        raise FormatError(str(exc), "bad_value") from None
    if sample.timestamp is not None:
        try:
            out.put("doc_time", round(float(sample.timestamp) * 1000), "epoch_ms", "sample timestamp")
        except (TypeError, ValueError):
            out.problems["timestamp"] = f"unreadable timestamp {sample.timestamp!r}"
    return out


def _show(sample: Any) -> str:
    # label values are shown escaped as in the exposition format: an error message stays one line
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
    return f"{sample.name}{{{labels}}}" if labels else sample.name


def _escape(value: str) -> str:
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value if len(value) <= 60 else value[:60] + "…"
