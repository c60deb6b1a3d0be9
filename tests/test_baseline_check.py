"""The baseline rules on hand-made documents: tolerance forms, phases, improved/missing/new, merging, medians."""

from __future__ import annotations

import pytest

from memview.baseline import (
    BaselineError,
    check,
    evaluate,
    parse_tolerance,
    update,
)
from memview.profile import combine
from memview.results import phase_peaks

MB = 1_000_000


def results(*records: dict) -> dict:
    return {"format": "memview-profile-results", "version": 1, "records": list(records)}


def rec(case: str, inp: str, peak: int | None, phases: dict[str, int] | None = None, **kw: object) -> dict:
    return {
        "case": case,
        "input": inp,
        "ok": True,
        "exit_code": 0,
        "peak_rss_bytes": peak,
        "phases": [{"name": n.split("#")[0], "peak_rss_bytes": v} for n, v in (phases or {}).items()],
        **kw,
    }


def baseline(cases: dict, default: str = "+10%") -> dict:
    return {"format": "memview-baseline", "version": 1, "default_tolerance": default, "cases": cases}


@pytest.mark.parametrize(
    ("text", "base", "limit"),
    [
        ("+10%", 100 * MB, 110 * MB),
        ("10%", 100 * MB, 110 * MB),
        ("+5MB", 100 * MB, 105 * MB),
        ("+5MiB", 100 * MB, 100 * MB + 5 * 2**20),
        ("+10% or +5MB", 100 * MB, 110 * MB),  # whichever allows more: the relative one for a big peak
        ("+10% or +5MB", 20 * MB, 25 * MB),  # the absolute one for a small peak
        ("+5MB OR +10%", 20 * MB, 25 * MB),
        ("+0%", 100 * MB, 100 * MB),
    ],
)
def test_tolerance_forms(text: str, base: int, limit: int) -> None:
    assert parse_tolerance(text).limit(base) == limit


@pytest.mark.parametrize("text", ["", "lots", "-5%", "+10% or +20%", "+5MB or +6MB", "+5 parsecs", 10])
def test_bad_tolerances_are_refused(text: object) -> None:
    with pytest.raises(BaselineError):
        parse_tolerance(text)


def test_a_phase_regression_is_named_even_when_the_total_is_within_tolerance() -> None:
    base = baseline(
        {"pdf": {"big.pdf": {"peak_rss_bytes": 500 * MB, "phases": {"parse": 100 * MB, "render": 480 * MB}}}}
    )
    res = results(rec("pdf", "big.pdf", 505 * MB, {"parse": 160 * MB, "render": 470 * MB}))
    text, code = check(base, res)
    assert code == 1
    assert "REGRESSED pdf big.pdf phase parse: 152.6 MiB > limit 104.9 MiB" in text
    assert "REGRESSED pdf big.pdf peak" not in text


def test_repeated_phase_names_are_matched_in_order() -> None:
    assert phase_peaks(
        [
            {"name": "load", "peak_rss_bytes": 1},
            {"name": "load", "peak_rss_bytes": 2},
            {"name": "x", "peak_rss_bytes": 3},
        ]
    ) == {"load": 1, "load#2": 2, "x": 3}
    base = baseline({"c": {"i": {"peak_rss_bytes": 100 * MB, "phases": {"load": 10 * MB, "load#2": 50 * MB}}}})
    res = results(
        {
            **rec("c", "i", 100 * MB),
            "phases": [{"name": "load", "peak_rss_bytes": 50 * MB}, {"name": "load", "peak_rss_bytes": 50 * MB}],
        }
    )
    rows = evaluate(base, res)
    assert [(r.what, r.status) for r in rows] == [("peak", "ok"), ("phase load", "REGRESSED"), ("phase load#2", "ok")]


