#!/usr/bin/env bash
# Installs what ursa needs on a fresh Debian machine (run as root), creates
# .venv at the repository root with the newest supported CPython present
# (PYTHON=/path/to/python chooses another), and installs the Python packages
# of requirements-dev.txt into it (`make build` then builds the extension).
# Idempotent: each step is skipped when its result is already there; a .venv
# made by another interpreter is made anew.
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

# .venv's interpreter: PYTHON if set, else the newest supported CPython here
# (pyenv's 3.13 beside a python3 that is 3.11, say), because ursa's ASGI path
# needs 3.12 to start tasks eagerly and the README's figures are measured on
# this interpreter. test-pythons.sh covers the older ones.
source scripts/find-python.sh
if [ -z "${PYTHON:-}" ]; then
    PYTHON=$(find_newest_python)
    PYTHON=${PYTHON:-python3}
fi

# Which interpreter this is: "CPython 3.13.0 in /root/.pyenv/versions/3.13.0".
# A venv's python answers for the interpreter the venv was made from.
interpreter_identity() {
    "$1" -c 'import os, platform, sys
print(platform.python_implementation(), platform.python_version(), "in", os.path.realpath(sys.base_prefix))' 2>/dev/null
}
wanted=$(interpreter_identity "$PYTHON") || { echo "setup: PYTHON=$PYTHON does not run" >&2; exit 1; }
if [ -e .venv ]; then
    current=$(interpreter_identity .venv/bin/python || true)
    if [ "$current" != "$wanted" ]; then
        echo "setup: .venv was made by ${current:-an interpreter that no longer runs}, not by $PYTHON ($wanted): recreating it"
        rm -rf .venv
    fi
fi
if [ ! -e .venv ]; then
    echo "setup: creating .venv with $PYTHON ($wanted)"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.requirements-dev.stamp
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
    echo "setup: installing Python packages from requirements-dev.txt"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
    touch "$stamp"
fi
