"""Hypothesis fuzzing of every parser of outside input (issue 9).

Each parser either returns or raises its module's own documented error with a one-line message;
any other exception fails the test. Inputs mix free text with grammar-shaped near misses, since
those reach deeper than random bytes. Example counts are kept modest: the file runs in seconds.
"""

from __future__ import annotations

import json
import os
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memview import baseline, bundle, manifest, markers, triggers, units
from memview.collectors.formats import FormatError, Reader
from memview.marker_reader import LineReader, Stream

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message.strip() and "\n" not in message, repr(message)
    return message


# -- the MEMVIEW_FD marker channel ----------------------------------------------------------------------

marker_objects = st.fixed_dictionaries(
    {"event": st.sampled_from(["phase_start", "phase_end", "mark", "explode"]) | json_values},
    optional={"name": json_values, "t": json_values, "pid": json_values, "data": json_values, "sync": json_values},
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")),
        marker_objects.map(lambda o: json.dumps(o).encode()),
    )
)
@example(b'{"event": []}')
def test_marker_lines_are_a_marker_a_bad_line_or_nothing(raw):
    got = markers.parse_json_line(raw)
    assert got is None or isinstance(got, (markers.Marker, markers.BadLine))
    if isinstance(got, markers.BadLine):
        assert got.reason and "\n" not in got.reason and "\n" not in got.line
    if isinstance(got, markers.Marker):
        assert got.event in markers.EVENTS and (got.name is None or len(got.name) <= markers.MAX_NAME + 1)


@FUZZ
@given(st.text(max_size=200))
def test_memory_log_preset_never_raises(line):
    got = markers.RegexMarkers(presets=["memory-log"]).match(line)
    assert got is None or got.event in markers.EVENTS


@FUZZ
@given(st.lists(st.binary(max_size=40) | st.sampled_from([b"\n", b"\r\n", b'{"event": "mark"']), max_size=30))
def test_the_channel_splits_any_chunking_into_the_lines_written(chunks):
    """Half lines across reads, CRLF, no final newline: the lines handled are the lines written."""
    reader = LineReader("fuzz", warn=lambda msg: None)
    got: list[bytes] = []
    stream = Stream(-1, lambda n: b"", lambda line, _s: got.append(line), "fd", lambda: None, waits=False)
    try:
        for chunk in chunks:
            if chunk:
                reader._lines(stream, chunk)
        reader._eof(stream)
    finally:
        os.close(reader._wake_r)
        os.close(reader._wake_w)
    data = b"".join(chunks)
    want = data.split(b"\n")
    if want[-1] == b"":
        want.pop()
    assert got == [w[:-1] if w.endswith(b"\r") else w for w in want]


# -- endpoint documents ------------------------------------------------------------------------------------

prom_lines = st.lists(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            "{}{{{}}} {} {}".format,
            st.sampled_from(["process_resident_memory_bytes", "x", "a:b", "9bad"]),
            st.sampled_from(["", 'a="b"', 'a="b",c="\\"', "a=b", 'a="\\n"']),
            st.sampled_from(["1", "NaN", "-Inf", "+Inf", "1e400", "-5", "0x10", "", "1.5e3"]),
            st.sampled_from(["", "123", "1.5", "abc", "-1"]),
        ),
        st.sampled_from(["# TYPE process_resident_memory_bytes gauge", "# HELP x y", "# EOF", "# TYPE x histogram"]),
    ),
    max_size=8,
).map("\n".join)


@FUZZ
@given(
    prom_lines,
    st.sampled_from(["text/plain", "application/openmetrics-text; version=1.0.0", ""]),
    st.sampled_from(["auto", "prometheus"]),
    st.booleans(),
)
@example('process_resident_memory_bytes{} 1 \nprocess_resident_memory_bytes{a="\\n"} 1 ', "text/plain", "auto", True)
def test_prometheus_text_gives_a_reading_or_a_format_error(text, content_type, fmt, utf8):
    body = text.encode() if utf8 else text.encode("utf-16")
    try:
        Reader(fmt).parse(body, content_type)
    except FormatError as exc:
        one_line(exc)


@FUZZ
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"current_usage_mb": json_values},
            optional={
                "peak_usage_mb": json_values,
                "pressure": json_values,
                "timestamp": json_values,
                "components": json_values,
                "gc": json_values,
            },
        ),
    ),
    st.sampled_from([None, ["current=a.b"], ["current=current_usage_mb", "peak=x", "pressure=p"]]),
)
def test_json_documents_give_a_reading_or_a_format_error(doc, fields):
    body = json.dumps(doc).encode()
    try:
        Reader("auto", fields=fields, unit="MiB" if fields else None).parse(body, "application/json")
    except FormatError as exc:
        one_line(exc)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_are_a_reading_or_a_format_error(body):
    for fmt in ("auto", "memory-profile"):
        try:
            Reader(fmt).parse(body, "application/json")
        except FormatError as exc:
            one_line(exc)


# -- sizes, thresholds, tolerances -------------------------------------------------------------------------