def test_missing_phase_fails_a_new_phase_is_reported() -> None:
    base = baseline({"c": {"i": {"peak_rss_bytes": 100 * MB, "phases": {"parse": 10 * MB}}}})
    rows = evaluate(base, results(rec("c", "i", 100 * MB, {"render": 5 * MB})))
    assert {(r.what, r.status) for r in rows} == {("peak", "ok"), ("phase parse", "MISSING"), ("phase render", "new")}
    assert check(base, results(rec("c", "i", 100 * MB, {"render": 5 * MB})))[1] == 1


def test_improvement_beyond_the_tolerance_passes_and_says_so() -> None:
    base = baseline({"c": {"i": {"peak_rss_bytes": 100 * MB}}})
    text, code = check(base, results(rec("c", "i", 70 * MB)))
    assert code == 0 and "improved" in text and "consider an update" in text


def test_entry_tolerance_overrides_the_default() -> None:
    base = baseline(
        {"c": {"small": {"peak_rss_bytes": 20 * MB, "tolerance": "+10% or +5MB"}, "plain": {"peak_rss_bytes": 20 * MB}}}
    )
    rows = evaluate(base, results(rec("c", "small", 24 * MB), rec("c", "plain", 24 * MB)))
    assert [(r.input, r.status) for r in rows] == [("small", "ok"), ("plain", "REGRESSED")]


def test_failed_runs_missing_peaks_and_duplicates() -> None:
    base = baseline({"c": {"a": {"peak_rss_bytes": MB}, "b": {"peak_rss_bytes": MB}, "t": {"peak_rss_bytes": MB}}})
    res = results(
        rec("c", "a", None), rec("c", "b", MB, ok=False, exit_code=None, signal=9), rec("c", "t", MB, timed_out=True)
    )
    rows = {r.input: r for r in evaluate(base, res)}
    assert rows["a"].status == "NO PEAK"
    assert rows["b"].status == "FAILED" and "killed by signal 9" in rows["b"].detail
    assert rows["t"].status == "FAILED" and "timed out" in rows["t"].detail
    text, code = check(base, [results(rec("c", "a", MB)), results(rec("c", "a", MB))])
    assert code == 2 and "appears twice" in text
    assert check({"format": "nope"}, res)[1] == 2


def test_update_merges_and_keeps_reviewed_tolerances() -> None:
    prev = baseline({"c": {"i": {"peak_rss_bytes": MB, "tolerance": "+20%"}}, "old": {"x": {"peak_rss_bytes": MB}}})
    doc, notes = update(results(rec("c", "i", 2 * MB), rec("d", "j", 3 * MB, tolerance="+5MB")), prev)
    assert doc["cases"]["c"]["i"] == {"peak_rss_bytes": 2 * MB, "tolerance": "+20%"}  # the reviewed one stays
    assert doc["cases"]["d"]["j"] == {"peak_rss_bytes": 3 * MB, "tolerance": "+5MB"}  # from the manifest
    assert "old" in doc["cases"] and any("kept old" in n for n in notes)
    doc, _ = update(results(rec("c", "i", 2 * MB)), prev, tolerance="+10%", prune=True)
    assert doc["cases"] == {"c": {"i": {"peak_rss_bytes": 2 * MB}}}  # +10% is the default: not repeated
    with pytest.raises(BaselineError, match="failed runs"):
        update(results(rec("c", "i", MB, ok=False, exit_code=1)))


