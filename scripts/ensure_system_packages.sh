#!/bin/sh
# Install the Debian packages named on the command line that are missing.
# As root with apt-get: installs them. Otherwise: prints the exact command and carries on, so a
# machine that already has the libraries under other names is not blocked. Where there is no dpkg
# at all (macOS, Fedora, Arch, MSYS on Windows) it says so and carries on: on macOS and Windows
# the PySide6 and sounddevice wheels bring Qt and PortAudio with them.
missing=""
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "note: no dpkg-query here (not Debian/Ubuntu), so no system packages are checked or installed." >&2
    echo "      macOS and Windows need nothing more: Qt and PortAudio come inside the Python wheels." >&2
    echo "      Other Linux: install your distribution's packages for these Debian ones: $*" >&2
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
if command -v apt-get >/dev/null 2>&1; then
    echo "Install them with:  sudo apt-get install -y$missing" >&2
else
    echo "There is no apt-get here: install them with your package manager." >&2
fi
exit 0
