#!/usr/bin/env bash
# TCP throughput of virtio-net, guest->host and host->guest, over user
# networking and over a tap, for Quokka and for QEMU TCG running the same
# Debian guest with the same NICs; the host side times the transfers.
# Everything runs inside a network namespace this script makes.
#   bench/net.sh [MiB per transfer, default 8]
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
QUOKKA=${QUOKKA:-$BUILD/quokka}
MB=${1:-8}
G=$("$TOP/scripts/guest.sh") || exit 1
T=$(mktemp -d "${TMPDIR:-/tmp}/quokka-netbench.XXXXXX")
NS=qk-bench-$$
ip netns add $NS || exit 1
trap 'ip netns pids $NS 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del $NS; rm -rf "$T"' EXIT
ip netns exec $NS ip link set lo up

# Host side: sink PORT (guest->host), or send ADDR PORT (host->guest); prints MB/s.
cat > "$T/hostio.py" <<'EOF'
import socket, sys, time
mode = sys.argv[1]
if mode == "sink":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(1)
    c, _ = s.accept(); n = 0; t0 = None
    while True:
        b = c.recv(1 << 16)
        if not b: break
        if t0 is None: t0 = time.time()
        n += len(b)
    print("%.2f" % (n / (time.time() - t0) / 1e6))
else:
    addr, port, total = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) << 20
    buf = b"\0" * (1 << 16)
    for attempt in range(50):
        try:
            c = socket.create_connection((addr, port), timeout=120); break
        except OSError: time.sleep(0.5)
    t0 = time.time(); n = 0
    while n < total: n += c.send(buf[: min(len(buf), total - n)])
    c.shutdown(socket.SHUT_WR); c.recv(1)       # the guest closes once it has it all
    print("%.2f" % (n / (time.time() - t0) / 1e6))
EOF

GCMD="ip link set lo up; ip link set eth0 up; ip link set eth1 up
ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
ip addr add 172.30.0.2/24 dev eth1
n=0; until ping -c 1 -W 1 172.30.0.1 >/dev/null 2>&1; do n=\$((n+1)); [ \$n -gt 60 ] && break; done
dd if=/dev/zero bs=65536 count=$((MB * 16)) 2>/dev/null | nc 10.0.2.2 6001
echo LISTEN1; nc -l -p 5001 >/dev/null
dd if=/dev/zero bs=65536 count=$((MB * 16)) 2>/dev/null | nc 172.30.0.1 6002
echo LISTEN2; nc -l -p 5002 >/dev/null
echo BENCHDONE"

run() {  # NAME VMM-ARGS...
    local name=$1; shift
    : > "$T/$name.out"
    ip netns exec $NS python3 "$T/hostio.py" sink 6001 > "$T/$name.u-g2h" &
    ip netns exec $NS python3 "$T/hostio.py" sink 6002 > "$T/$name.t-g2h" &
    ip netns exec $NS timeout 900 "$@" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" \
        -display none -monitor none -serial stdio -no-reboot \
        -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")" \
        -netdev user,id=u0,hostfwd=tcp:127.0.0.1:7001-:5001 -device virtio-net-pci,netdev=u0 \
        -netdev tap,id=t0,ifname=qbtap0,script=no,downscript=no -device virtio-net-pci,netdev=t0 \
        </dev/null >"$T/$name.out" 2>&1 &
    local vm=$!
    for _ in $(seq 100); do ip netns exec $NS ip link show qbtap0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip netns exec $NS ip addr add 172.30.0.1/24 dev qbtap0
    ip netns exec $NS ip link set qbtap0 up
    for _ in $(seq 6000); do grep -q LISTEN1 "$T/$name.out" && break; sleep 0.1; done
    sleep 1
    ip netns exec $NS python3 "$T/hostio.py" send 127.0.0.1 7001 $MB > "$T/$name.u-h2g"
    for _ in $(seq 6000); do grep -q LISTEN2 "$T/$name.out" && break; sleep 0.1; done
    sleep 1
    ip netns exec $NS python3 "$T/hostio.py" send 172.30.0.2 5002 $MB > "$T/$name.t-h2g"
    wait $vm
}
run quokka "$QUOKKA"
run qemu qemu-system-x86_64 -accel tcg -M pc -nodefaults
wait
printf '%-22s %10s %10s %8s\n' "MB/s ($MB MiB)" Quokka "QEMU TCG" ratio
for k in u-g2h:"user guest->host" u-h2g:"user host->guest" t-g2h:"tap guest->host" t-h2g:"tap host->guest"; do
    f=${k%%:*} label=${k#*:}
    q=$(cat "$T/quokka.$f" 2>/dev/null); r=$(cat "$T/qemu.$f" 2>/dev/null)
    ratio=$(awk -v a="${q:-0}" -v b="${r:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-22s %10s %10s %8s\n' "$label" "${q:--}" "${r:--}" "$ratio"
done
