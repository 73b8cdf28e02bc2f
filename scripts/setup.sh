#!/usr/bin/env bash
# Installs what ursa needs on a fresh Debian machine (run as root), creates
# .venv at the repository root, and builds the extension in place.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The build (libev, llhttp's sources, a compiler), and what the tests drive:
# nginx in front of ursa, curl and strace as clients and observers.
APT_PACKAGES=(libev-dev node-llhttp gcc make python3-venv pkg-config nginx curl strace iproute2)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages ${missing[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.requirements-dev.stamp
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
    echo "setup: installing Python packages from requirements-dev.txt"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
    touch "$stamp"
fi
