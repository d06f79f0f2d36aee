#!/usr/bin/env bash
# Regenerates the seed images in tests/fuzz/corpus/qcow2/ with qemu-img:
# tiny (512-byte clusters) images covering v2/v3, snapshots, compressed and
# zero clusters, odd refcount widths and a recorded backing file.
set -eu
out=$(cd "$(dirname "$0")" && pwd)/corpus/qcow2
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mk() {   # mk NAME CREATE-OPTIONS QEMU-IO-COMMANDS... (then snapshot if SNAP=1)
    local name=$1 opts=$2; shift 2
    qemu-img create -q -f qcow2 -o "cluster_size=512,$opts" "$t/$name" 64k
    local c args=()
    for c in "$@"; do args+=(-c "$c"); done
    [ ${#args[@]} -eq 0 ] || qemu-io "${args[@]}" "$t/$name" >/dev/null
    [ "${SNAP:-0}" = 0 ] || qemu-img snapshot -c s1 "$t/$name"
    cp "$t/$name" "$out/$name"
}
rm -f "$out"/*.qcow2
SNAP=1 mk v3-snap.qcow2 compat=1.1 'write -P 1 0 1k' 'write -c -P 2 8k 512' 'write -z 16k 1k'
SNAP=1 mk v2-snap.qcow2 compat=0.10 'write -P 3 0 1536' 'write -P 4 60k 512'
mk rc1-zero.qcow2 refcount_bits=1 'write -P 5 0 512' 'write -z -u 1k 1k'
truncate -s 64k "$t/base.raw"
mk rc64-backing.qcow2 refcount_bits=64,backing_file=base.raw,backing_fmt=raw 'write -P 6 4k 512'
mk lazy-dirty.qcow2 lazy_refcounts=on 'write -P 7 0 2k'
printf '\001' | dd of="$out/lazy-dirty.qcow2" bs=1 seek=79 conv=notrunc status=none   # dirty bit
ls -l "$out"
