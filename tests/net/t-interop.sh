#!/usr/bin/env bash
# A Debian guest under Quokka and one under QEMU 7.2 (TCG) on one network,
# inside a namespace this test makes:
#   eth0 of both: -netdev socket, Quokka listen= and QEMU connect= (QEMU's
#        stream framing);
#   eth1 of both: -netdev socket,mcast= on one group (one datagram a frame);
#   eth2 of Quokka's: -netdev tap,vnet_hdr=on,script=UP,downscript=DOWN
#        with real scripts (UP addresses the tap, DOWN logs it), a file
#        fetched from the host and one sent to it, checksums equal, while
#        the kernel's tap has TSO on (offloads negotiated through the
#        virtio header).
# The guests ping each other over eth0 and eth1 both ways.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/guest-net.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }
command -v qemu-system-x86_64 >/dev/null || { not_ok "qemu-system-x86_64 is installed"; done_testing; }
N=qk-io-$$
cleanup() {
    ip netns pids $N 2>/dev/null | xargs -r kill 2>/dev/null
    sleep 0.2; ip netns del $N 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
inN() { ip netns exec $N "$@"; }
ip netns add $N || { not_ok "make a namespace"; done_testing; }
inN ip link set lo up
inN ip link set lo multicast on
inN ip route add 224.0.0.0/4 dev lo           # where the mcast group's datagrams go
PORT=$(inN python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat > "$T/up.sh" <<EOF
#!/bin/sh
echo "up \$1" >> "$T/scripts.log"
ip addr add 172.31.0.1/24 dev "\$1" && ip link set "\$1" up
EOF
cat > "$T/down.sh" <<EOF
#!/bin/sh
echo "down \$1" >> "$T/scripts.log"
EOF
chmod +x "$T/up.sh" "$T/down.sh"
mkdir -p "$T/www"
head -c 2000000 /dev/urandom > "$T/www/blob"
blob_sha=$(sha256sum < "$T/www/blob" | cut -c1-64)
(cd "$T/www" && exec ip netns exec $N python3 -m http.server --bind 0.0.0.0 8000 >/dev/null 2>&1) &
inN python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 6000)); s.listen(1); c, _ = s.accept()
with open(sys.argv[1], "wb") as f:
    while True:
        b = c.recv(65536)
        if not b: break
        f.write(b)' "$T/sunk" &

PEER_WAIT='n=0; until ping -c 1 -W 1 $1 >/dev/null 2>&1; do n=$((n+1)); [ $n -gt 200 ] && break; done'
GA="ip link set lo up; for i in 0 1 2; do ip link set eth\$i up; done
ip addr add 10.10.0.1/24 dev eth0; ip addr add 10.11.0.1/24 dev eth1; ip addr add 172.31.0.2/24 dev eth2
n=0; until ping -c 1 -W 1 172.31.0.1 >/dev/null 2>&1; do n=\$((n+1)); [ \$n -gt 60 ] && break; done
wget -q -O /tmp/blob http://172.31.0.1:8000/blob; echo GOT \$(sha256sum < /tmp/blob | cut -c1-64)
nc 172.31.0.1 6000 < /tmp/blob; echo SENT
echo READY
set -- 10.10.0.2; $PEER_WAIT; echo SOCK \$(ping -c 2 10.10.0.2 | grep -o '[0-9]* packets received')
set -- 10.11.0.2; $PEER_WAIT; echo MCAST \$(ping -c 2 10.11.0.2 | grep -o '[0-9]* packets received')
sleep 8"
GB="ip link set lo up; ip link set eth0 up; ip link set eth1 up
ip addr add 10.10.0.2/24 dev eth0; ip addr add 10.11.0.2/24 dev eth1
set -- 10.10.0.1; $PEER_WAIT; echo SOCK \$(ping -c 2 10.10.0.1 | grep -o '[0-9]* packets received')
set -- 10.11.0.1; $PEER_WAIT; echo MCAST \$(ping -c 2 10.11.0.1 | grep -o '[0-9]* packets received')
sleep 8"
append() { echo "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$1")"; }

inN timeout 300 "$QUOKKA" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" \
    -display none -monitor none -serial stdio -no-reboot -append "$(append "$GA")" \
    -netdev socket,id=s0,listen=127.0.0.1:$PORT -device virtio-net-pci,netdev=s0 \
    -netdev socket,id=m0,mcast=230.0.0.1:$PORT -device virtio-net-pci,netdev=m0 \
    -netdev tap,id=t0,ifname=qktap1,vnet_hdr=on,script="$T/up.sh",downscript="$T/down.sh" \
    -device virtio-net-pci,netdev=t0 </dev/null >"$T/A.out" 2>"$T/A.err" &
a=$!
for _ in $(seq 100); do inN ss -ltn | grep -q ":$PORT " && break; sleep 0.1; done
inN timeout 300 qemu-system-x86_64 -accel tcg -M pc -nodefaults -m 256M \
    -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -display none -monitor none -serial stdio \
    -no-reboot -append "$(append "$GB")" \
    -netdev socket,id=s0,connect=127.0.0.1:$PORT -device virtio-net-pci,netdev=s0,mac=52:54:00:aa:00:02 \
    -netdev socket,id=m0,mcast=230.0.0.1:$PORT -device virtio-net-pci,netdev=m0,mac=52:54:00:aa:01:02 \
    </dev/null >"$T/B.out" 2>"$T/B.err" &
b=$!
for _ in $(seq 3000); do grep -q READY "$T/A.out" && break; kill -0 $a 2>/dev/null || break; sleep 0.1; done
# TSO on the tap: ETHTOOL_GTSO through SIOCETHTOOL
tso=$(inN python3 -c '
import array, fcntl, socket, struct
buf = array.array("B", struct.pack("II", 0x1e, 0))
fcntl.ioctl(socket.socket(), 0x8946, struct.pack("16sP", b"qktap1", buf.buffer_info()[0]))
print(struct.unpack("II", buf)[1])' 2>&1)
wait $a; sa=$?
wait $b; sb=$?

field() { grep -o "^$2 .*" "$T/$1.out" | tr -d '\r' | head -1; }
check_eq "Quokka guest exits 0" 0 "$sa"
check_eq "QEMU guest exits 0" 0 "$sb"
check_eq "tap: up script ran, down script ran" "up qktap1 down qktap1" \
    "$(tr '\n' ' ' < "$T/scripts.log" 2>/dev/null | sed 's/ $//')"
check_eq "tap vnet_hdr: the kernel segments for the guest (TSO on)" 1 "$tso"
check_eq "tap: guest fetches 2 MB from the host" "GOT $blob_sha" "$(field A GOT)"
check_eq "tap: guest sends 2 MB to the host" "$blob_sha" "$(sha256sum < "$T/sunk" 2>/dev/null | cut -c1-64)"
check_eq "socket listen/connect: Quokka pings QEMU" "SOCK 2 packets received" "$(field A SOCK)"
check_eq "socket listen/connect: QEMU pings Quokka" "SOCK 2 packets received" "$(field B SOCK)"
check_eq "socket mcast: Quokka pings QEMU" "MCAST 2 packets received" "$(field A MCAST)"
check_eq "socket mcast: QEMU pings Quokka" "MCAST 2 packets received" "$(field B MCAST)"
if [ $FAILS -gt 0 ]; then for g in A B; do echo "# --- $g"; tail -15 "$T/$g.out" | sed 's/^/#  /'
    sed 's/^/#  /' "$T/$g.err"; done; fi
done_testing
