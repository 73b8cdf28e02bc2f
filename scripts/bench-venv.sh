#!/usr/bin/env bash
# A venv in which bench/compare.py runs the ASGI servers on another CPython:
#
#   scripts/bench-venv.sh PYTHON DIR     # e.g. ~/.pyenv/versions/3.13.0/bin/python3.13 build/bench313
#   .venv/bin/python bench/compare.py --python DIR/bin/python --families asgi
#
# DIR gets a venv of PYTHON with the ASGI peers (bench/requirements-asgi.txt),
# and Starlette, FastAPI and setuptools at requirements-dev.txt's pins; then
# ursa's extension is built in place for PYTHON: its file name carries the
# interpreter's tag (src/ursa/_core.cpython-313-*.so), so it sits beside
# .venv's build and each interpreter imports its own. The harness puts src/
# first on the servers' PYTHONPATH (bench/serverprocess.py). Idempotent.
set -euo pipefail
[ "$#" -eq 2 ] || { echo "usage: $0 PYTHON DIR" >&2; exit 2; }
python=$1
dir=$2
cd "$(dirname "$0")/.."
if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "bench-venv: '$python' is not a CPython 3.11 or newer that runs (make bench-py313: set BENCH_PYTHON313)" >&2
    exit 2
fi
[ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
mapfile -t frameworks < <(grep -E '^(setuptools|wheel|starlette|fastapi)\b' requirements-dev.txt)
"$dir/bin/pip" install -q --disable-pip-version-check -r bench/requirements-asgi.txt "${frameworks[@]}"
"$dir/bin/python" setup.py -q build_ext --inplace
"$dir/bin/python" -c 'import sys, ursa._core as core; print(f"bench-venv: {sys.executable}: {core.__file__}")'
