#!/bin/sh
# Install Debian's Arduino toolchain and simavr, build the robot's firmware and the simavr
# bridge its test runs it in (CI and a fresh machine).
# Usage: sh firmware/ci.sh            (as root, or with sudo available for apt-get)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
packages="arduino-mk gcc-avr avr-libc arduino-core-avr simavr libsimavr-dev libsimavrparts1"
missing=""
for p in $packages; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi
make -C "$here"
test -s "$here/build-uno/sarlearn_robot.hex"
make -C "$here" simavr-bridge
echo "firmware built: $here/build-uno/sarlearn_robot.hex (and build-sim/bridge for its test)"
