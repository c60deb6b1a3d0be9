"""Open phase NAME through memview.probe, hold SIZE MiB inside it, say "ready", wait for stdin to close.

Usage: fleet_phase.py NAME SIZE_MIB. An agent serving metrics must show NAME as the open phase.
"""

import sys

from common import touch

from memview.probe import phase

with phase(sys.argv[1]):
    buf = touch(int(sys.argv[2]) * 2**20)
    print("ready", flush=True)
    sys.stdin.read()
