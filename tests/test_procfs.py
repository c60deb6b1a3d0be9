"""/proc is read in one place (collectors/procfs.py), and read right (issue 21).

Real processes: one whose name holds ``) (`` (``stat`` must be split after the last parenthesis),
a zombie (not alive, though its PID exists), a reused identity (same PID, other start time).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from support import PY, wait_for

from memview.collectors import procfs

pytestmark = pytest.mark.skipif(not procfs.AVAILABLE, reason="/proc is Linux's")

ROOT = Path(__file__).resolve().parents[1] / "memview"
#: files of other engineers' areas that still read /proc themselves; the lead moves them after the merge
NOT_YET: set[str] = set()


def test_no_module_but_procfs_opens_proc_files():
    """Before: captures/base.py re-parsed stat, four modules read cmdline, three checked liveness."""
    opens = re.compile(r"""(open|readlink|listdir|exists|Path)\(\s*f?["']/proc""")
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in ROOT.rglob("*.py")
        if p.name != "procfs.py" and p.name not in NOT_YET
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if opens.search(line)
    ]
    assert found == []


@pytest.fixture
def odd_name(tmp_path):
    """A running process whose comm is ``a) b (c``: a naive split of stat reads the wrong fields."""
    link = tmp_path / "a) b (c"
    link.symlink_to(PY)
    proc = subprocess.Popen([str(link), "-c", "import sys; sys.stdin.read()", "x y", ""], stdin=subprocess.PIPE)
    wait_for(lambda: (procfs.cmdline(proc.pid) or [None])[0] == str(link))  # it has exec'd
    yield proc
    proc.stdin.close()
    proc.wait()


def test_stat_and_cmdline_of_a_process_with_parentheses_in_its_name(odd_name):
    st = procfs.stat(odd_name.pid)
    assert st is not None and st.comm == "a) b (c" and st.ppid == os.getpid(), st
    assert st.state in ("R", "S") and st.start_ticks > 0
    assert procfs.cmdline(odd_name.pid)[2:] == ["import sys; sys.stdin.read()", "x y"]  # the empty arg is dropped
    fields = procfs.status(odd_name.pid)
    assert fields is not None and fields["Name"] == "a) b (c" and int(fields["PPid"]) == os.getpid()
    assert procfs.kib_field(fields, "VmHWM") >= procfs.kib_field(fields, "VmRSS") > 0
    assert procfs.alive(odd_name.pid, st.start_ticks) and not procfs.alive(odd_name.pid, st.start_ticks + 1)


def test_a_zombie_is_not_alive_and_a_reaped_process_is_gone():
    proc = subprocess.Popen([PY, "-c", "pass"])
    try:
        wait_for(lambda: (procfs.stat(proc.pid) or procfs.Stat("", "?", 0, 0)).state == "Z")
        assert not procfs.alive(proc.pid)
        assert procfs.cmdline(proc.pid) == []  # a zombie's arguments are gone with its memory
    finally:
        proc.wait()
    assert procfs.stat(proc.pid) is None and procfs.cmdline(proc.pid) is None and procfs.status(proc.pid) is None
    assert not procfs.alive(proc.pid)
