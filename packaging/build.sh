#!/usr/bin/env bash
# Builds the self-contained one-folder app dist/memview/ (PyInstaller, packaging/memview.spec) and smoke-tests it.
#
# Everything the build needs goes into its own venv, build/venv (kept between builds, never committed):
# memview's dependencies from pyproject.toml and PyInstaller. The Python that creates it ($PYTHON, else
# python3) must be 3.11+ and built with a shared libpython (Debian's python3 is; pyenv needs
# PYTHON_CONFIGURE_OPTS=--enable-shared). Usage: packaging/build.sh   (then: dist/memview/memview)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=build/venv
start=$(date +%s)

shared=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)')
if [ "$shared" != 1 ]; then
  echo "build: $("$PYTHON" -c 'import sys; print(sys.executable)') has no shared libpython, which PyInstaller" \
       "needs: use another Python (PYTHON=/usr/bin/python3 $0)" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
echo "build: installing memview's dependencies and PyInstaller into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check . "pyinstaller>=6.10,<7"
echo "build: PyInstaller"
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/memview.spec
echo "build: built dist/memview in $(($(date +%s) - start)) s, $(du -sh dist/memview | cut -f1)"
packaging/smoke.sh dist/memview
