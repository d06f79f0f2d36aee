#!/usr/bin/env bash
# -netdev/-net/-nic on the command line and the monitor's network commands,
# without a guest: errors name the option, info network shows NICs with the
# given and the derived MAC, hostfwd_add/hostfwd_remove change info usernet,
# set_link marks a NIC down.
. "$(dirname "$0")/../lib.sh"
Q() { timeout 20 "$QUOKKA" -S -display none -serial none "$@"; }

"$QUOKKA" -netdev help > "$T/help" 2>&1
check_eq "-netdev help lists the types" "socket hubport bridge tap user" \
    "$(tail -n +2 "$T/help" | tr '\n' ' ' | sed 's/ $//')"
err() {  # NAME EXPECTED-SUBSTRING ARGS...
    local name=$1 want=$2; shift 2
    Q -monitor none "$@" </dev/null >"$T/err" 2>&1; local st=$?
    if [ $st -eq 1 ] && grep -qF -- "$want" "$T/err"; then ok "$name"; else
        not_ok "$name (status $st)"; sed 's/^/#  /' "$T/err"; fi
}
err "netdev without id" "Parameter 'id' is missing" -netdev user
err "duplicate netdev id" "Duplicate ID 'a' for netdev" -netdev user,id=a -netdev user,id=a
err "unknown NIC model" "Unsupported NIC model: e1000" -nic user,model=e1000
err "bad MAC" "doesn't take value '52:54:00:12:34'" -netdev user,id=a \
    -device virtio-net-pci,netdev=a,mac=52:54:00:12:34
err "multicast MAC" "doesn't take value '01:00:5e:00:00:01'" -netdev user,id=a \
    -device virtio-net-pci,netdev=a,mac=01:00:5e:00:00:01
err "unknown netdev for a NIC" "can't find value 'nope'" -device virtio-net-pci,netdev=nope
err "one NIC per netdev" "already in use" -netdev user,id=a \
    -device virtio-net-pci,netdev=a -device virtio-net-pci,netdev=a
err "socket needs a mode" "exactly one of listen=, connect=, mcast= or udp=" \
    -netdev socket,id=s -device virtio-net-pci,netdev=s
err "socket connect refused" "can't connect to 127.0.0.1:1" \
    -netdev socket,id=s,connect=127.0.0.1:1 -device virtio-net-pci,netdev=s
err "unknown user option" "Invalid parameter 'bogus'" -netdev user,id=u,bogus=1 \
    -device virtio-net-pci,netdev=u
err "bad hostfwd" "invalid host forwarding rule 'tcp:x'" -netdev user,id=u,hostfwd=tcp:x \
    -device virtio-net-pci,netdev=u
err "tap fd= must be open" "fd=99 is not an open file descriptor" -netdev tap,id=t,fd=99 \
    -device virtio-net-pci,netdev=t

printf '%s\n' "info network" "hostfwd_add u0 tcp:127.0.0.1:47123-:22" "info usernet" \
    "hostfwd_remove u0 tcp:127.0.0.1:47123" "info usernet" "set_link nic1 off" "info network" \
    "quit" | Q -name clitest -monitor stdio -netdev user,id=u0 \
    -device virtio-net-pci,netdev=u0,mac=52:54:00:12:34:56,id=nic1 \
    -net nic -net user,net=10.1.0.0/24 >"$T/mon" 2>&1
tr -d '\r' < "$T/mon" > "$T/m"
grep -q "^nic1: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56$" "$T/m" &&
    ok "info network: the given MAC" || not_ok "info network: the given MAC"
grep -q ' \\ u0: index=0,type=user,net=10.0.2.0$' "$T/m" && ok "info network: the backend" ||
    not_ok "info network: the backend"
grep -q "^hub 0$" "$T/m" && grep -q "type=user,net=10.1.0.0" "$T/m" && ok "info network: -net on hub 0" ||
    not_ok "info network: -net on hub 0"
mac=$(grep -o 'virtio-net-pci.1: index=0,type=nic,model=virtio-net-pci,macaddr=[0-9a-f:]*' "$T/m" | sed 's/.*macaddr=//' | head -1)
case $mac in 52:54:*) [ "$mac" != 52:54:00:12:34:56 ] && ok "derived MAC for the -net nic ($mac)" ||
    not_ok "derived MAC differs";; *) not_ok "derived MAC ($mac)";; esac
check_eq "hostfwd_add shows in info usernet" 1 "$(grep -c 'HOST_FORWARD.*127.0.0.1 47123' "$T/m")"
grep -q "(link down)" "$T/m" && ok "set_link off" || not_ok "set_link off"
[ $FAILS -gt 0 ] && sed 's/^/#  /' "$T/m"
done_testing
