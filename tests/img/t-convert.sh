#!/usr/bin/env bash
# Images quokka-img convert writes pass `qemu-img check` and read back
# identical in qemu-img, for each target option, compression (zlib, zstd,
# with its worker threads), backing files, -n, -S, -m, -W and -p.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

"$QEMU_IMG" create -q -f raw src.raw 8M
fill src.raw raw
# data compressible enough for the compressed cases to matter
python3 -c "import sys; sys.stdout.buffer.write((b'quokka image data %d ' * 1 % 7) * 30000)" >text.bin
dd if=text.bin of=src.raw bs=64k seek=64 conv=notrunc status=none

n=0
while read -r flags; do
    n=$((n + 1))
    f=(); [ "$flags" != "-" ] && f=($flags)
    out=o$n.qcow2
    check "convert ${f[*]}" "$Q" convert -f raw -O qcow2 "${f[@]}" src.raw $out
    qemu_clean "convert ${f[*]}: qemu-img check clean" $out
    same_content "convert ${f[*]}: qemu-img reads it identical" src.raw $out
done <<'LIST'
-
-o cluster_size=4k
-o cluster_size=512
-o cluster_size=2M
-o refcount_bits=1
-o refcount_bits=64
-o compat=0.10
-o extended_l2=on
-o preallocation=metadata
-o lazy_refcounts=on
-c
-c -o compression_type=zstd
-c -o cluster_size=4k
-S 0
-m 1
-m 16 -W
LIST
# compressed clusters really are compressed, as qemu-img would write them
"$QEMU_IMG" convert -c -f raw -O qcow2 src.raw ref-c.qcow2
check "compressed output no bigger than 1.5x qemu-img's" \
    test "$(stat -c %s o11.qcow2)" -le $(( $(stat -c %s ref-c.qcow2) * 3 / 2 ))
"$QEMU_IMG" check --output=json o11.qcow2 >c.json
check "compressed clusters counted by qemu-img check" grep -q '"compressed-clusters"' c.json

# qcow2 -> raw and qcow2 -> qcow2
check "convert qcow2 -> raw" "$Q" convert -O raw o1.qcow2 back.raw
check "qcow2 -> raw bytes" cmp src.raw back.raw
check "convert qcow2 -> qcow2" "$Q" convert -O qcow2 o12.qcow2 again.qcow2
same_content "qcow2 -> qcow2 content" src.raw again.qcow2

# several sources are concatenated
check "convert two sources" "$Q" convert -f raw -O qcow2 src.raw src.raw two.qcow2
"$QEMU_IMG" convert -f raw -O qcow2 src.raw src.raw two-ref.qcow2
same_content "two sources concatenated like qemu-img" two-ref.qcow2 two.qcow2

# -B: only what differs from the backing file lands in the target
"$QEMU_IMG" create -q -f qcow2 base.qcow2 8M
"$QEMU_IO" -c 'write -P 0x11 0 64k' base.qcow2 >/dev/null
"$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 over.qcow2
"$QEMU_IO" -c 'write -P 0x5a 1M 64k' over.qcow2 >/dev/null
check "convert -B -F" "$Q" convert -O qcow2 -B base.qcow2 -F qcow2 over.qcow2 b.qcow2
qemu_clean "-B target checks clean" b.qcow2
same_content "-B target reads like the source" over.qcow2 b.qcow2
check_eq "-B target has the backing file" "base.qcow2" \
    "$("$QEMU_IMG" info --output=json b.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["backing-filename"])')"
check_eq "-B target holds only the top's data" "1" \
    "$("$QEMU_IMG" map --output=json b.qcow2 | grep -c '"depth": 0, "present": true, "zero": false, "data": true')"

# -n into an existing image (not zero) and --target-is-zero
"$QEMU_IMG" create -q -f raw dirty.raw 8M
"$QEMU_IO" -f raw -c 'write -P 0xee 0 8M' dirty.raw >/dev/null
check "convert -n over old data" "$Q" convert -n -f raw -O raw src.raw dirty.raw
check "-n result equals source" cmp src.raw dirty.raw
"$QEMU_IMG" create -q -f qcow2 zero.qcow2 8M
check "convert -n --target-is-zero" "$Q" convert -n --target-is-zero -f raw -O qcow2 src.raw zero.qcow2
same_content "--target-is-zero result" src.raw zero.qcow2

# -p draws qemu-img's progress line
"$Q" convert -p -f raw -O raw src.raw p.raw >p.out
check "progress line format" grep -q '^    (0.00/100%)' p.out
check "progress ends at 100%" grep -q '(100.00/100%)' p.out

# errors, in qemu-img's words
same_output "compression needs a format that has it" \
    "$Q" convert -c -f raw -O raw src.raw x.raw -- "$QEMU_IMG" convert -c -f raw -O raw src.raw x.raw
same_output "missing source" "$Q" convert -O raw missing.img x.raw -- \
    "$QEMU_IMG" convert -O raw missing.img x.raw
done_testing
