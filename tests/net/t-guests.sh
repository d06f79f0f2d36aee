#!/usr/bin/env bash
# Two Debian guests booted side by side, every check in that one boot,
# all inside network namespaces this test makes ("host" H, "remote" R):
#   quokka-net up qbr0 --address 192.168.77.1/24 --nat up0 --dhcp in H;
#   R (198.51.100.2) sits behind up0 and serves a file over HTTP.
#   Guest A: -nic user (eth0) + socket listen (eth1) + bridge qbr0 (eth2)
#   Guest B: -netdev bridge (eth0) + socket connect (eth1), -net hub form
# Checks: user networking (DHCP 10.0.2.15, ping the gateway, a download from
# a host server via 10.0.2.2, hostfwd to a guest server, checksums equal);
# the guests ping each other over the socket netdev and over the bridge;
# B gets a lease from quokka-net's dnsmasq; both fetch R's file through the
# NAT; the helper refuses a bridge bridge.conf doesn't allow; quokka-net
# down leaves no bridge, nft table or allow line behind.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/guest-net.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }
QNET=$BUILD/quokka-net
H=qk-h-$$ R=qk-r-$$
export QUOKKA_NET_STATE_DIR=$T/state QUOKKA_BRIDGE_CONF=$T/bridge.conf
cleanup() {
    ip netns exec $H "$QNET" down qbr0 >/dev/null 2>&1
    ip netns pids $H 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns pids $R 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del $H 2>/dev/null; ip netns del $R 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
inH() { ip netns exec $H "$@"; }
inR() { ip netns exec $R "$@"; }

ip netns add $H && ip netns add $R || { not_ok "make namespaces"; done_testing; }
inH ip link set lo up; inR ip link set lo up
ip link add up0 netns $H type veth peer name wan0 netns $R
inH ip addr add 198.51.100.1/24 dev up0; inH ip link set up0 up
inR ip addr add 198.51.100.2/24 dev wan0; inR ip link set wan0 up
check "quokka-net up" inH "$QNET" up qbr0 --address 192.168.77.1/24 --nat up0 --dhcp
inH "$QNET" status > "$T/status"
grep -q "qbr0: address 192.168.77.1/24, NAT up0, DHCP dnsmasq running, forwarding on" \
    "$T/status" && ok "quokka-net status" || { not_ok "quokka-net status"; sed 's/^/#  /' "$T/status"; }

mkdir -p "$T/www" "$T/remote"
head -c 300000 /dev/urandom > "$T/www/blob"
head -c 100000 /dev/urandom > "$T/remote/r.bin"
host_sha=$(sha256sum < "$T/www/blob" | cut -c1-64)
r_sha=$(sha256sum < "$T/remote/r.bin" | cut -c1-64)
(cd "$T/www" && exec ip netns exec $H python3 -m http.server --bind 127.0.0.1 8000 >/dev/null 2>&1) &
(cd "$T/remote" && exec ip netns exec $R python3 -m http.server --bind 198.51.100.2 8080 >/dev/null 2>&1) &

# The helper refuses a bridge that bridge.conf does not allow (no boot needed).
inH ip link add qbr9 type bridge
inH timeout 20 "$QUOKKA" -S -display none -monitor none -serial none \
    -netdev bridge,id=b,br=qbr9 -device virtio-net-pci,netdev=b >"$T/deny" 2>&1
check_eq "helper refuses qbr9 (exit status)" 1 "$?"
grep -q "access denied by acl file: bridge 'qbr9'" "$T/deny" && ok "helper names the refusal" ||
    { not_ok "helper names the refusal"; sed 's/^/#  /' "$T/deny"; }

# Each guest keeps answering for a while after its own checks so the
# other, maybe slower to boot, can finish too.
PEER_WAIT='n=0; until ping -c 1 -W 1 $1 >/dev/null 2>&1; do n=$((n+1)); [ $n -gt 240 ] && break; done'
GA="$DHCP_SETUP
ip link set eth1 up; ip link set eth2 up
ip addr add 10.9.0.1/24 dev eth1; ip addr add 192.168.77.11/24 dev eth2
ip route add 198.51.100.0/24 via 192.168.77.1
udhcpc -i eth0 -s /tmp/dh -q -n -t 5
echo PING \$(ping -c 2 10.0.2.2 | grep -o '[0-9]* packets received')
wget -q -O /tmp/blob http://10.0.2.2:8000/blob
echo GOT \$(sha256sum < /tmp/blob | cut -c1-64)
mkdir -p /tmp/www; dd if=/dev/urandom of=/tmp/www/g.bin bs=1000 count=200 2>/dev/null
echo GSHA \$(sha256sum < /tmp/www/g.bin | cut -c1-64)
httpd -p 80 -h /tmp/www
set -- 10.9.0.2; $PEER_WAIT; echo SOCKPING \$(ping -c 2 10.9.0.2 | grep -o '[0-9]* packets received')
set -- 192.168.77.12; $PEER_WAIT; echo BRPING \$(ping -c 2 192.168.77.12 | grep -o '[0-9]* packets received')
wget -q -O /tmp/r http://198.51.100.2:8080/r.bin; echo NAT \$(sha256sum < /tmp/r | cut -c1-64)
echo READY
nc -l -p 81 >/dev/null
sleep 10"
GB="$DHCP_SETUP
ip link set eth1 up
ip addr add 10.9.0.2/24 dev eth1
udhcpc -i eth0 -s /tmp/dh -q -n -t 10
ip addr add 192.168.77.12/24 dev eth0
set -- 10.9.0.1; $PEER_WAIT; echo SOCKPING \$(ping -c 2 10.9.0.1 | grep -o '[0-9]* packets received')
set -- 192.168.77.11; $PEER_WAIT; echo BRPING \$(ping -c 2 192.168.77.11 | grep -o '[0-9]* packets received')
wget -q -O /tmp/r http://198.51.100.2:8080/r.bin; echo NAT \$(sha256sum < /tmp/r | cut -c1-64)
sleep 15"

boot() {  # NAME CMD ARGS...
    local name=$1 cmd=$2; shift 2
    : > "$T/$name.out"
    inH timeout 400 "$QUOKKA" -name "$name" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" \
        -display none -monitor none -serial stdio -no-reboot \
        -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$cmd")" "$@" \
        </dev/null >"$T/$name.out" 2>"$T/$name.err" &
}
boot A "$GA" -nic user,model=virtio,hostfwd=tcp:127.0.0.1:5080-:80,hostfwd=tcp:127.0.0.1:5081-:81 \
    -netdev socket,id=s0,listen=127.0.0.1:4444 -device virtio-net-pci,netdev=s0 \
    -netdev bridge,id=b0,br=qbr0 -device virtio-net-pci,netdev=b0
