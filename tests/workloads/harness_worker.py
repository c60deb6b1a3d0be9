"""A harness that runs its worker in a subprocess; the worker announces the phases (issue 16).

Usage: harness_worker.py REPORT_PATH [EXTRACT_MIB] [nosync]. The root (the harness) holds 30 MiB of its own
the whole time and starts the worker with ``MEMVIEW_FD`` inherited (``pass_fds``). The worker runs
``load`` (keeps 20 MiB), ``extract`` (keeps EXTRACT_MIB, default 45, plus a 40 MiB burst it frees)
and ``chunk`` (keeps 10 MiB), then exits right after the last ``phase_end``. The worker writes its
own truth, read from its own /proc/self/statm: RSS at each phase's start, at its worst moment and
at its end; the harness writes nothing about phases (it announced none).
"""

import os
import subprocess
import sys

from common import report, rss_bytes, touch

from memview.probe import phase


def worker(path: str, extract_mib: int) -> None:
    truth: dict[str, dict[str, int]] = {}
    kept = []
    for name, keep, burst in (("load", 20, 0), ("extract", extract_mib, 40), ("chunk", 10, 0)):
        with phase(name):
            start = rss_bytes()
            kept.append(touch(keep * 2**20))
            peak = rss_bytes()
            if burst:
                tmp = touch(burst * 2**20)
                peak = rss_bytes()
                del tmp
            end = rss_bytes()
            truth[name] = {"start": start, "peak": peak, "end": end}
    report(path, {"pid": os.getpid(), "phases": truth})
    os._exit(0)  # right after the last boundary: no interpreter teardown in between


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker(sys.argv[2], int(sys.argv[3]))
    path, extract = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 45
    env = dict(os.environ)
    if sys.argv[3:] == ["nosync"]:
        env["MEMVIEW_SYNC"] = "0"  # the worker does not wait for memview: it may be gone when its end is read
    own = touch(30 * 2**20)
    fd = os.environ.get("MEMVIEW_FD", "")
    subprocess.run(
        [sys.executable, __file__, "worker", path, str(extract)],
        env=env,
        pass_fds=(int(fd),) if fd.isdigit() else (),
        check=True,
    )
