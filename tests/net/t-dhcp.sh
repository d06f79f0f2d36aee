#!/usr/bin/env bash
# quokka-net's own DHCP server and DNS forwarder (what `up --dhcp` runs
# when dnsmasq is absent; QUOKKA_NET_DHCP=builtin forces it here even if
# dnsmasq is installed), inside namespaces this test makes:
#   H: quokka-net up qbr1 --address 192.168.66.1/24 --dhcp; a stand-in
#      upstream resolver on 127.0.0.9 knows remote.example.
#   C: a veth on qbr1 running a small DHCP client (python) that calls
#      itself "pyclient"; it must get a lease in the range, router and DNS
#      = the bridge.
#   a Debian guest on -netdev bridge,br=qbr1: udhcpc -x hostname:vm-a gets
#      a different lease; nslookup through 192.168.66.1 resolves the host's
#      own name, "pyclient" (from C's lease) and remote.example (relayed
#      upstream); it pings the bridge.
# quokka-net down stops the server. With port 53 held by another server,
# up still serves DHCP and offers the host's resolver.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/guest-net.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }
QNET=$BUILD/quokka-net
H=qk-dh-$$ C=qk-dc-$$
export QUOKKA_NET_STATE_DIR=$T/state QUOKKA_BRIDGE_CONF=$T/bridge.conf
export QUOKKA_NET_DHCP=builtin QUOKKA_NET_DNS_UPSTREAM=127.0.0.9
cleanup() {
    ip netns exec $H "$QNET" down qbr1 >/dev/null 2>&1
    for n in $H $C; do ip netns pids $n 2>/dev/null | xargs -r kill 2>/dev/null; done
    ip netns del $H 2>/dev/null; ip netns del $C 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
inH() { ip netns exec $H "$@"; }
ip netns add $H && ip netns add $C || { not_ok "make namespaces"; done_testing; }
inH ip link set lo up
inH hostname > /dev/null

# The stand-in upstream resolver: remote.example -> 203.0.113.7, else NXDOMAIN.
cat > "$T/upstream.py" <<'EOF'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.9", 53))
while True:
    q, a = s.recvfrom(512)
    i = 12; labels = []
    while q[i]: labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    qend = i + 5; name = ".".join(labels).lower()
    if name == "remote.example":
        r = q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:qend] + \
            b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([203, 0, 113, 7])
    else:
        r = q[:2] + b"\x81\x83" + q[4:6] + b"\x00\x00\x00\x00\x00\x00" + q[12:qend]
    s.sendto(r, a)
EOF
ip netns exec $H python3 "$T/upstream.py" &
upstream=$!
check "quokka-net up --dhcp (built-in)" inH "$QNET" up qbr1 --address 192.168.66.1/24 --dhcp
inH "$QNET" status > "$T/status"
grep -q "qbr1: address 192.168.66.1/24, NAT off, DHCP built-in running" "$T/status" &&
    ok "status names the built-in server" || { not_ok "status"; sed 's/^/#  /' "$T/status"; }

# C: DISCOVER, OFFER, REQUEST, ACK from a socket on a veth in the bridge.
ip link add qkc0 netns $C type veth peer name qkc0b netns $H
inH ip link set qkc0b master qbr1 up
ip netns exec $C ip link set qkc0 up
cat > "$T/client.py" <<'EOF'
import socket, struct, random, sys
mac = bytes.fromhex("02aabbccdd01"); xid = random.getrandbits(32)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"qkc0")
s.bind(("0.0.0.0", 68)); s.settimeout(3)
def pkt(kind, extra=b""):
    return struct.pack("!BBBBIHHIIII", 1, 1, 6, 0, xid, 0, 0, 0, 0, 0, 0) + mac + b"\0" * 202 + \
        b"\x63\x82\x53\x63" + bytes([53, 1, kind]) + b"\x0c\x08pyclient" + extra + b"\xff"
def opts(r):
    o, i = {}, 240
    while i < len(r) and r[i] != 255:
        if r[i] == 0: i += 1; continue
        o[r[i]] = r[i+2:i+2+r[i+1]]; i += 2 + r[i+1]
    return o
def ask(kind, extra=b""):
    for _ in range(5):
        s.sendto(pkt(kind, extra), ("255.255.255.255", 67))
        try:
            while True:
                r, _ = s.recvfrom(1500)
                if r[0] == 2 and struct.unpack("!I", r[4:8])[0] == xid: return r
        except socket.timeout: pass
    sys.exit("no reply")
