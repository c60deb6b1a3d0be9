"""Finds the test that left a child unwaited or a pipe unclosed, and names it.

Why: a ``Popen`` whose pipes are never closed, or whose child is never waited for, is found by the
garbage collector later, in whichever test happens to be running then; its ResourceWarning (an
error in this suite) blames the wrong test, so the suite used to let those warnings through. This
guard records every ``Popen`` created while a test runs (in the test process, so memview code the
test calls in-process is covered too) and, when the test ends, fails that test with the place the
process was started, after reaping it so nothing leaks into the next test.
"""

from __future__ import annotations

import subprocess
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

# where the guard was installed; None while no test is being watched
_watched: list[tuple[subprocess.Popen, str]] | None = None
_original_init = subprocess.Popen.__init__


def _tracking_init(self: subprocess.Popen, *args: object, **kwargs: object) -> None:
    _original_init(self, *args, **kwargs)  # type: ignore[arg-type]
    if _watched is not None:
        # the frames above this one, minus the Popen machinery: where the test (or memview) started it
        site = "".join(traceback.format_stack(limit=8)[:-1])
        _watched.append((self, site))


def _open_pipes(proc: subprocess.Popen) -> list[str]:
    return [name for name in ("stdin", "stdout", "stderr") if (f := getattr(proc, name)) is not None and not f.closed]


def _reap(proc: subprocess.Popen) -> None:
    """Kill (if still running), wait for and close a leaked process so the next test starts clean."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.communicate(timeout=60)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        pass
    for name in ("stdin", "stdout", "stderr"):
        f = getattr(proc, name)
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
    proc.wait(timeout=60)


def install() -> None:
    """Route ``subprocess.Popen`` construction through the recorder (idempotent)."""
    subprocess.Popen.__init__ = _tracking_init  # type: ignore[method-assign]


@contextmanager
def watching() -> Iterator[list[str]]:
    """Record the Popens started inside the block; on exit, list (and reap) the ones left open.

    The yielded list is filled on exit with one message per leaked process: what was left (the child
    not waited for, which pipes open) and where the process was started."""
    global _watched
    problems: list[str] = []
    _watched = []
    try:
        yield problems
    finally:
        procs, _watched = _watched, None
        for proc, site in procs:
            # Popen.__del__ warns for an unset returncode even when the child has exited (a zombie)
            unwaited = proc.returncode is None
            running = unwaited and proc.poll() is None
            pipes = _open_pipes(proc)
            if not (unwaited or pipes):
                continue
            what = []
            if running:
                what.append("child still running")
            elif unwaited:
                what.append("child exited but never waited for (returncode unset)")
            if pipes:
                what.append("open pipes: " + ", ".join(pipes))
            problems.append(f"Popen {proc.args!r}: {'; '.join(what)}; started at\n{site}")
            _reap(proc)