def _run(peak: int, ok: bool = True, sid: int = 0) -> dict:
    return {
        **rec("c", "i", peak, {"parse": peak // 2}),
        "ok": ok,
        "exit_code": 0 if ok else 3,
        "signal": None,
        "avg_rss_bytes": peak // 2,
        "wall_s": 1.0,
        "captures": [],
        "warnings": [],
        "session_id": sid,
        "log": f"/tmp/{sid}.log",
    }


def test_combine_uses_the_median_and_a_failure_wins() -> None:
    runs = [_run(30 * MB, sid=1), _run(10 * MB, sid=2), _run(50 * MB, sid=3), _run(20 * MB, sid=4)]
    out = combine(runs)
    assert out["peak_rss_bytes"] == 25 * MB  # median of four: the mean of the middle two
    assert out["repeat"]["peak_rss_bytes"]["min"] == 10 * MB and out["repeat"]["peak_rss_bytes"]["max"] == 50 * MB
    assert out["phases"][0]["peak_rss_bytes"] == 25 * MB // 2
    assert out["session_ids"] == [1, 2, 3, 4] and out["session_id"] == 4  # the lower-middle run
    assert out["ok"]
    runs[1] = _run(10 * MB, ok=False, sid=2)
    out = combine(runs)
    assert not out["ok"] and out["exit_code"] == 3


MiB = 2**20


def _extraction_run(extract_mib: int) -> dict:
    """Four phases in a row; ``extract`` allocates and keeps ``extract_mib``, the others allocate nothing
    of their own, so every later phase's *absolute* peak carries extract's memory."""
    phases, rss = [], 100 * MiB
    for name, own in (("load", 10), ("extract", extract_mib), ("chunk", 0), ("embed", 5)):
        start, peak = rss, rss + own * MiB
        phases.append(
            {
                "name": name,
                "start_rss_bytes": start,
                "peak_rss_bytes": peak,
                "footprint_bytes": peak - start,
                "growth_bytes": peak - start,
            }
        )
        rss = peak
    return {"case": "doc", "input": "a.pdf", "ok": True, "exit_code": 0, "peak_rss_bytes": rss, "phases": phases}


def test_only_the_phase_whose_own_use_grew_is_flagged() -> None:
    """Issue 16 item 3: extract grew by 130 MiB; chunk and embed allocated the same as before."""
    base, notes = update(results(_extraction_run(45)), tolerance="+10%")
    assert base["version"] == 2
    assert base["cases"]["doc"]["a.pdf"]["phases"]["chunk"] == {
        "peak_rss_bytes": 155 * MiB,
        "footprint_bytes": 0,
        "growth_bytes": 0,
    }
    rows = evaluate(base, results(_extraction_run(175)))
    regressed = sorted(r.what for r in rows if r.status == "REGRESSED")
    assert regressed == ["peak", "phase extract footprint", "phase extract growth"]
    text, code = check(base, results(_extraction_run(175)))
    assert code == 1
    assert "REGRESSED doc a.pdf phase extract footprint: 175.0 MiB > limit 49.5 MiB" in text
    assert "chunk" not in "\n".join(line for line in text.splitlines() if line.startswith("REGRESSED"))
    # the same run again passes; allocator noise below the floor in a zero-footprint phase passes
    assert check(base, results(_extraction_run(45)))[1] == 0
    noisy = _extraction_run(45)
    noisy["phases"][2]["footprint_bytes"] = noisy["phases"][2]["growth_bytes"] = MiB
    assert check(base, results(noisy))[1] == 0


def test_a_version_1_baseline_is_migrated_and_still_checks() -> None:
    old = {
        "format": "memview-baseline",
        "version": 1,
        "default_tolerance": "+10%",
        "cases": {"doc": {"a.pdf": {"peak_rss_bytes": 160 * MiB, "phases": {"extract": 155 * MiB}}}},
    }
    rows = evaluate(old, results(_extraction_run(45)))
    phase = next(r for r in rows if r.what.startswith("phase extract"))
    assert phase.what == "phase extract" and phase.status == "ok" and "absolute peak" in phase.detail
    doc, _ = update(results(_extraction_run(45)), old)
    assert doc["version"] == 2 and doc["cases"]["doc"]["a.pdf"]["phases"]["extract"]["footprint_bytes"] == 45 * MiB
    with pytest.raises(BaselineError, match="version 3"):
        evaluate({**old, "version": 3}, results(_extraction_run(45)))
