#!/usr/bin/env bash
# Runs the whole test suite against ursa built with AddressSanitizer and
# UBSan. The sanitized package is built in build/asan (the in-place build
# that `make test` uses is left alone) and put first on PYTHONPATH, which
# the servers the tests start inherit.
#
# CPython is not instrumented, so the ASan runtime is preloaded, and
# PYTHONMALLOC=malloc routes Python's allocations through malloc, where ASan
# sees them. LeakSanitizer runs in the ursa servers the tests start (they
# exit non-zero on a leak, which fails the test that stops them); it is off
# for pytest itself and for the other programs the tests run (nginx, curl,
# ss), whose leaks are not ours. From CPython 3.12 on the servers check
# before the interpreter's finalization, which leaks by itself
# (scripts/asan-site/sitecustomize.py).
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/asan
rm -rf "$out/ursa"
mkdir -p "$out"
cp -r src/ursa "$out/ursa"
find "$out/ursa" -name '*.so' -delete
URSA_SANITIZE=1 .venv/bin/python setup.py -q build_ext --build-lib "$out" --build-temp "$out/tmp" --force

export URSA_SANITIZE=1
export PYTHONPATH="$PWD/$out:$PWD/scripts/asan-site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONMALLOC=malloc
# libcrypt too where CPython has _crypt (it is gone from 3.13): ASan's crypt()
# interceptor calls the real crypt(), which it finds only if libcrypt is
# loaded when ASan starts (_crypt, used by Zope's tools and its login,
# crashed without it). awk reads all of ldconfig's output: leaving early
# would kill ldconfig with SIGPIPE, and pipefail would then stop this script
# (exit 141).
libcrypt=
if .venv/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("_crypt") is None)'; then
    libcrypt=$(ldconfig -p | awk '/libcrypt\.so\.1 .*x86-64/ && !found {print $NF; found = 1}')
fi
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)${libcrypt:+ $libcrypt}"
asan_common="abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0"
export ASAN_OPTIONS="detect_leaks=0:$asan_common"
export URSA_SERVER_ASAN_OPTIONS="detect_leaks=1:$asan_common"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan-suppressions.txt"

.venv/bin/python -c 'import ursa._core as c, sys; assert "build/asan" in c.__file__, c.__file__; print("sanitized core:", c.__file__)'
exec .venv/bin/python -m pytest -p no:cacheprovider "${@:-tests}"
