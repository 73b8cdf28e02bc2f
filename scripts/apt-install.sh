# Sourced by setup.sh and bench-setup.sh: apt_install WHO PACKAGE... installs
# the packages (as root) with one apt-get run, or says what to do and fails.
apt_install() {
    local who=$1
    shift
    [ "$#" -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$who: missing Debian packages $*; run as root or install them" >&2
        exit 1
    fi
    echo "$who: installing $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
