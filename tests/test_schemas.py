"""The JSON memview writes for other programs matches the schemas it ships (memview/schemas/).

Every document here is a real output: a recorded run with phases and a capture-less trigger, ``show
--json`` of it, a ``profile`` run over a manifest, and the manifest inside an exported bundle. A
schema that drifts from the code, or a document that loses its ``format``/``version``, fails here.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from support import PY, read_json, workload

from memview import schemas
from memview.analysis import SUMMARY_FORMAT, SUMMARY_VERSION


def _validator(name: str) -> Draft202012Validator:
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in (schemas.load(n) for n in schemas.NAMES)
    )
    schema = schemas.load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def _valid(name: str, doc: dict) -> None:
    errors = sorted(_validator(name).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.fixture
def recorded(memview, tmp_path) -> tuple[dict, Path]:
    """A real run with three phases and a trigger event, its --json summary."""
    out = tmp_path / "run.json"
    res = memview(
        "run",
        "-q",
        "--interval",
        "20ms",
        "--threshold",
        "30MB",
        "--capture",
        "none",
        "--json",
        str(out),
        "--",
        *workload("phases3.py", tmp_path / "truth.json", 20, 40, 10),
    )
    assert res.returncode == 0, res.stderr
    return read_json(out), out


def test_run_and_show_summaries_match_the_schema(memview, recorded):
    summary, _ = recorded
    assert (summary["format"], summary["version"]) == (SUMMARY_FORMAT, SUMMARY_VERSION)
    assert SUMMARY_FORMAT == "memview-session-summary" and SUMMARY_VERSION == 1
    assert len(summary["phases"]) == 3 and any(e["kind"] == "trigger" for e in summary["events"])
    _valid("session-summary", summary)
    shown = memview("show", str(summary["session_id"]), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == summary
    _valid("session-summary", json.loads(shown.stdout))


def test_the_schema_refuses_what_is_not_a_summary(recorded):
    summary, _ = recorded
    for broken in (
        {**summary, "version": 2},
        {k: v for k, v in summary.items() if k != "format"},
        {**summary, "peak_rss_bytes": "big"},
        {**summary, "phases": [{"name": "x"}]},
    ):
        assert list(_validator("session-summary").iter_errors(broken)), broken


def test_bundle_manifest_matches_the_schema(memview, recorded, tmp_path):
    summary, _ = recorded
    bundle = tmp_path / "s.memview.zip"
    res = memview("export", str(summary["session_id"]), "-o", str(bundle))
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    _valid("bundle-manifest", manifest)
    assert manifest["summary"]["session_id"] == summary["session_id"]


def test_profile_results_match_the_schema(memview, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, mib in {"a.txt": 20, "b.txt": 30}.items():
        (inputs / name).write_text(f"{mib}\n")
    manifest = tmp_path / "memory.toml"
    workload_path = workload("from_input.py")[1]
    manifest.write_text(f"""
[[case]]
name = "alpha"
command = [{json.dumps(PY)}, {json.dumps(workload_path)}, "{{input}}"]
inputs = ["inputs/a.txt", "inputs/b.txt"]
""")
    out = tmp_path / "results.json"
    res = memview("profile", "-q", "--manifest", str(manifest), "--output-json", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    results = read_json(out)
    assert [r["input"] for r in results["records"]] == ["inputs/a.txt", "inputs/b.txt"]
    _valid("profile-results", results)
