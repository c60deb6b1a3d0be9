"""The command line's conventions: options before ``--`` are checked, durations take units, bad option
values are one usage line (exit 2) with nothing recorded, and shell completion knows session ids and
capture tools. Each runs the real ``python -m memview`` on a real database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "8XB"], "Invalid value for --threshold: unknown size unit 'XB'"),
        (["--capture", "py-spy-dmp"], "Invalid value for --capture: unknown capture py-spy-dmp"),
        (["--capture-duration", "soon"], "Invalid value for --capture-duration: not a duration: 'soon'"),
    ],
)
def test_a_bad_capture_option_is_one_usage_line(memview, db_path, args, message):
    res = memview("run", *args, "--", "true")
    assert res.returncode == 2 and res.stderr.startswith(f"Error: {message}"), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert _sessions(db_path) == []


def _complete(db_path, words: str, kinds: bool = False) -> list[str]:
    """What bash completion offers for ``memview WORDS`` (click's protocol, as the installed script asks);
    with ``kinds``, each as ``type,value`` (``file,…`` makes bash fall back to file names)."""
    env = {
        **os.environ,
        "MEMVIEW_DB": str(db_path),
        "_MEMVIEW_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    res = subprocess.run(
        [sys.executable, "-c", "from memview.cli import main; main(prog_name='memview')"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stdout.splitlines() if line]  # nothing to offer is one empty line
    return lines if kinds else [line.split(",", 1)[1] for line in lines]


def test_completion_offers_session_ids_and_capture_tools(memview, db_path):
    for _ in range(2):
        assert memview("run", "-q", "--", "true").returncode == 0
    ids = sorted(str(s["id"]) for s in Store(db_path).sessions())
    assert len(ids) == 2
    assert sorted(_complete(db_path, "memview show ")) == ids
    assert _complete(db_path, f"memview show {ids[1]}") == [ids[1]]
    assert _complete(db_path, "memview run --capture py-spy-") == ["py-spy-dump", "py-spy-record"]
    assert _complete(db_path, "memview run --capture py-spy-dump,he") == ["py-spy-dump,heaptrack"]


def test_every_command_taking_a_session_completes_its_ids(memview, db_path, tmp_path):
    """export takes an id; compare and baseline take ids or files (a bundle, a results JSON): bash gets the
    ids that match and, when none does, its own file-name completion (the ``file`` item)."""
    for _ in range(2):
        assert memview("run", "-q", "--", "true").returncode == 0
    ids = sorted(str(s["id"]) for s in Store(db_path).sessions())
    assert sorted(_complete(db_path, "memview export ")) == ids
    for words in ("memview compare ", f"memview compare {ids[0]} ", "memview baseline check b.json "):
        offered = _complete(db_path, words, kinds=True)
        assert offered[0] == "file," and sorted(offered[1:]) == [f"plain,{i}" for i in ids], (words, offered)
    assert _complete(db_path, "memview compare run", kinds=True) == ["file,run"]  # no id: file names


def test_completion_reads_the_db_named_on_the_line_and_creates_none(memview, db_path, tmp_path):
    assert memview("run", "-q", "--", "true").returncode == 0
    (sid,) = [str(s["id"]) for s in Store(db_path).sessions()]
    elsewhere = tmp_path / "elsewhere.db"
    assert _complete(elsewhere, f"memview show --db {db_path} ") == [sid]  # --db wins over MEMVIEW_DB
    assert _complete(elsewhere, "memview show ") == []
    assert not elsewhere.exists()  # a TAB never leaves an empty database behind


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed to run click's completion script")
def test_the_bash_script_memview_prints_completes_session_ids(memview, db_path, tmp_path):
    """The documented set-up, end to end: bash evaluates ``_MEMVIEW_COMPLETE=bash_source memview`` and its
    completion function fills COMPREPLY with the stored ids, the session's name as help."""
    assert memview("run", "-q", "--name", "first", "--", "true").returncode == 0
    assert memview("run", "-q", "--", "true").returncode == 0
    ids = sorted(str(s["id"]) for s in Store(db_path).sessions())
    bindir = tmp_path / "bin"
    bindir.mkdir()
    launcher = bindir / "memview"  # what the console script is, for this checkout's code
    launcher.write_text(f"#!{sys.executable}\nfrom memview.cli import main\nmain()\n")
    launcher.chmod(0o755)
    script = (
        'eval "$(_MEMVIEW_COMPLETE=bash_source memview)"; COMP_WORDS=(memview show ""); COMP_CWORD=2; '
        '_memview_completion memview; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {
        **os.environ,
        "MEMVIEW_DB": str(db_path),
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):  # a missed completion variable would open the
        env.pop(name, None)  # GUI: without a display it says so and exits instead of waiting for a window to close
    res = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert sorted(res.stdout.split()) == ids
