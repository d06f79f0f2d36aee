#!/usr/bin/env bash
# quokka doctor: one OK/WARN/FAIL line per check, true to the host.
. "$(dirname "$0")/../lib.sh"

"$QUOKKA" doctor >"$T/doc" 2>&1; rc=$?
check_eq "every line is OK, WARN or FAIL" "" "$(grep -vE '^(OK  |WARN|FAIL) ' "$T/doc")"
check_eq "exit status 1 exactly when a check failed" "$(grep -q '^FAIL' "$T/doc" && echo 1 || echo 0)" "$rc"
for what in cpu 'kvm module' /dev/kvm 'kvm group' /dev/net/tun 'bridge helper' bridge.conf \
            'ip forwarding' memory; do
    check_eq "one line about $what" 1 "$(grep -cE "^.... $what " "$T/doc")"
done
if [ -d /sys/module/kvm_pvm ]; then
    check_eq "names kvm_pvm and what it means" 1 "$(grep -c '^WARN kvm module  *kvm_pvm: PVM.*use -accel emu' "$T/doc")"
    check_eq "the CPL0 probe sees emulation" 1 "$(grep -c '^WARN guest kernel  *CPL0 code is emulated' "$T/doc")"
fi
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    check_eq "/dev/kvm openable" 1 "$(grep -c '^OK   /dev/kvm' "$T/doc")"
elif [ -e /dev/kvm ]; then
    check_eq "/dev/kvm not openable, fix given" 1 "$(grep -c '^FAIL /dev/kvm .*kvm group' "$T/doc")"
else
    check_eq "/dev/kvm missing, fix given" 1 "$(grep -c '^FAIL /dev/kvm .*modprobe' "$T/doc")"
fi
fwd=$(cat /proc/sys/net/ipv4/ip_forward)
check_eq "ip forwarding as /proc says" "$([ "$fwd" = 1 ] && echo OK || echo WARN)" \
    "$(grep 'ip forwarding' "$T/doc" | cut -c1-4 | tr -d ' ')"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ -e /dev/kvm ]; then
    pub=$(mktemp -d); chmod 755 "$pub"; cp "$QUOKKA" "$pub/"    # wherever the tree lives
    (cd / && setpriv --reuid=65534 --regid=65534 --clear-groups "$pub/quokka" doctor) >"$T/doc2" 2>&1
    check_eq "unprivileged: exits 1" 1 "$?"
    rm -rf "$pub"
    check_eq "unprivileged: /dev/kvm FAIL names the kvm group" 1 \
        "$(grep -c '^FAIL /dev/kvm .*join the kvm group' "$T/doc2")"
fi
done_testing
