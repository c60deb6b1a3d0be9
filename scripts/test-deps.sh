#!/usr/bin/env bash
# Installs what memview's test suite needs on a fresh Debian/Ubuntu machine: the package with its
# test extras, and the real tools the tests drive (heaptrack, node, gcc, rustc, strace, Qt's runtime
# libraries, Xvfb). A test whose tool is missing skips with the reason in pytest's summary (-rs); on a
# machine set up by this script none skips for a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v heaptrack >/dev/null || need+=(heaptrack)
command -v heaptrack_print >/dev/null || need+=(heaptrack)
command -v node >/dev/null || need+=(nodejs)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v gdb >/dev/null || need+=(gdb)
command -v desktop-file-validate >/dev/null || need+=(desktop-file-utils)  # tests/test_packaging.py
command -v prometheus >/dev/null || need+=(prometheus)  # tests/test_fleet.py
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v gcc >/dev/null || need+=(gcc)           # test_captures.py: heaptrack on a C program
command -v rustc >/dev/null || need+=(rustc)       # test_phases.py: a Rust program's phases
command -v strace >/dev/null || need+=(strace)     # test_captures.py: what a capture tool was run with
# Qt's offscreen/xcb platform plugins load these even without a display
for lib in libEGL.so.1 libxkbcommon.so.0 libfontconfig.so.1 libdbus-1.so.3 libGL.so.1 libxkbcommon-x11.so.0 \
           libxcb-cursor.so.0; do
  ldconfig -p | grep -q "$lib" || need+=("$lib")
done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=(heaptrack nodejs xvfb gdb desktop-file-utils prometheus prometheus-pushgateway gcc libc6-dev rustc strace
        libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
        libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
        libxcb-render-util0 libxcb-image0)
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  else
    echo "missing: ${need[*]} — run as root or: sudo apt-get install ${pkgs[*]}" >&2
  fi
fi
python3 -m pip install -q -e '.[test]'
