#!/usr/bin/env bash
# qcow2 interop with qemu-img / qemu-io 7.2: every image we write must be
# clean for `qemu-img check` and read back identically; every kind of image
# qemu-img writes must read identically through us.
. "$(dirname "$0")/../lib.sh"
QIO=${QUOKKA_IO:-$BUILD/quokka-io}
for b in "$QUOKKA_IMG" "$QIO"; do [ -x "$b" ] || { echo "Bail out! $b not built"; exit 1; }; done
command -v qemu-img >/dev/null || { echo "Bail out! qemu-img not installed"; exit 1; }
cd "$T" || exit 1

# A 3 MiB + 5 KiB source: random, constant, zero and mostly-zero 64 KiB pieces.
python3 - <<'PY'
import os, random
random.seed(7)
with open('src.raw', 'wb') as f:
    for i in range(48):
        k = random.randint(0, 3)
        f.write(b'\0' * 65536 if k == 0 else os.urandom(65536) if k == 1 else
                bytes([i]) * 65536 if k == 2 else os.urandom(700) + b'\0' * 64836)
    f.write(os.urandom(5120))
PY

clean() { qemu-img check -q "$1" >/dev/null 2>&1; }
same_raw() { qemu-img compare -q -f raw -F qcow2 src.raw "$1" 2>/dev/null; }

for o in "" cluster_size=512 cluster_size=2M refcount_bits=1 refcount_bits=64,cluster_size=512 \
         compat=0.10 extended_l2=on compression_type=zstd lazy_refcounts=on \
         refcount_bits=4,cluster_size=4k; do
    opt=${o:+-o $o}; tag=${o:-default}
    rm -f w.qcow2 c.qcow2 r.qcow2 rc.qcow2
    check "write $tag" "$QUOKKA_IMG" convert -f raw -O qcow2 $opt src.raw w.qcow2
    check "write $tag: qemu-img check clean" clean w.qcow2
    check "write $tag: same data" same_raw w.qcow2
    check "compressed write $tag" "$QUOKKA_IMG" convert -c -f raw -O qcow2 $opt src.raw c.qcow2
    check "compressed write $tag: clean" clean c.qcow2
    check "compressed write $tag: same data" same_raw c.qcow2
    qemu-img convert -f raw -O qcow2 $opt src.raw r.qcow2
    qemu-img convert -c -f raw -O qcow2 $opt src.raw rc.qcow2
    for img in r rc; do
        rm -f back.raw
        "$QUOKKA_IMG" convert -f qcow2 -O raw $img.qcow2 back.raw
        check "read qemu's $img $tag" cmp -s src.raw back.raw
    done
done

# Compressed clusters pack as tightly as qemu-img packs them.
for o in cluster_size=64k cluster_size=512 cluster_size=2M compression_type=zstd; do
    rm -f c.qcow2 rc.qcow2
    "$QUOKKA_IMG" convert -c -f raw -O qcow2 -o $o src.raw c.qcow2
    qemu-img convert -c -f raw -O qcow2 -o $o src.raw rc.qcow2
    ours=$(stat -c %s c.qcow2) theirs=$(stat -c %s rc.qcow2)
    check "compressed $o: size $ours within 2% of qemu-img's $theirs" \
        test $((ours * 100)) -le $((theirs * 102))
done

# Partial writes, zeroes, discard and compressed writes against qemu-io's view.
rm -f p.qcow2
qemu-img create -q -f qcow2 p.qcow2 8M
check "quokka-io mixed writes" "$QIO" -c "write -P 0x11 1000 100k" -c "write -P 0x22 3M 64k" \
    -c "write -z 3M 4k" -c "write -z -u 1M 1M" -c "write -c -P 0x33 5M 128k" \
    -c "discard 5M 64k" -c "write -P 0x44 5200k 4k" -c flush p.qcow2
