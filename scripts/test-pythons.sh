#!/usr/bin/env bash
# Builds ursa for other CPython versions and runs the core and robustness
# suites against each (the frameworks and deployment tests need packages
# that not every version has). Versions: URSA_PYTHONS, default "3.8 3.11":
# the oldest supported, and the oldest that serves ASGI, the only one whose
# ASGI tasks start without 3.12's eager_start (Debian 12's python3, and
# .venv's before setup.sh took the newest present, which `make test` runs
# on). Each is looked up on PATH as python3.X, then among pyenv's versions.
# A version not installed is skipped, said so.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/find-python.sh

status=0
for version in ${URSA_PYTHONS:-3.8 3.11}; do
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
