#!/usr/bin/env bash
# What `make bench` and `make bench-asgi` need beyond `make build`: wrk,
# valgrind and nginx (and strace, taskset) from Debian, and the peer servers
# of requirements-bench.txt (WSGI and ASGI) in .venv. Idempotent: apt-get
# runs only when a tool is missing, pip only when a requirements file is newer
# than its last install.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt-install.sh

# tool -> the Debian package that has it
declare -A PACKAGE_OF=(
    [wrk]=wrk
    [valgrind]=valgrind
    [callgrind_control]=valgrind
    [/usr/sbin/nginx]=nginx
    [strace]=strace
    [taskset]=util-linux
)

missing=()
for tool in "${!PACKAGE_OF[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
fi
apt_install bench-setup "${missing[@]}"

stamp=.venv/.requirements-bench.stamp
if [ ! -f "$stamp" ] || [ requirements-bench.txt -nt "$stamp" ] || [ bench/requirements-asgi.txt -nt "$stamp" ] \
        || [ bench/requirements-nodeps.txt -nt "$stamp" ]; then
    echo "bench-setup: installing Python packages from requirements-bench.txt"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
    # An optional peer: if it does not build, the benchmark leaves it out with a note.
    .venv/bin/pip install -q --disable-pip-version-check --no-deps -r bench/requirements-nodeps.txt \
        || echo "bench-setup: meinheld did not install; bench/compare.py runs without it" >&2
    touch "$stamp"
fi