a=$!
sleep 1
boot B "$GB" -net nic,model=virtio -net bridge,br=qbr0 \
    -netdev socket,id=s0,connect=127.0.0.1:4444 -device virtio-net-pci,netdev=s0
b=$!
for _ in $(seq 3500); do grep -q READY "$T/A.out" && break; kill -0 $a 2>/dev/null || break; sleep 0.1; done
got=$(inH curl -s --max-time 60 "http://127.0.0.1:5080/g.bin" | sha256sum | cut -c1-64)
inH bash -c 'exec 3<>/dev/tcp/127.0.0.1/5081' 2>/dev/null
wait $a; sa=$?
wait $b; sb=$?

field() { grep -o "^$2 .*" "$T/$1.out" | tr -d '\r' | head -1; }
check_eq "guest A exits 0" 0 "$sa"
check_eq "guest B exits 0" 0 "$sb"
check_eq "user: DHCP lease" "DHCP 10.0.2.15 10.0.2.2 10.0.2.3" "$(field A DHCP)"
check_eq "user: gateway answers ping" "PING 2 packets received" "$(field A PING)"
check_eq "user: download from the host via 10.0.2.2" "GOT $host_sha" "$(field A GOT)"
check_eq "user: host fetches from the guest via hostfwd" "GSHA $got" "$(field A GSHA)"
empty=$(printf '' | sha256sum | cut -c1-64)
[ "$got" != "$empty" ] && ok "hostfwd data non-empty" || not_ok "hostfwd data non-empty"
check_eq "socket: A pings B" "SOCKPING 2 packets received" "$(field A SOCKPING)"
check_eq "socket: B pings A" "SOCKPING 2 packets received" "$(field B SOCKPING)"
case $(field B DHCP) in "DHCP 192.168.77."*" 192.168.77.1 192.168.77.1") ok "bridge: B leased from dnsmasq";;
    *) not_ok "bridge: B leased from dnsmasq ($(field B DHCP))";; esac
check_eq "bridge: A pings B" "BRPING 2 packets received" "$(field A BRPING)"
check_eq "bridge: B pings A" "BRPING 2 packets received" "$(field B BRPING)"
check_eq "NAT: A fetches from the remote namespace" "NAT $r_sha" "$(field A NAT)"
check_eq "NAT: B fetches from the remote namespace" "NAT $r_sha" "$(field B NAT)"

check "quokka-net down" inH "$QNET" down qbr0
inH ip link show qbr0 >/dev/null 2>&1 && not_ok "bridge removed" || ok "bridge removed"
[ -z "$(inH nft list tables)" ] && ok "nft table removed" || not_ok "nft table removed"
grep -q qbr0 "$T/bridge.conf" && not_ok "allow line removed" || ok "allow line removed"
if [ $FAILS -gt 0 ]; then for g in A B; do echo "# --- $g"; tail -25 "$T/$g.out" | sed 's/^/#  /'
    sed 's/^/#  /' "$T/$g.err"; done; fi
done_testing
