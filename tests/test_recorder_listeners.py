"""The recorder's listener seam: every hook it calls is a documented Listener hook, and a hook may
talk back to the session (issue 21: "listeners are called under a lock")."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path
from typing import get_args

from support import PY, MiB

from memview.analysis import memory_summary, session_summary
from memview.collectors.process import ProcessTreeCollector
from memview.model import Capture, Phase
from memview.recorder import Hook, Listener, Recorder
from memview.store import Store

RECORDER = Path(__file__).resolve().parents[1] / "memview" / "recorder.py"

# allocates and touches 48 MiB, reports its own VmRSS as the kernel counts it, then waits for stdin
_CHILD = (
    "import sys\n"
    "block = bytearray(48 * 2**20)\n"
    "for i in range(0, len(block), 4096): block[i] = 1\n"
    "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1]\n"
    "print(int(rss) * 1024, flush=True)\n"
    "sys.stdin.read()\n"
)


def test_the_listener_protocol_lists_every_hook_the_recorder_calls():
    hooks = {name for name in vars(Listener) if name.startswith("on_")}
    assert set(get_args(Hook)) == hooks
    called = set(re.findall(r'_notify\("(\w+)"', RECORDER.read_text()))
    assert called == hooks, (called, hooks)
    for name in hooks:
        assert getattr(Listener, name).__doc__, f"Listener.{name} says nothing about when it is called"


def test_hooks_that_call_back_into_the_recorder_do_not_deadlock(db_path):
    """A listener that records an event, a phase and a capture from inside the recorder's hooks and
    stops the session from one: every record lands in the database, in order, and the session ends."""
    child = subprocess.Popen([PY, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        reported_rss = int(child.stdout.readline())
        store = Store(db_path)
        recorder = Recorder(ProcessTreeCollector(child.pid, kind="attach"), store, interval=0.02, flush_every=0.05)
        calls: list[str] = []
        ended = threading.Event()

        class TalksBack:
            def on_batch(self, batch):
                calls.append("on_batch")
                if calls.count("on_batch") == 2:
                    recorder.add_event("note", "from on_batch")

            def on_event(self, event):
                calls.append("on_event")
                if event.kind == "note":
                    recorder.add_phase(Phase(name="p", depth=0, start_s=0.0, end_s=event.t))

            def on_phase(self, phase):
                calls.append("on_phase")
                recorder.add_capture(Capture(tool="none", pid=child.pid, trigger=phase.name, started_s=phase.end_s))

            def on_capture(self, capture):
                calls.append("on_capture")
                recorder.stop("a listener stopped it")

            def on_closing(self, rec):
                calls.append("on_closing")

            def on_end(self, rec):
                calls.append("on_end")
                ended.set()

        recorder.add_listener(TalksBack())
        recorder.start()
        assert recorder.wait(120), "the sampler never ended: a hook that called back into the recorder hung"
        closer = threading.Thread(target=recorder.close, daemon=True)
        closer.start()
        assert ended.wait(120), "close never reached on_end"
        closer.join(120)
    finally:
        child.stdin.close()  # it reads stdin to its end: this lets it exit by itself
        child.wait()
        child.stdout.close()
    sid = recorder.session_id
    assert recorder.stop_reason == "a listener stopped it"
    assert [e["message"] for e in store.events(sid) if e["kind"] == "note"] == ["from on_batch"]
    assert [p["name"] for p in store.phases(sid)] == ["p"]
    assert [c["trigger"] for c in store.captures(sid)] == ["p"]
    assert calls.index("on_event") < calls.index("on_phase") < calls.index("on_capture") < calls.index("on_closing")
    assert calls[-2:] == ["on_closing", "on_end"]
    # the summary made from memory (when the database cannot be written) says what the stored one says
    stored, in_memory = session_summary(store, sid), memory_summary(recorder)
    for key in ("phases", "captures", "samples", "peak_rss_bytes"):
        assert in_memory[key] == stored[key], key
    # the samples are the child's: its peak is at least what the kernel said it held after touching 48 MiB
    session = store.session(sid)
    assert session["peak_rss_bytes"] >= reported_rss >= 48 * MiB, (session["peak_rss_bytes"], reported_rss)
