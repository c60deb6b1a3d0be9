"""The response formats and the credential scrubbing of memview watch, on real documents (no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memview.collectors.base import CollectorError
from memview.collectors.formats import FormatError, Reader
from memview.collectors.redact import parse_headers, redact_url, scrub_text, secrets_of, userinfo_header

MIB = 2**20
CONTEXT = Path("/work/shared/context/002_00eeafbb8e62bc3e.txt")
EXAMPLE = """{
  "timestamp": "2025-11-02T14:00:00Z", "total_allocated_mb": 256, "peak_usage_mb": 320, "current_usage_mb": 240,
  "by_component": {"extraction": 72, "cache": 60, "browser": 48, "api": 36, "other": 24},
  "pressure": "normal",
  "stats": {"usage_percentage": 24.0, "is_under_pressure": false, "last_cleanup_secs_ago": null,
            "last_gc_secs_ago": null, "cleanup_count": 0, "gc_count": 0},
  "jemalloc": {"allocated_mb": 256.5, "resident_mb": 280.2, "metadata_mb": 12.3, "mapped_mb": 300.1,
               "retained_mb": 50.0, "fragmentation_ratio": 1.09, "metadata_overhead_ratio": 0.048}
}"""


def _example() -> bytes:
    """The document from the service's own notes when they are at hand, else the same text kept here."""
    if CONTEXT.exists():
        found = re.search(r"### Response Format\s+```json\n(.*?)```", CONTEXT.read_text(), re.S)
        if found:
            return found.group(1).encode()
    return EXAMPLE.encode()


def test_memory_profile_document_gives_every_series_in_bytes_and_milli_units():
    reader = Reader()
    parsed = reader.parse(_example(), "application/json")
    assert reader.chosen == "memory-profile"
    v = parsed.values
    assert v["rss"] == 240 * MIB and v["service_peak"] == 320 * MIB and v["total_allocated"] == 256 * MIB
    assert {k: v[k] // MIB for k in v if k.startswith("component:")} == {
        "component:extraction": 72,
        "component:cache": 60,
        "component:browser": 48,
        "component:api": 36,
        "component:other": 24,
    }
    assert v["jemalloc:allocated"] == round(256.5 * MIB) and v["jemalloc:resident"] == round(280.2 * MIB)
    assert v["jemalloc:fragmentation_ratio"] == 1090 and v["jemalloc:metadata_overhead_ratio"] == 48
    assert parsed.units["jemalloc:fragmentation_ratio"][0] == "milli"
    assert v["stats:usage_percentage"] == 24000 and v["stats:gc_count"] == 0
    assert "stats:last_gc_secs_ago" not in v  # null: not known now, not 0
    assert v["pressure"] == 0 and parsed.pressure == "normal"
    assert v["doc_time"] == 1762092000000  # 2025-11-02T14:00:00Z
    assert not parsed.problems


def test_riptide_rfc3339_nanosecond_timestamps_are_read():
    doc = b'{"current_usage_mb": 1, "timestamp": "2025-11-02T14:00:00.123456789+00:00"}'
    assert Reader().parse(doc, "").values["doc_time"] == 1762092000123


@pytest.mark.parametrize(
    "value, reason",
    [
        ("NaN", "is NaN"),
        ("-5", "is negative"),
        ("true", "not a number"),
        ('"240"', "not a number"),
        ("Infinity", "is infinite"),
    ],
)
def test_a_bad_current_value_fails_the_whole_reading(value, reason):
    with pytest.raises(FormatError, match=reason):
        Reader().parse(f'{{"current_usage_mb": {value}}}'.encode(), "")


def test_a_bad_secondary_value_drops_only_that_series():
    parsed = Reader().parse(
        b'{"current_usage_mb": 10, "peak_usage_mb": NaN, "by_component": {"a": -1, "b": 2}, "pressure": "melting"}', ""
    )
    assert parsed.values == {"rss": 10 * MIB, "component:b": 2 * MIB}
    assert set(parsed.problems) == {"peak_usage_mb", "by_component.a", "pressure"}


