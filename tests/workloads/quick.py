"""Allocate SIZE MiB and exit at once (a child that lives a few ms); reports its VmHWM."""

import sys

from common import hwm_bytes, report, touch

buf = touch(int(sys.argv[2]) * 2**20)
report(sys.argv[1], {"hwm_bytes": hwm_bytes()})
