#!/bin/sh
# Phases announced by a plain shell script: echo JSON lines to the inherited MEMVIEW_FD.
# Usage: phases.sh PYTHON REPORT_DIR. Each phase runs a child (hold_report.py) that holds N MiB
# for 0.4 s and writes its own VmHWM to REPORT_DIR/NAME.json; the memory is in the children, so
# these phase peaks are the sampled tree maxima (flag "tree").
set -e
py="$1"
dir="$2"
here=$(dirname "$0")
[ -n "$MEMVIEW_FD" ] || { echo "not under memview" >&2; exit 3; }
echo '{"event": "mark", "name": "script started"}' >&"$MEMVIEW_FD"
for spec in small:30 big:120 mid:70; do
  name=${spec%%:*}
  mib=${spec#*:}
  echo "{\"event\": \"phase_start\", \"name\": \"$name\", \"data\": {\"mib\": $mib}}" >&"$MEMVIEW_FD"
  "$py" "$here/hold_report.py" "$dir/$name.json" "$mib" 0.4
  echo "{\"event\": \"phase_end\", \"name\": \"$name\"}" >&"$MEMVIEW_FD"
done