check "mixed writes: clean" clean p.qcow2
check "mixed writes: qemu-io reads them" qemu-io -c "read -P 0x11 1000 47576" \
    -c "read -P 0 1M 1M" -c "read -P 0 3M 4k" -c "read -P 0x22 3076k 60k" \
    -c "read -P 0 5M 64k" -c "read -P 0x33 5184k 16k" -c "read -P 0x44 5200k 4k" \
    -c "read -P 0x33 5204k 44k" -c "read -P 0 5248k 64k" p.qcow2

# qemu-io writes into sub-clusters and zero clusters; we read them.
for o in extended_l2=on,cluster_size=64k compat=1.1 compat=0.10; do
    rm -f s.qcow2
    qemu-img create -q -f qcow2 -o $o s.qcow2 4M
    qemu-io -c "write -P 0x5a 3k 5k" -c "write -P 0x6b 70k 1k" -c "write -z 256k 128k" \
        -c "write -P 0x7c 1M 64k" -c "write -z 1M 64k" s.qcow2 >/dev/null
    qemu-img map --output=json s.qcow2 >map.ref
    "$QUOKKA_IMG" map --output=json s.qcow2 >map.out
    check "block status like qemu-img map ($o)" cmp -s map.ref map.out
    check "read qemu-io sub-cluster writes ($o)" "$QIO" -c "read -P 0 0 3k" -c "read -P 0x5a 3k 5k" \
        -c "read -P 0 8k 62k" -c "read -P 0x6b 70k 1k" -c "read -P 0 71k 953k" \
        -c "read -P 0 1M 64k" s.qcow2
    check "our partial writes into qemu-io's clusters ($o)" "$QIO" -c "write -P 0x9d 5k 1k" \
        -c "write -P 0x9e 260k 2k" s.qcow2
    check "partial writes ($o): clean" clean s.qcow2
    check "partial writes ($o): qemu-io reads them" qemu-io -c "read -P 0x5a 3k 2k" \
        -c "read -P 0x9d 5k 1k" -c "read -P 0x5a 6k 2k" -c "read -P 0 256k 4k" \
        -c "read -P 0x9e 260k 2k" -c "read -P 0 262k 126k" s.qcow2
done

qemu-img map --output=json p.qcow2 >map.ref
"$QUOKKA_IMG" map --output=json p.qcow2 >map.out
check "block status like qemu-img map (no backing file)" cmp -s map.ref map.out

# Backing chains: reads fall through, partial writes copy from the backing file.
rm -f base.qcow2 mid.qcow2 top.qcow2
qemu-img convert -f raw -O qcow2 src.raw base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 -o cluster_size=4k mid.qcow2
qemu-io -c "write -P 0xaa 100k 10k" mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
check "partial write over a backing chain" "$QIO" -c "write -P 0xbb 1M 3k" -c "write -P 0xcc 104k 1k" top.qcow2
check "backing chain: clean" clean top.qcow2
qemu-img convert -O raw top.qcow2 ref.raw
"$QUOKKA_IMG" convert -O raw top.qcow2 ours.raw
check "backing chain reads like qemu-img" cmp -s ref.raw ours.raw
python3 - <<'PY' && ok "backing chain data as written" || not_ok "backing chain data as written"
src = bytearray(open('src.raw', 'rb').read())
src[100*1024:110*1024] = b'\xaa' * 10240
src[104*1024:105*1024] = b'\xcc' * 1024
src[1024*1024:1027*1024] = b'\xbb' * 3072
raise SystemExit(open('ours.raw', 'rb').read() != bytes(src))
PY

