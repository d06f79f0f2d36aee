#!/usr/bin/env bash
# CPU-bound busybox workloads timed inside the test guest under Quokka and
# under QEMU TCG, and on the host with the host's busybox: sha256sum and
# gzip of generated data, awk arithmetic, sort. Times come from the guest's
# own clock (/proc/uptime) around each workload, so boot time is excluded.
# Prints seconds per workload and the ratios qemu/quokka (>1: quokka is
# faster) and quokka/host (the emulation slowdown). Each workload runs
# CPU_ROUNDS times in a row (default 3) and the best time counts: on a
# shared host a round can lose a second to other load. The commit and the
# load average before the run are printed with the table.
#
#   bench/cpu.sh           (BUILD=build; CPU_MEM=512M; CPU_ROUNDS=3)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
Q=${QUOKKA:-$BUILD/quokka}
QEMU=${QEMU:-qemu-system-x86_64}
MEM=${CPU_MEM:-512M}
ROUNDS=${CPU_ROUNDS:-3}
[ -x "$Q" ] || { echo "build quokka first ($Q)"; exit 1; }
command -v "$QEMU" >/dev/null || { echo "no $QEMU (apt-get install qemu-system-x86)"; exit 1; }
G=$("$TOP/scripts/guest.sh") || exit 1

# Each workload: NAME|COMMAND (run by busybox sh; output discarded).
WORKLOADS='sha256|dd if=/dev/zero bs=1M count=32 2>/dev/null | sha256sum
gzip|dd if=/dev/zero bs=1M count=16 2>/dev/null | gzip -c | wc -c
awk|awk "BEGIN { s = 0; for (i = 0; i < 300000; i++) s += (i * i) % 7; print s }"
sort|seq 100000 | awk "{ print (\$1 * 7919) % 100003 }" | sort -n | tail -1'

SCRIPT='up() { cut -d" " -f1 /proc/uptime; }
echo "$W" | while IFS="|" read -r name cmd; do
    best=
    for r in $(seq '"$ROUNDS"'); do
        t0=$(up); sh -c "$cmd" >/dev/null; t1=$(up)
        best=$(echo "$t0 $t1 $best" | awk "{ d = \$2 - \$1; if (\$3 != \"\" && \$3 < d) d = \$3; printf \"%.2f\", d }")
    done
    echo "BENCH $name $best"
done'
GUEST_CMD="W='$WORKLOADS'
$SCRIPT"
APPEND="console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GUEST_CMD")"
COMMON=(-m "$MEM" -smp 1 -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -append "$APPEND"
        -display none -serial stdio -monitor none -no-reboot)

LOAD=$(cut -d" " -f1-3 /proc/loadavg)
timeout 1200 "$Q" -accel emu "${COMMON[@]}" </dev/null 2>&1 | tr -d '\r' | grep '^BENCH' > /tmp/cpu-bench.$$.quokka
timeout 1200 "$QEMU" -accel tcg -M pc "${COMMON[@]}" </dev/null 2>&1 | tr -d '\r' | grep '^BENCH' > /tmp/cpu-bench.$$.qemu
# Host: the same script with the host's busybox (elapsed wall time).
W="$WORKLOADS" busybox sh -c "up() { /bin/date +%s.%N; }
$(echo "$SCRIPT" | sed 1d)" > /tmp/cpu-bench.$$.host

echo "commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown), load before: $LOAD, best of $ROUNDS"
printf "%-8s %10s %10s %10s %12s %12s\n" workload quokka qemu host qemu/quokka quokka/host
echo "$WORKLOADS" | while IFS='|' read -r name _; do
    q=$(awk -v n="$name" '$2 == n { print $3 }' /tmp/cpu-bench.$$.quokka)
    e=$(awk -v n="$name" '$2 == n { print $3 }' /tmp/cpu-bench.$$.qemu)
    h=$(awk -v n="$name" '$2 == n { print $3 }' /tmp/cpu-bench.$$.host)
    awk -v n="$name" -v q="${q:-0}" -v e="${e:-0}" -v h="${h:-0}" 'BEGIN {
        r1 = (q > 0) ? sprintf("%.2f", e / q) : "n/a"
        r2 = (h > 0 && q > 0) ? sprintf("%.1fx", q / h) : "n/a"
        printf "%-8s %9.2fs %9.2fs %9.2fs %12s %12s\n", n, q, e, h, r1, r2 }'
done
[ -n "${CPU_KEEP:-}" ] || rm -f /tmp/cpu-bench.$$.*
