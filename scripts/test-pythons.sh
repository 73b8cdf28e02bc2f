#!/usr/bin/env bash
# Builds ursa for other CPython versions and runs the core and robustness
# suites against each (the frameworks and deployment tests need packages
# that not every version has). Versions: URSA_PYTHONS, default "3.8 3.11 3.12":
# the oldest supported; the oldest that serves ASGI, whose asyncio keeps
# the current task with _enter_task/_leave_task and has static types (Debian
# 12's python3); and 3.12, the first with eager tasks and heap types, whose
# asyncio differs from 3.13's (`make test` runs on .venv's, the newest
# present). Each is looked up on PATH as python3.X, then among pyenv's versions.
# A version not installed is skipped, said so.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/find-python.sh

status=0
for version in ${URSA_PYTHONS:-3.8 3.11 3.12}; do
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "test-pythons: CPython $version is not installed; skipped"
        continue
    fi
    out=build/py$version
    echo "== CPython $version ($python)"
    [ -x "$out/venv/bin/python" ] || "$python" -m venv "$out/venv"
    "$out/venv/bin/pip" install -q --disable-pip-version-check pytest requests setuptools httpx websockets
    rm -rf "$out/lib"
    mkdir -p "$out/lib"
    cp -r src/ursa "$out/lib/ursa"
    find "$out/lib" -name '*.so' -delete
    "$out/venv/bin/python" setup.py -q build_ext --build-lib "$out/lib" --build-temp "$out/tmp"
    PYTHONPATH="$PWD/$out/lib" "$out/venv/bin/python" -m pytest -p no:cacheprovider -q tests \
        --ignore=tests/deploy --ignore=tests/test_frameworks.py "$@" || status=1
done
exit $status