def test_prometheus_default_metric_labels_and_refusals():
    text = (
        b"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2.5e+07 1762092000500\n"
        b'# TYPE heap gauge\nheap{pool="a",x="1"} 100\nheap{pool="b",x="1"} NaN\n'
    )
    reader = Reader()
    parsed = reader.parse(text, "text/plain; version=0.0.4")
    assert reader.chosen == "prometheus"
    assert parsed.values == {"rss": 25_000_000, "doc_time": 1762092000500}
    assert Reader(metric='heap{pool="a"}', unit="KiB").parse(text, "").values == {"rss": 102400}
    with pytest.raises(FormatError, match=r'2 samples match heap \(heap\{pool="a",x="1"\}'):
        Reader(metric="heap").parse(text, "")
    with pytest.raises(FormatError, match="is NaN"):
        Reader(metric='heap{pool="b"}').parse(text, "")
    with pytest.raises(FormatError, match=r'no heap\{pool="c"\} in the metrics; it has'):
        Reader(metric='heap{pool="c"}').parse(text, "")
    with pytest.raises(FormatError, match="not Prometheus text"):
        Reader(metric="heap").parse(b"<html><body>login</body></html>", "text/html")


def test_openmetrics_is_read_with_its_own_parser():
    text = b"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 4096\n# EOF\n"
    parsed = Reader().parse(text, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert parsed.values == {"rss": 4096}


def test_json_fields_paths_units_and_names():
    doc = b'{"mem": {"used_mb": 1.5, "peak": 3000000, "pools": [{"rss_bytes": 7}]}, "state": "warning"}'
    parsed = Reader(
        fields=["current=mem.used_mb", "peak=mem.peak", "pool0=mem.pools.0.rss_bytes", "pressure=state"], unit="MB"
    ).parse(doc, "")
    # --unit applies to every size field: MB is 10**6 here, as everywhere in memview's units
    assert parsed.values == {
        "rss": 1_500_000,
        "service_peak": 3_000_000_000_000,
        "field:pool0": 7_000_000,
        "pressure": 1,
    }
    by_suffix = Reader(fields=["current=mem.used_mb", "component:p=mem.pools.0.rss_bytes"]).parse(doc, "")
    assert by_suffix.values == {"rss": round(1.5 * MIB), "component:p": 7}  # _mb is MiB, _bytes bytes
    with pytest.raises(FormatError, match="no value at mem.nope"):
        Reader(fields=["current=mem.nope_mb"]).parse(doc, "")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fields": ["current=a.b"]}, "say the unit of field current"),
        ({"fields": ["peak=a_mb"]}, "say which value is the current usage"),
        ({"fields": ["current"]}, "KEY=path.to.value"),
        ({"fmt": "json"}, "needs --field"),
        ({"fmt": "xml"}, "unknown format"),
        ({"unit": "MiB"}, "--unit applies to"),
        ({"unit": "parsecs", "metric": "m"}, "unknown unit"),
    ],
)
def test_option_mistakes_are_refused_before_any_request(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Reader(**kwargs)


def test_auto_detection_refuses_json_it_cannot_read_and_malformed_json():
    with pytest.raises(FormatError, match="--field current="):
        Reader().parse(b'{"heap": 5}', "application/json")
    with pytest.raises(FormatError, match=r"malformed JSON: Unterminated string .*\(line 1, column 26\)"):
        Reader().parse(b'{"current_usage_mb": 12, "by', "application/json")
    reader = Reader()
    reader.parse(b'{"current_usage_mb": 1}', "")
    with pytest.raises(FormatError):  # the format, once found, is kept: a switch is a failure, not a re-read
        reader.parse(b"process_resident_memory_bytes 5\n", "text/plain")


def test_credentials_are_scrubbed_from_what_is_stored():
    url = "https://alice:pa%40ss@api.example.com:8443/m?token=abc123&view=full&API_KEY=k-999"
    assert redact_url(url) == "https://api.example.com:8443/m?token=***&view=***&API_KEY=***"
    assert redact_url(url, keep=("view", "token")) == "https://api.example.com:8443/m?token=***&view=full&API_KEY=***"
    assert userinfo_header(url) == {"Authorization": "Basic YWxpY2U6cGFAc3M="}  # alice:pa@ss
    headers = parse_headers(["Authorization: Bearer s3cr3t-value", "X-Trace:  on "])
    assert headers == {"Authorization": "Bearer s3cr3t-value", "X-Trace": "on"}
    secrets = secrets_of(url, headers)
    text = "echo: Bearer s3cr3t-value and s3cr3t-value, pa@ss, abc123, k-999"
    assert scrub_text(text, secrets) == "echo: *** and ***, ***, ***, ***"
    for bad, message in [
        (["NoColon"], "has no ':'"),
        (["Bad Name: v"], "not a valid header name"),
        ({"X": "a\r\nInjected: 1"}, "line break"),
    ]:
        with pytest.raises(CollectorError, match=message):
            parse_headers(bad)
