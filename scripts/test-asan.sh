#!/usr/bin/env bash
# Runs the whole test suite against ursa built with AddressSanitizer and
# UBSan. The sanitized package is built in build/asan (the in-place build
# that `make test` uses is left alone) and put first on PYTHONPATH, which
# the servers the tests start inherit.
#
# CPython is not instrumented, so the ASan runtime is preloaded, and
# PYTHONMALLOC=malloc routes Python's allocations through malloc, where ASan
# sees them. Leak detection is off here: CPython keeps memory for the life
# of the process by design, which LeakSanitizer would report at every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/asan
rm -rf "$out/ursa"
mkdir -p "$out"
cp -r src/ursa "$out/ursa"
find "$out/ursa" -name '*.so' -delete
URSA_SANITIZE=1 .venv/bin/python setup.py -q build_ext --build-lib "$out" --build-temp "$out/tmp" --force

export URSA_SANITIZE=1
export PYTHONPATH="$PWD/$out${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONMALLOC=malloc
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

.venv/bin/python -c 'import ursa._core as c, sys; assert "build/asan" in c.__file__, c.__file__; print("sanitized core:", c.__file__)'
exec .venv/bin/python -m pytest tests -p no:cacheprovider "$@"
