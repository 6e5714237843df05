#!/bin/sh
# Install the Debian packages named on the command line that are missing.
# As root with apt-get: installs them. Otherwise: prints the exact command and carries on, so a
# machine that already has the libraries under other names is not blocked.
missing=""
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "note: not a Debian-like system; make sure these libraries are installed: $*" >&2
    exit 0
fi
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
        && exit 0
    echo "error: apt-get could not install:$missing" >&2
    exit 1
fi
echo "Missing system packages:$missing" >&2
echo "Install them with:  sudo apt-get install -y$missing" >&2
exit 0
