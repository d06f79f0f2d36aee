#!/usr/bin/env bash
# Disk throughput in the test guest, Quokka against QEMU TCG (same kernel,
# initrd, RAM, image formats, cache=none): sequential 1 MiB and random
# 4 KiB O_DIRECT reads and writes on /dev/vda, raw and qcow2. The guest
# program (bench/blk-io.c, static) reaches the guest on a second disk.
# Each format runs BLK_ROUNDS times per emulator, the two alternating so
# that changes in the host's load hit both alike; the median of the rounds
# is printed (MB/s or IOPS) with the ratio quokka/qemu (>1: we are faster).
# Depth 1 makes every figure a latency: on a shared 2-core host expect
# +-15% between runs, hence the rounds.
#
#   bench/blk.sh      (BUILD=build; BLK_ROUNDS=5; BLK_SEQ_MIB=256;
#                      BLK_RAND_OPS=4000; BLK_MEM=256M)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
Q=${QUOKKA:-$BUILD/quokka}
QEMU=${QEMU:-qemu-system-x86_64}
ROUNDS=${BLK_ROUNDS:-5}
SEQ=${BLK_SEQ_MIB:-256}
OPS=${BLK_RAND_OPS:-4000}
MEM=${BLK_MEM:-256M}
[ -x "$Q" ] || { echo "build quokka first ($Q)"; exit 1; }
command -v "$QEMU" >/dev/null || { echo "no $QEMU (apt-get install qemu-system-x86)"; exit 1; }
G=$("$TOP/scripts/guest.sh") || exit 1
W=$(mktemp -d "${TMPDIR:-/tmp}/quokka-blkbench.XXXXXX")
trap 'rm -rf "$W"' EXIT

gcc -static -O2 -o "$W/blk-io" "$TOP/bench/blk-io.c" || exit 1
size=$(stat -c %s "$W/blk-io")
cp "$W/blk-io" "$W/tool.raw"
truncate -s 4M "$W/tool.raw"
GCMD="dd if=/dev/vdb of=/tmp/blk-io bs=$size count=1 iflag=fullblock 2>/dev/null; chmod +x /tmp/blk-io
for m in seqwrite seqread; do /tmp/blk-io \$m /dev/vda $SEQ; done
for m in randwrite randread; do /tmp/blk-io \$m /dev/vda $OPS; done"
APPEND="console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")"

run() {   # run EMULATOR FORMAT -> RESULT lines
    local emu=$1 fmt=$2 img=$W/disk.$2
    rm -f "$img"
    qemu-img create -q -f "$fmt" "$img" 256M
    local accel=(-accel tcg)
    [ "$emu" = "$Q" ] && accel=(-accel emu)
    timeout 1200 "$emu" "${accel[@]}" -m "$MEM" -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" \
        -display none -monitor none -serial stdio -no-reboot -append "$APPEND" \
        -drive file="$img",format="$fmt",if=virtio,cache=none \
        -drive file="$W/tool.raw",format=raw,if=virtio,readonly=on </dev/null 2>&1 |
        tr -d '\r' | grep '^RESULT'
}

# median MODE FILE: the median of the rounds' seconds for MODE (empty if a
# round failed to report it: a failed run is not averaged away).
median() {
    local n
    n=$(awk -v m="$1" '$2 == m' "$2" | wc -l)
    [ "$n" -eq "$ROUNDS" ] || return 0
    awk -v m="$1" '$2 == m { print $4 }' "$2" | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

rate() {  # rate MODE SECONDS
    local bytes
    case $1 in
    seq*) bytes=$((SEQ << 20)); awk -v b=$bytes -v s="$2" 'BEGIN { printf "%.1f MB/s", b / s / 1e6 }' ;;
    *) awk -v n="$OPS" -v s="$2" 'BEGIN { printf "%.0f IOPS", n / s }' ;;
    esac
}

echo "quokka $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null), load average $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS rounds"
printf "%-6s %-10s %14s %14s %8s\n" format test quokka qemu-tcg ratio
for fmt in raw qcow2; do
    : >"$W/q.txt"; : >"$W/m.txt"
    for ((i = 0; i < ROUNDS; i++)); do
        run "$Q" "$fmt" >>"$W/q.txt"
        run "$QEMU" "$fmt" >>"$W/m.txt"
    done
    for m in seqwrite seqread randwrite randread; do
        a=$(median $m "$W/q.txt"); b=$(median $m "$W/m.txt")
        ra=$( [ -n "$a" ] && rate $m "$a" || echo failed)
        rb=$( [ -n "$b" ] && rate $m "$b" || echo failed)
        ratio=$( [ -n "$a" ] && [ -n "$b" ] && awk -v x="$a" -v y="$b" \
            'BEGIN { printf "%.2f", y / x }' || echo -)
        printf "%-6s %-10s %14s %14s %8s\n" "$fmt" "$m" "$ra" "$rb" "$ratio"
    done
done
