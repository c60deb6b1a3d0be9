"""Allocate SIZE MiB, say "ready" on stdout, then wait until signalled or STDIN closes.

Usage: hold.py [SIZE_MIB] [SECONDS]; exits 0 after SECONDS (default: 60).
"""

import sys
import time

from common import touch

size = int(sys.argv[1]) if len(sys.argv) > 1 else 50
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
buf = touch(size * 2**20)
print("ready", flush=True)
time.sleep(seconds)