off = ask(1); yi = off[16:20]; o = opts(off)
assert o[53] == b"\x02", o
ack = ask(3, b"\x32\x04" + yi + b"\x36\x04" + o[54]); a = opts(ack)
ip = lambda b: socket.inet_ntoa(b)
print("ACK" if a[53] == b"\x05" else "NAK", ip(ack[16:20]), ip(a[3]), ip(a[6]), ip(a[1]), struct.unpack("!I", a[51])[0])
EOF
ip netns exec $C python3 "$T/client.py" > "$T/client.out" 2>&1
read -r kind cip router dns mask lease < "$T/client.out"
check_eq "python client: ACK" "ACK" "$kind"
case $cip in 192.168.66.1[2-9][0-9]|192.168.66.2[0-5][0-9]) ok "python client: address in the range ($cip)";;
    *) not_ok "python client: address in the range ($(cat "$T/client.out"))";; esac
check_eq "python client: router, DNS, mask, lease" "192.168.66.1 192.168.66.1 255.255.255.0 3600" \
    "$router $dns $mask $lease"

HOSTNAME_H=$(inH hostname)
GCMD="$DHCP_SETUP
udhcpc -i eth0 -s /tmp/dh -q -n -t 10 -x hostname:vm-a
ns() { nslookup \$1 192.168.66.1 2>&1 | sed -n 's/^Address: *\\([0-9.]*\\)\$/\\1/p' | tail -1; }
echo SELF \$(ns vm-a)
echo HOSTNAME \$(ns $HOSTNAME_H)
echo PEER \$(ns pyclient)
echo REMOTE \$(ns remote.example)
echo PING \$(ping -c 2 192.168.66.1 | grep -o '[0-9]* packets received')"
inH timeout 200 "$QUOKKA" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" \
    -display none -monitor none -serial stdio -no-reboot \
    -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")" \
    -netdev bridge,id=b0,br=qbr1 -device virtio-net-pci,netdev=b0 </dev/null >"$T/g.out" 2>&1
check_eq "guest exits 0" 0 "$?"
field() { grep -o "^$1 .*" "$T/g.out" | tr -d '\r' | head -1; }
gip=$(field DHCP | cut -d' ' -f2)
check_eq "guest: lease with router and DNS" "DHCP $gip 192.168.66.1 192.168.66.1" "$(field DHCP)"
[ -n "$gip" ] && [ "$gip" != "$cip" ] && ok "guest: its own address ($gip)" ||
    not_ok "guest: its own address ($gip vs $cip)"
check_eq "DNS: the guest's own DHCP name" "SELF $gip" "$(field SELF)"
check_eq "DNS: the host's name" "HOSTNAME 192.168.66.1" "$(field HOSTNAME)"
check_eq "DNS: another client's DHCP name" "PEER $cip" "$(field PEER)"
check_eq "DNS: other names relayed upstream" "REMOTE 203.0.113.7" "$(field REMOTE)"
check_eq "guest pings the bridge" "PING 2 packets received" "$(field PING)"

pid=$(sed -n 's/^dnsmasq_pid=//p' "$T/state/qbr1.state")
check "quokka-net down" inH "$QNET" down qbr1
sleep 0.2
# gone, or a zombie waiting for whichever process inherited it
st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
[ -n "$pid" ] && { [ -z "$st" ] || [ "$st" = Z ]; } && ok "down stops the server" ||
    not_ok "down stops the server (state $st)"

# Port 53 taken on every address by another server: DHCP still runs and
# hands out the host's resolver instead of the bridge.
kill $upstream; wait $upstream 2>/dev/null
inH python3 -c 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53)); time.sleep(60)' &
sleep 0.5
QUOKKA_NET_DNS_UPSTREAM=198.51.100.53 inH "$QNET" up qbr1 --address 192.168.66.1/24 --dhcp \
    >"$T/up2" 2>&1
check_eq "up with port 53 taken (exit status)" 0 "$?"
grep -q "no DNS on qbr1 (Address already in use); DHCP offers the host's resolver" "$T/up2" &&
    ok "up says DNS is off" || { not_ok "up says DNS is off"; sed 's/^/#  /' "$T/up2"; }
inH ip link set qkc0b master qbr1 up
ip netns exec $C python3 "$T/client.py" > "$T/client2.out" 2>&1
read -r kind cip router dns mask lease < "$T/client2.out"
check_eq "DHCP without our DNS: the host's resolver offered" "ACK 192.168.66.1 198.51.100.53" \
    "$kind $router $dns"
inH "$QNET" down qbr1 >/dev/null
[ $FAILS -gt 0 ] && tail -30 "$T/g.out" | sed 's/^/#  /'
done_testing
