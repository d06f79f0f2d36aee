#!/usr/bin/env bash
# What `make run` does: build quokka, build the test guest (Debian's kernel
# + busybox, cached in build/guest/), and boot it on this terminal to an
# interactive shell. Ctrl-A x quits; Ctrl-A c switches to the monitor;
# `poweroff -f` in the guest ends the run. Extra arguments go to quokka.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
make -C "$TOP" -s -j"$(nproc)" build/quokka >&2
G=$("$TOP/scripts/guest.sh")
echo "Booting the test guest (Ctrl-A x quits, Ctrl-A h lists the keys)" >&2
exec "$TOP/build/quokka" -m 512M -smp 2 -nographic \
    -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -append "console=ttyS0 quiet" "$@"