numbers = st.sampled_from(["0", "1", "800", "1.5", ".5", "1e3", "-3", "99999999999999999999", "nan", "inf", ""])
size_units = st.sampled_from(["", "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "k", "m", "g", "%", "x", " MB"])


@FUZZ
@given(st.builds("{}{}{}".format, st.sampled_from(["", "+", "-", " "]), numbers, size_units))
def test_size_expressions_are_a_size_or_a_unit_error(text):
    try:
        assert units.parse_size(text) >= 0
    except units.UnitError as exc:
        one_line(exc)


rule_text = st.builds(
    "{}{}{}{}{}{}".format,
    st.sampled_from(["", "parse:", "a:b:", ":", "pressure:"]),
    st.sampled_from(["", "+", "-"]),
    numbers,
    size_units,
    st.sampled_from(["", "/s", "/5s", "/0s", "/-1s", "/xs", "/"]),
    st.sampled_from(
        ["", ",cooldown=5s", ",max=2", ",max=0", ",rearm=10%", ",rearm=200%", ",bogus=1", ",", ",cooldown=", ",max=-1"]
    ),
)


@FUZZ
@given(st.one_of(rule_text, st.text(max_size=40)))
def test_threshold_rules_are_a_rule_or_a_rule_error(text):
    try:
        triggers.parse_rule(text, total_memory_bytes=16 * 2**30)
    except triggers.RuleError as exc:
        one_line(exc)


@FUZZ
@given(
    st.one_of(
        st.builds("{}{}{} or {}{}".format, st.sampled_from(["", "+", "-"]), numbers, size_units, numbers, size_units),
        st.text(max_size=30),
        json_values,
    )
)
def test_tolerances_are_a_tolerance_or_a_baseline_error(text):
    try:
        tol = baseline.parse_tolerance(text)
    except baseline.BaselineError as exc:
        one_line(exc)
    else:
        assert tol.limit(100_000_000) >= 100_000_000


@FUZZ
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"format": st.just(baseline.FORMAT), "version": json_values | st.just(1)},
            optional={
                "default_tolerance": json_values,
                "cases": st.dictionaries(
                    st.text(max_size=5),
                    st.dictionaries(
                        st.text(max_size=5),
                        json_values
                        | st.fixed_dictionaries(
                            {"peak_rss_bytes": json_values}, optional={"phases": json_values, "tolerance": json_values}
                        ),
                        max_size=2,
                    ),
                    max_size=2,
                ),
            },
        ),
    )
)
def test_baseline_documents_are_valid_or_a_baseline_error(doc):
    try:
        baseline.validate_baseline(doc)
    except baseline.BaselineError as exc:
        one_line(exc)


# -- manifests -------------------------------------------------------------------------------------------------

toml_values = st.one_of(
    st.text(string.ascii_letters + " -_./*", max_size=12).map(json.dumps),
    st.integers(-5, 10**6).map(str),
    st.sampled_from(
        ["true", "1.5", "-1", '"10s"', '"x y"', '["a", "b"]', "[1, 2]", '"+10%"', "{a = 1}", "[]", '""', "nan"]
    ),
)
toml_keys = st.sampled_from(
    ["name", "command", "inputs", "timeout", "interval", "env", "cwd", "tolerance", "repeat", "phases", "bogus", "root"]
)
manifest_text = st.lists(
    st.one_of(
        st.sampled_from(["[[case]]", "[defaults]", "[case]", "[[case.env]]", 'root = "."', 'root = "missing"']),
        st.builds("{} = {}".format, toml_keys, toml_values),
        st.text(max_size=30),
    ),
    max_size=12,
).map("\n".join)


@FUZZ
@given(manifest_text)
def test_manifests_load_or_give_a_manifest_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("m") / "memview.toml"
    path.write_text(text)
    try:
        manifest.load(path)
    except manifest.ManifestError as exc:
        one_line(exc)


def _valid_bundle_manifest() -> dict:
    files = [{"name": n, "size": 1, "sha256": "0" * 64} for n in (bundle.SAMPLES, *bundle.DATA_FILES)]
    return {
        "format": bundle.FORMAT,
        "version": 1,
        "files": files,
        "summary": {},
        "session": {"uid": "a" * 32, "kind": "run", "status": "completed", "started_at": 1.0},
    }


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "format",
                    "version",
                    "files",
                    "summary",
                    "session",
                    "session.uid",
                    "session.kind",
                    "session.started_at",
                    "session.pid",
                    "files.0",
                    "files.0.name",
                    "files.0.size",
                    "files.1.sha256",
                    "extra",
                ]
            ),
            json_values | st.sampled_from(["../x", "/etc/passwd", "artefacts/a", "a\\b", "C:x"]),
        ),
        max_size=3,
    )
)
def test_bundle_manifests_are_accepted_or_a_bundle_error(edits):
    doc = _valid_bundle_manifest()
    for where, value in edits:
        target, *path = where.split(".")
        if not path:
            doc[target] = value
            continue
        node = doc.get(target)
        for key in path[:-1]:
            node = node[int(key)] if isinstance(node, list) and key.isdigit() and int(key) < len(node) else None
        last = path[-1]
        if isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
    try:
        bundle.parse_manifest(json.dumps(doc).encode())
    except bundle.BundleError as exc:
        one_line(exc)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_as_a_bundle_manifest_are_a_bundle_error(data):
    try:
        bundle.parse_manifest(data)
    except bundle.BundleError as exc:
        one_line(exc)


def test_the_valid_bundle_manifest_used_above_is_accepted():
    assert bundle.parse_manifest(json.dumps(_valid_bundle_manifest()).encode()).session["kind"] == "run"
