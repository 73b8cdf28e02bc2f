#!/usr/bin/env bash
# Installs what ursa needs on a fresh Debian machine (run as root), creates
# .venv at the repository root, and builds the extension in place.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt-install.sh

# The build (libev, llhttp's sources, wslay for WebSocket framing, zlib for
# their compression, a compiler), and what the tests drive: nginx (with
# openssl for its test certificates) and haproxy in front of ursa, curl and
# strace as clients and observers.
APT_PACKAGES=(libev-dev node-llhttp libwslay-dev zlib1g-dev gcc make python3-venv pkg-config nginx haproxy openssl curl
              strace iproute2)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
apt_install setup "${missing[@]}"

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
