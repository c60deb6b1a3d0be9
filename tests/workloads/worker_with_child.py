"""A harness whose worker announces one phase and, inside it, starts a process of its own.

Usage: worker_with_child.py REPORT_PATH. The worker holds 20 MiB itself; its child holds 60 MiB
for 1 s inside the worker's phase ``convert`` (long enough to be sampled). The report holds the
worker's pid and the child's own VmHWM, read by the child from /proc/self/status.
"""

import os
import subprocess
import sys

from common import hwm_bytes, report, touch

from memview.probe import phase

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[2])
from common import hwm_bytes, touch
buf = touch(60 * 2**20)
time.sleep(1.0)
open(sys.argv[1], "w").write(str(hwm_bytes()))
"""

if __name__ == "__main__":
    if sys.argv[1] == "worker":
        path = sys.argv[2]
        here = os.path.dirname(os.path.abspath(__file__))
        with phase("convert"):
            own = touch(20 * 2**20)
            subprocess.run([sys.executable, "-c", CHILD, path + ".child", here], check=True)
        report(path, {"pid": os.getpid(), "own_hwm": hwm_bytes(), "child_hwm": int(open(path + ".child").read())})
        sys.exit(0)
    fd = os.environ.get("MEMVIEW_FD", "")
    subprocess.run(
        [sys.executable, __file__, "worker", sys.argv[1]], pass_fds=(int(fd),) if fd.isdigit() else (), check=True
    )
