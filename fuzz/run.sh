#!/usr/bin/env bash
# Builds the request-path fuzzer (libFuzzer + AddressSanitizer + UBSan, with
# CPython embedded) and runs it for FUZZ_SECONDS (default 60). Exits non-zero
# when the fuzzer finds a crash, a leak or a broken invariant; the input that
# did it is left in build/fuzz/ (crash-*, leak-*), and can be replayed with
#   build/fuzz/fuzz_request build/fuzz/crash-<hash>
#
# Needs clang and its runtime libraries (Debian: apt-get install clang
# libclang-rt-14-dev), libev, llhttp, wslay and zlib as for the extension
# itself.
#
#   FUZZ_SECONDS=600 fuzz/run.sh      # a longer run
#   FUZZ_JOBS=2 fuzz/run.sh           # parallel fuzzing processes
#   FUZZ_BUILD_ONLY=1 fuzz/run.sh     # build, run the seed corpus once, stop
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}
PYTHON=${PYTHON:-.venv/bin/python}
CC=${CC:-clang}
out=build/fuzz
work=fuzz/corpus-work  # what the fuzzer learns; kept between runs, not committed

if [ "$CC" = clang ] && ! dpkg -s clang libclang-rt-14-dev >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "fuzz/run.sh: installing clang and libclang-rt-14-dev"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
if ! command -v "$CC" >/dev/null; then
    echo "fuzz/run.sh: $CC not found; install clang and libclang-rt-14-dev (Debian)" >&2
    exit 2
fi
mkdir -p "$out/obj" "$work"

# Embedding CPython: its headers and libpython, from the interpreter ursa
# is built for (a venv has no python3-config of its own).
read -r py_include py_ldflags < <("$PYTHON" - <<'EOF'
import os, sysconfig
v = sysconfig.get_config_var
libdir = v("LIBDIR") if v("Py_ENABLE_SHARED") else v("LIBPL")
flags = [f"-L{libdir}", f"-lpython{v('LDVERSION')}"]
if v("Py_ENABLE_SHARED"):
    flags.append(f"-Wl,-rpath,{libdir}")
flags += (v("LIBS") or "").split() + (v("SYSLIBS") or "").split()
print(sysconfig.get_paths()["include"], " ".join(flags))
EOF
)

# llhttp, as setup.py finds it: a system library, else its C sources.
llhttp_cflags=() llhttp_libs=() llhttp_sources=()
if pkg-config --exists libllhttp 2>/dev/null; then
    read -ra llhttp_cflags < <(pkg-config --cflags libllhttp)
    read -ra llhttp_libs < <(pkg-config --libs libllhttp)
else
    for dir in "${URSA_LLHTTP_SRC:-}" /usr/share/llhttp /usr/local/share/llhttp; do
        if [ -n "$dir" ] && [ -f "$dir/llhttp.c" ]; then
            llhttp_sources=("$dir"/*.c)
            for include in "$dir" /usr/share/include/llhttp /usr/include/llhttp /usr/local/include/llhttp; do
                if [ -f "$include/llhttp.h" ]; then llhttp_cflags=("-I$include"); break; fi
            done
            break
        fi
    done
    if [ ${#llhttp_sources[@]} -eq 0 ]; then
        echo "fuzz/run.sh: llhttp not found (see setup.py)" >&2
        exit 2
    fi
fi

sanitize=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
objects=()
for source in "${llhttp_sources[@]}"; do  # llhttp is not ours: no warnings, still instrumented
    object="$out/obj/llhttp-$(basename "$source" .c).o"
    "$CC" "${sanitize[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" -w "${llhttp_cflags[@]}" \
        -c "$source" -o "$object"
    objects+=("$object")
done
for source in src/ursa/_core/*/*.c src/ursa/_core/*.c; do
    object="$out/obj/$(basename "$(dirname "$source")")-$(basename "$source" .c).o"
    "$CC" "${sanitize[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" -std=gnu11 -Wall -Wextra \
        -Wno-missing-field-initializers -Werror -Isrc/ursa/_core "${llhttp_cflags[@]}" -I"$py_include" \
        -c "$source" -o "$object"
    objects+=("$object")
done
# shellcheck disable=SC2086  # py_ldflags is a list of flags
"$CC" "${sanitize[@]}" -std=gnu11 -Wall -Wextra -Werror -Isrc/ursa/_core "${llhttp_cflags[@]}" \
    -I"$py_include" fuzz/fuzz_request.c "${objects[@]}" "${llhttp_libs[@]}" -lev -lwslay -lz $py_ldflags \
    -o "$out/fuzz_request"
echo "fuzz/run.sh: built $out/fuzz_request"

# CPython keeps memory for the life of the process (and is never finalised
# here): only what an input loses is a leak. libFuzzer checks for that after
# any input that allocates more than it frees; the check at exit is off.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-leak_check_at_exit=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
common=(-dict=fuzz/http.dict -max_len=8192 -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$out/"
        -print_final_stats=1)
if [ "${FUZZ_BUILD_ONLY:-0}" = 1 ]; then
    exec "$out/fuzz_request" "${common[@]}" -runs=0 fuzz/corpus
fi
if [ "$FUZZ_JOBS" -gt 1 ]; then
    exec "$out/fuzz_request" "${common[@]}" -max_total_time="$FUZZ_SECONDS" -jobs="$FUZZ_JOBS" \
        -workers="$FUZZ_JOBS" "$work" fuzz/corpus
fi
exec "$out/fuzz_request" "${common[@]}" -max_total_time="$FUZZ_SECONDS" "$work" fuzz/corpus
