#!/usr/bin/env bash
# Smoke-tests a built one-folder app (default dist/memview) in a bare environment: no Python on PATH, no
# PYTHON* variables, a fresh HOME. Checks --version, the bundled py-spy, the GUI's main window (offscreen,
# it must open and exit 0) and install-desktop. Usage: packaging/smoke.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

app=$(realpath "${1:-dist/memview}")
exe="$app/memview"
[ -x "$exe" ] || { echo "smoke: $exe does not exist: run packaging/build.sh first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/empty-path"
# PATH is an empty folder: nothing, Python included, can be found through it
bare=(env -i "HOME=$tmp/home" "PATH=$tmp/empty-path" LANG=C.UTF-8)
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

want="memview, version $(sed -n 's/^__version__ = "\(.*\)"$/\1/p' memview/__init__.py)"
got=$("${bare[@]}" "$exe" --version) || fail "--version failed"
[ "$got" = "$want" ] || fail "--version printed '$got', expected '$want'"
echo "smoke: ok: $got"

got=$("${bare[@]}" "$app/py-spy" --version) || fail "bundled py-spy did not run"
echo "smoke: ok: bundled $got"

code=0
title=$(timeout 120 "${bare[@]}" QT_QPA_PLATFORM=offscreen MEMVIEW_SMOKE_EXIT_MS=1500 \
        "$exe" gui --db "$tmp/x.db" 2>"$tmp/gui.err") || code=$?
[ "$code" = 0 ] || { cat "$tmp/gui.err" >&2; fail "gui exited $code"; }
case "$title" in
  memview*x.db) echo "smoke: ok: the main window opened offscreen ('$title') and the app exited 0" ;;
  *) cat "$tmp/gui.err" >&2; fail "gui printed '$title', expected the main window's title" ;;
esac

# memview finds the py-spy beside it (PATH has none): a real dump of a Python process, if the machine has one
target=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null || true)  # not a shim
if [ -n "$target" ]; then
  "${bare[@]}" "$exe" run --quiet --db "$tmp/cap.db" --threshold 30MB --capture py-spy-dump -- \
    "$target" tests/workloads/hold.py 60 2 >"$tmp/run.out" 2>&1 || { cat "$tmp/run.out" >&2; fail "run exited non-zero"; }
  dump=$(find "$tmp" -name '*py-spy-dump*.txt' | head -1)
  [ -n "$dump" ] && grep -q 'hold.py' "$dump" || { cat "$tmp/run.out" >&2; fail "no py-spy dump of hold.py"; }
  echo "smoke: ok: a threshold capture ran the bundled py-spy ($(basename "$dump"))"
else
  echo "smoke: skipped the py-spy capture: no python3 to watch on this machine"
fi

"${bare[@]}" "$exe" install-desktop --prefix "$tmp/share" >/dev/null || fail "install-desktop failed"
grep -qxF "Exec=$exe gui" "$tmp/share/applications/memview.desktop" || fail "the desktop entry's Exec is not $exe"
cmp -s resources/memview.svg "$tmp/share/icons/hicolor/scalable/apps/memview.svg" || fail "the icon differs"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$tmp/share/applications/memview.desktop" | grep -v ': hint: ' || true
  desktop-file-validate "$tmp/share/applications/memview.desktop" >/dev/null || fail "invalid desktop entry"
fi
"${bare[@]}" "$exe" install-desktop --uninstall --prefix "$tmp/share" >/dev/null || fail "--uninstall failed"
[ ! -e "$tmp/share/applications/memview.desktop" ] || fail "--uninstall left the desktop entry"
echo "smoke: ok: install-desktop wrote a valid entry for $exe and removed it again"
echo "smoke: all passed ($(du -sh "$app" | cut -f1) in $app)"