# Preallocated extended-L2 clusters keep the backing file visible.
for p in metadata falloc; do
    rm -f pq.qcow2 pr.qcow2
    "$QUOKKA_IMG" create -q -f qcow2 -o extended_l2=on,preallocation=$p -b base.qcow2 -F qcow2 pq.qcow2 2M
    qemu-img create -q -f qcow2 -o extended_l2=on,preallocation=$p -b base.qcow2 -F qcow2 pr.qcow2 2M
    qemu-img map --output=json pr.qcow2 >map.ref
    "$QUOKKA_IMG" map --output=json pq.qcow2 >map.out
    check "extended L2 preallocation=$p maps like qemu-img" cmp -s map.ref map.out
    check "extended L2 preallocation=$p: write" "$QIO" -c "write -P 0x3c 5000 3000" pq.qcow2
    check "extended L2 preallocation=$p: clean" clean pq.qcow2
    head -c 2M src.raw >pre.raw
    printf '\x3c%.0s' $(seq 3000) | dd of=pre.raw bs=1 seek=5000 conv=notrunc status=none
    check "extended L2 preallocation=$p: backing shows through" \
        qemu-img compare -q -f raw -F qcow2 pre.raw pq.qcow2
done

# Internal snapshots made by qemu-img: reads see the active state, writes
# copy shared clusters and leave the snapshot intact.
rm -f sn.qcow2
qemu-img convert -f raw -O qcow2 src.raw sn.qcow2
qemu-img snapshot -c s1 sn.qcow2
qemu-io -c "write -P 0x12 64k 64k" sn.qcow2 >/dev/null
check "write over snapshot-shared clusters" "$QIO" -c "write -P 0x34 0 4k" -c "write -P 0x56 2M 100k" \
    -c "write -z 1M 64k" -c "discard 1536k 64k" sn.qcow2
check "snapshots: clean" clean sn.qcow2
check "snapshots: active data" qemu-io -c "read -P 0x34 0 4k" -c "read -P 0x12 64k 64k" \
    -c "read -P 0x56 2M 100k" -c "read -P 0 1M 64k" sn.qcow2
qemu-img snapshot -a s1 sn.qcow2
check "snapshots: snapshot data intact" same_raw sn.qcow2

# Resize: grow with each preallocation mode, then shrink.
for p in off metadata falloc full; do
    rm -f g.qcow2
    check "create preallocation=$p" "$QUOKKA_IMG" create -q -f qcow2 -o preallocation=$p g.qcow2 3M
    check "grow preallocation=$p" "$QUOKKA_IMG" resize -q --preallocation=$p g.qcow2 7M
    check "preallocation=$p: clean" clean g.qcow2
    check "preallocation=$p: reads zero" qemu-io -c "read -P 0 0 7M" g.qcow2
done
rm -f k.qcow2
qemu-img convert -f raw -O qcow2 src.raw k.qcow2
check "shrink" "$QUOKKA_IMG" resize -q --shrink k.qcow2 1M
check "shrink: clean" clean k.qcow2
check_eq "shrink: size" 1048576 "$(qemu-img info --output=json k.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"
head -c 1M src.raw > head.raw
check "shrink: data kept" qemu-img compare -q -f raw -F qcow2 head.raw k.qcow2

# A dirty image (lazy refcounts, left unclosed) is repaired by a read-write open.
rm -f lz.qcow2
"$QUOKKA_IMG" create -q -f qcow2 -o lazy_refcounts=on lz.qcow2 4M
"$QIO" -c "write -P 0x21 0 1M" lz.qcow2 >/dev/null
printf '\x01' | dd of=lz.qcow2 bs=1 seek=79 conv=notrunc status=none
dirty() { qemu-img info --output=json lz.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["dirty-flag"])'; }
check_eq "dirty bit set" True "$(dirty)"
check "read-write open of a dirty image" "$QIO" -c "read -P 0x21 0 1M" lz.qcow2
check_eq "dirty bit cleared" False "$(dirty)"
check "dirty image repaired: clean" clean lz.qcow2

# Headers we must refuse, clearly.
rm -f f.qcow2; qemu-img create -q -f qcow2 f.qcow2 1M
printf '\x00\x00\x00\x00\x00\x00\x00\x20' | dd of=f.qcow2 bs=1 seek=72 conv=notrunc status=none
"$QIO" -r -c "read 0 512" f.qcow2 >out.txt 2>&1
check "unknown incompatible feature refused" grep -q "Unsupported qcow2 feature" out.txt
done_testing
