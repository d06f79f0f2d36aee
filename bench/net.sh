#!/usr/bin/env bash
# TCP throughput of virtio-net, guest->host and host->guest, over user
# networking and over a tap, for Quokka and for QEMU TCG running the same
# Debian guest with the same NICs (each VMM with its defaults); the host
# side times the transfers. Then ping round trips over the tap both ways:
# host->guest timed on the host (raw ICMP, 20 pings), guest->host timed by
# the guest's busybox ping (20 pings). Everything runs inside a network
# namespace this script makes.
#   bench/net.sh [MiB host->guest, default 32] [MiB guest->host, default 8]
# ROUNDS=N (default 1) runs Quokka and QEMU alternately N times each and
# keeps each one's best figure: on a shared, loaded machine one run can land
# on a burst of someone else's work.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
QUOKKA=${QUOKKA:-$BUILD/quokka}
MB=${1:-32}
GMB=${2:-8}
ROUNDS=${ROUNDS:-1}
G=$("$TOP/scripts/guest.sh") || exit 1
T=$(mktemp -d "${TMPDIR:-/tmp}/quokka-netbench.XXXXXX")
NS=qk-bench-$$
ip netns add $NS || exit 1
trap 'ip netns pids $NS 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del $NS; rm -rf "$T"' EXIT
ip netns exec $NS ip link set lo up

# Host side: sink PORT (guest->host), or send ADDR PORT MiB (host->guest); prints MB/s.
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
# Host->guest ping: ADDR; prints the average round trip in ms.
cat > "$T/ping.py" <<'EOF'
import os, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(2)
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff)
    return ~(t + (t >> 16)) & 0xffff
rtts = []
for i in range(20):
    h = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xffff, i) + b"q" * 56
    t0 = time.perf_counter(); s.sendto(h[:2] + struct.pack("!H", csum(h)) + h[4:], (sys.argv[1], 0))
    try:
        while True:
            d = s.recv(2000)
            if d[20] == 0 and struct.unpack("!H", d[26:28])[0] == i: break
        rtts.append((time.perf_counter() - t0) * 1000)
    except socket.timeout: pass
    time.sleep(0.2)
print("%.2f" % (sum(rtts) / len(rtts)) if rtts else "-")
EOF

GCMD="ip link set lo up; ip link set eth0 up; ip link set eth1 up
ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
ip addr add 172.30.0.2/24 dev eth1
n=0; until ping -c 1 -W 1 172.30.0.1 >/dev/null 2>&1; do n=\$((n+1)); [ \$n -gt 60 ] && break; done
dd if=/dev/zero bs=65536 count=$((GMB * 16)) 2>/dev/null | nc 10.0.2.2 6001
echo LISTEN1; nc -l -p 5001 >/dev/null
dd if=/dev/zero bs=65536 count=$((GMB * 16)) 2>/dev/null | nc 172.30.0.1 6002
ping -c 20 -i 0.2 172.30.0.1 | tail -1
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
    ip netns exec $NS python3 "$T/ping.py" 172.30.0.2 > "$T/$name.hping"
    ip netns exec $NS python3 "$T/hostio.py" send 172.30.0.2 5002 $MB > "$T/$name.t-h2g"
    wait $vm
    sed -n 's|^round-trip.* = [0-9.]*/\([0-9.]*\)/.*|\1|p' "$T/$name.out" | tr -d '\r' > "$T/$name.gping"
}
for r in $(seq "$ROUNDS"); do
    run quokka.$r "$QUOKKA"
    run qemu.$r qemu-system-x86_64 -accel tcg -M pc -nodefaults
done
wait
# Each VMM's best round per figure: the highest MB/s, the lowest ping.
for vmm in quokka qemu; do
    for f in u-g2h u-h2g t-g2h t-h2g hping gping; do
        case $f in *ping) order=-g;; *) order=-gr;; esac
        cat "$T/$vmm".*."$f" 2>/dev/null | grep -E '^[0-9.]+$' | sort $order | head -1 > "$T/$vmm.$f"
    done
done

# ratio > 1: Quokka is better (MB/s: Quokka's / QEMU's; ping: QEMU's time / Quokka's)
line() {  # FILE-SUFFIX LABEL higher|lower
    local q r ratio
    q=$(cat "$T/quokka.$1" 2>/dev/null); r=$(cat "$T/qemu.$1" 2>/dev/null)
    ratio=$(awk -v a="${q:-0}" -v b="${r:-0}" -v w="$3" 'BEGIN {
        if (a > 0 && b > 0) printf "%.2f", w == "higher" ? a / b : b / a; else print "-" }')
    printf '%-34s %10s %10s %8s\n' "$2" "${q:--}" "${r:--}" "$ratio"
}
printf '%-34s %10s %10s %8s\n' "h2g $MB MiB, g2h $GMB MiB, best of $ROUNDS" Quokka "QEMU TCG" ratio
line u-g2h "user guest->host MB/s" higher
line u-h2g "user host->guest MB/s" higher
line t-g2h "tap guest->host MB/s" higher
line t-h2g "tap host->guest MB/s" higher
line hping "ping host->guest ms (tap)" lower
line gping "ping guest->host ms (tap)" lower
