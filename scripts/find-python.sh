# Sourced by test-pythons.sh and build-wheels.sh: find_python 3.X prints the
# path of a CPython 3.X interpreter, looked up on PATH as python3.X, then
# among pyenv's versions; it prints nothing when there is none.
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
