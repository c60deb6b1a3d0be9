"""The command line's conventions: options before ``--`` are checked, durations take units, bad option
values are one usage line (exit 2) with nothing recorded, and shell completion knows session ids and
capture tools. Each runs the real ``python -m memview`` on a real database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import PY, kill_and_reap, read_json, workload

from memview.store import Store


def _sessions(db_path) -> list[dict]:
    return Store(db_path).sessions() if db_path.exists() else []


def test_a_mistyped_option_before_the_command_is_refused_not_run(memview, db_path, tmp_path):
    marker = tmp_path / "ran"
    res = memview("run", "--thresold", "800MB", "--", PY, "-c", f"open({str(marker)!r}, 'w')")
    assert res.returncode == 2, res.stderr
    assert "No such option '--thresold'" in res.stderr and "'--threshold'" in res.stderr  # with the suggestion
    assert "Traceback" not in res.stderr
    assert not marker.exists() and _sessions(db_path) == []  # nothing launched, nothing recorded


def test_the_commands_own_options_stay_its_own(memview, tmp_path):
    out = tmp_path / "argv.txt"
    code = f"import sys; open({str(out)!r}, 'w').write(' '.join(sys.argv[1:]))"
    # without --: memview's options end at COMMAND; an unknown option after it belongs to COMMAND
    res = memview("run", "-q", PY, "-c", code, "--thresold", "-x")
    assert res.returncode == 0, res.stderr
    assert out.read_text() == "--thresold -x"


@pytest.mark.parametrize("command", [["run", "-q", "--", "true"], ["attach", "1"], ["watch", "http://127.0.0.1:9/"]])
def test_duration_takes_units_and_refuses_nonsense(memview, command):
    bad = memview(command[0], "--duration", "2parsecs", *command[1:])
    assert bad.returncode == 2 and "Invalid value for '--duration': not a duration: '2parsecs'" in bad.stderr
    zero = memview(command[0], "--duration", "0s", *command[1:])
    assert zero.returncode == 2 and "must be longer than 0s" in zero.stderr


def test_duration_with_a_unit_stops_the_recording(memview, tmp_path):
    holder = subprocess.Popen(workload("hold.py", 5, 600), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        out = tmp_path / "s.json"
        res = memview("attach", str(holder.pid), "-q", "--duration", "300ms", "--interval", "20ms", "--json", str(out))
        assert res.returncode == 0, res.stderr
        assert holder.poll() is None  # --duration ended the recording, not the holder (it holds for 600 s)
    finally:
        kill_and_reap(holder)
    summary = read_json(out)
    assert summary["meta"]["stop_reason"] == "duration" and summary["wall_s"] >= 0.3, summary["meta"]


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "8XB"], "Invalid value for --threshold: unknown size unit 'XB'"),
    (["--capture", "py-spy-dmp"], "Invalid value for --capture: unknown capture py-spy-dmp"),
    (["--capture-duration", "soon"], "Invalid value for --capture-duration: not a duration: 'soon'"),
])
def test_a_bad_capture_option_is_one_usage_line(memview, db_path, args, message):
    res = memview("run", *args, "--", "true")
    assert res.returncode == 2 and res.stderr.startswith(f"Error: {message}"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert _sessions(db_path) == []


def _complete(db_path, words: str) -> list[str]:
    """What bash completion offers for ``memview WORDS`` (click's protocol, as the installed script asks)."""
    env = {**os.environ, "MEMVIEW_DB": str(db_path), "_MEMVIEW_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    res = subprocess.run([sys.executable, "-c", "from memview.cli import main; main(prog_name='memview')"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return [line.split(",", 1)[1] for line in res.stdout.splitlines()]


def test_completion_offers_session_ids_and_capture_tools(memview, db_path):
    for _ in range(2):
        assert memview("run", "-q", "--", "true").returncode == 0
    ids = sorted(str(s["id"]) for s in Store(db_path).sessions())
    assert len(ids) == 2
    assert sorted(_complete(db_path, "memview show ")) == ids
    assert _complete(db_path, f"memview show {ids[1]}") == [ids[1]]
    assert _complete(db_path, "memview run --capture py-spy-") == ["py-spy-dump", "py-spy-record"]
    assert _complete(db_path, "memview run --capture py-spy-dump,he") == ["py-spy-dump,heaptrack"]
