"""Hold SIZE MiB for SECONDS, then write this process's own VmHWM. Usage: hold_report.py REPORT SIZE SECONDS"""

import sys
import time

from common import hwm_bytes, report, touch

buf = touch(int(sys.argv[2]) * 2**20)
time.sleep(float(sys.argv[3]))
report(sys.argv[1], {"hwm_bytes": hwm_bytes()})
