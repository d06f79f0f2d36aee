#!/bin/sh
# Installs every build and test dependency on Debian 12. Safe to run again:
# it asks apt only for what is missing, so `make check` can call it each time.
set -e
PKGS="build-essential pkg-config clang libclang-rt-14-dev
      zlib1g-dev libzstd-dev liblzma-dev liburing-dev libjson-c-dev libcmocka-dev
      libslirp-dev libglib2.0-dev
      qemu-utils qemu-system-x86 busybox-static cpio e2fsprogs
      libnbd-bin python3 iproute2
      nftables dnsmasq-base iperf3 curl fio"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages:$missing; run as root (or via sudo) to install them" >&2
    exit 1
fi
echo "setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
