"""Allocate as many MiB as the input file says, like an extractor whose memory follows its document.

Usage: from_input.py INPUT. The input holds ``MIB [EXIT_CODE]``. Writes ``INPUT.truth.json`` with
the kernel's VmHWM for this process, the figure memview must report.
"""

import sys

from common import hwm_bytes, report, touch

path = sys.argv[1]
words = open(path).read().split()
size = int(words[0])
buf = touch(size * 2**20)
report(path + ".truth.json", {"hwm_bytes": hwm_bytes()})
sys.exit(int(words[1]) if len(words) > 1 else 0)
