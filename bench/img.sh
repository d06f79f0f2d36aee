#!/usr/bin/env bash
# quokka-img against qemu-img on the same 2 GiB image, half of it data in
# scattered 64 KiB pieces: convert raw->qcow2, qcow2->raw, compressed
# convert, check, and 4 KiB scattered reads and writes through `bench`.
# Prints each wall time (best of ROUNDS, default 2), the CPU time of that
# run, and the ratio qemu time / quokka time (>1: we are faster).
#
#   bench/img.sh            (BUILD=build by default; BENCH_DIR for the files)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${BUILD:-$TOP/build}" && pwd)
Q=${QUOKKA_IMG:-$BUILD/quokka-img}
QEMU_IMG=${QEMU_IMG:-qemu-img}
D=$(mktemp -d "${BENCH_DIR:-/tmp}/quokka-img-bench.XXXXXX")
trap 'rm -rf "$D"' EXIT
[ -x "$Q" ] || { echo "build quokka-img first ($Q)"; exit 1; }
cd "$D"

# 2 GiB sparse raw; 16384 of its 32768 64 KiB pieces hold data with about
# 4 bits of entropy per byte (compressible about 2:1, like real disks).
MIB=${BENCH_MIB:-2048}     # image size (smaller for a quick try)
python3 - "$MIB" <<'PY'
import os, random, sys
random.seed(7)
size, piece = int(sys.argv[1]) << 20, 64 << 10
table = bytes(b"abcdefghijklmnop" * 16)
with open("src.raw", "wb") as f:
    f.truncate(size)
    for i in sorted(random.sample(range(size // piece), size // piece // 2)):
        f.seek(i * piece)
        f.write(os.urandom(piece).translate(table))
PY
"$QEMU_IMG" convert -f raw -O qcow2 src.raw src.qcow2
sync

# run CMD...: "wall cpu" seconds of one run (cpu = user + system).
run() {
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$D/.time" "$@" >/dev/null 2>&1 ||
        { echo "bench/img.sh: FAILED: $*" >&2; kill -TERM $$; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" '{ printf "%.3f %.3f", b - a, $1 + $2 }' "$D/.time"
}

# row NAME QEMU_ARGS... -- QUOKKA_ARGS...: each tool ROUNDS times, turn
# about, a fresh output each time; the best wall time of each counts (the
# machine is shared, so the minimum is the least disturbed run).
ROUNDS=${ROUNDS:-2}
row() {
    local name=$1; shift
    local qa=() qk=() r
    while [ "$1" != "--" ]; do qa+=("$1"); shift; done; shift
    qk=("$@")
    local bq=999999 bk=999999 cq=0 ck=0 t
    for r in $(seq "$ROUNDS"); do
        # sync first so neither run pays for the other's dirty pages
        rm -f out.*; [ -n "${PREP:-}" ] && eval "$PREP"; sync
        t=$(run "$QEMU_IMG" "${qa[@]}")
        if awk -v a="${t% *}" -v b="$bq" 'BEGIN { exit !(a < b) }'; then bq=${t% *}; cq=${t#* }; fi
        rm -f out.*; [ -n "${PREP:-}" ] && eval "$PREP"; sync
        t=$(run "$Q" "${qk[@]}")
        if awk -v a="${t% *}" -v b="$bk" 'BEGIN { exit !(a < b) }'; then bk=${t% *}; ck=${t#* }; fi
    done
    printf "%-24s qemu-img %7.3f s (cpu %6.2f)  quokka-img %7.3f s (cpu %6.2f)  ratio %5.2f\n" \
        "$name" "$bq" "$cq" "$bk" "$ck" \
        "$(awk -v a="$bq" -v b="$bk" 'BEGIN { printf "%.2f", a / (b > 0.001 ? b : 0.001) }')"
}

echo "quokka-img vs qemu-img, $MIB MiB image, half of it data in 64 KiB pieces ($(nproc) cores, load $(cut -d" " -f1 /proc/loadavg))"
row "convert raw->qcow2" convert -f raw -O qcow2 src.raw out.qcow2 -- \
    convert -f raw -O qcow2 src.raw out.qcow2
row "convert qcow2->raw" convert -f qcow2 -O raw src.qcow2 out.raw -- \
    convert -f qcow2 -O raw src.qcow2 out.raw
row "convert -c raw->qcow2" convert -c -f raw -O qcow2 src.raw out.qcow2 -- \
    convert -c -f raw -O qcow2 src.raw out.qcow2
row "check qcow2" check src.qcow2 -- check src.qcow2
# 4 KiB requests 1 MiB + 4 KiB apart: each lands in another cluster and
# wraps around the image, touching data and holes alike.
B="-f qcow2 -c 100000 -d 32 -s 4k -S 1052672"
row "bench read 4k" bench $B src.qcow2 -- bench $B src.qcow2
PREP="cp --sparse=always src.qcow2 out.qcow2" \
row "bench write 4k" bench $B -w out.qcow2 -- bench $B -w out.qcow2
