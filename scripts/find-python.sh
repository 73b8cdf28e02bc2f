# Sourced by setup.sh, test-pythons.sh and build-wheels.sh.

# The CPython versions ursa supports, oldest first.
SUPPORTED_PYTHONS=(3.8 3.9 3.10 3.11 3.12 3.13)

# find_python 3.X prints the path of a CPython 3.X interpreter, looked up on
# PATH as python3.X, then among pyenv's versions; it prints nothing when there
# is none.
find_python() {
    local version=$1 candidate
    if command -v "python$version" >/dev/null 2>&1 && "python$version" -c '' 2>/dev/null; then
        command -v "python$version"
        return
    fi
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version"; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
}

# find_newest_python prints the path of the newest supported CPython that
# find_python finds, or nothing when there is none.
find_newest_python() {
    local index python
    for ((index = ${#SUPPORTED_PYTHONS[@]} - 1; index >= 0; index--)); do
        python=$(find_python "${SUPPORTED_PYTHONS[index]}")
        if [ -n "$python" ]; then
            echo "$python"
            return
        fi
    done
}
