#!/usr/bin/env bash
# Disk throughput in the test guest, Quokka against QEMU TCG (same kernel,
# initrd, RAM, image formats, cache=none): sequential 1 MiB and random
# 4 KiB O_DIRECT reads and writes on /dev/vda, raw and qcow2. The guest
# program (bench/blk-io.c, static) reaches the guest on a second disk.
# Prints MB/s or IOPS for each and the ratio quokka/qemu (>1: we are faster).
#
#   bench/blk.sh      (BUILD=build; BLK_SEQ_MIB=64; BLK_RAND_OPS=2000; BLK_MEM=256M)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
Q=${QUOKKA:-$BUILD/quokka}
QEMU=${QEMU:-qemu-system-x86_64}
SEQ=${BLK_SEQ_MIB:-64}
OPS=${BLK_RAND_OPS:-2000}
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

rate() {  # rate MODE BYTES SECONDS
    case $1 in
    seq*) awk -v b="$2" -v s="$3" 'BEGIN { printf "%.1f MB/s", b / s / 1e6 }' ;;
    *) awk -v b="$2" -v s="$3" 'BEGIN { printf "%.0f IOPS", b / 4096 / s }' ;;
    esac
}

printf "%-6s %-10s %14s %14s %8s\n" format test quokka qemu-tcg ratio
for fmt in raw qcow2; do
    qk=$(run "$Q" "$fmt"); qm=$(run "$QEMU" "$fmt")
    for m in seqwrite seqread randwrite randread; do
        a=$(echo "$qk" | awk -v m=$m '$2 == m { print $3, $4 }')
        b=$(echo "$qm" | awk -v m=$m '$2 == m { print $3, $4 }')
        ra=$( [ -n "$a" ] && rate $m $a || echo failed)
        rb=$( [ -n "$b" ] && rate $m $b || echo failed)
        ratio=$( [ -n "$a" ] && [ -n "$b" ] && awk -v x="${a#* }" -v y="${b#* }" \
            'BEGIN { printf "%.2f", y / x }' || echo -)
        printf "%-6s %-10s %14s %14s %8s\n" "$fmt" "$m" "$ra" "$rb" "$ratio"
    done
done
