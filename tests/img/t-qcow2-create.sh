#!/usr/bin/env bash
# quokka-img create -f qcow2 with each option: same "Formatting" line as
# qemu-img, an image qemu-img checks clean, and the same `info` (human and
# JSON) as the image qemu-img creates with the same options.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

n=0
while read -r size opts; do
    n=$((n + 1))
    o=(); [ "$opts" != "-" ] && o=(-o "$opts")
    mkdir -p q$n r$n
    (cd q$n && "$Q" create -f qcow2 "${o[@]}" img.qcow2 "$size") >q$n.out 2>&1
    (cd r$n && "$QEMU_IMG" create -f qcow2 "${o[@]}" img.qcow2 "$size") 2>&1 |
        sed 's/qemu-img/quokka-img/g' >r$n.out
    check "create $opts: same output as qemu-img" cmp q$n.out r$n.out
    qemu_clean "create $opts: qemu-img check clean" q$n/img.qcow2
    (cd q$n && "$Q" info --output=json img.qcow2) >q$n.json
    (cd r$n && "$QEMU_IMG" info --output=json img.qcow2) >r$n.json
    # disk size depends on how the host file was grown; everything else must match
    json_same "create $opts: info JSON equals qemu-img's" q$n.json r$n.json actual-size
    (cd q$n && "$QEMU_IMG" info --output=json img.qcow2) >x$n.json
    json_same "create $opts: qemu-img reads the same info" x$n.json r$n.json actual-size
done <<'LIST'
64M -
1G cluster_size=4096
64M cluster_size=512
3G cluster_size=2M
1G compat=0.10
1G compat=1.1,lazy_refcounts=on
1G refcount_bits=1
1G refcount_bits=64
1G compression_type=zstd
100M preallocation=metadata
16M preallocation=falloc
16M preallocation=full
1G extended_l2=on
1.5G -
LIST

# qemu-img also lists encryption and external data files, which we don't do
SAME_SED='/data_file\|encrypt/d' same_output "-o help lists qemu-img's lines" \
    "$Q" create -f qcow2 -o help -- "$QEMU_IMG" create -f qcow2 -o help
same_output "bad cluster size" "$Q" create -f qcow2 -o cluster_size=3000 bad.qcow2 1M -- \
    "$QEMU_IMG" create -f qcow2 -o cluster_size=3000 bad.qcow2 1M
same_output "unknown option" "$Q" create -f qcow2 -o bogus=1 bad.qcow2 1M -- \
    "$QEMU_IMG" create -f qcow2 -o bogus=1 bad.qcow2 1M
same_output "unknown format" "$Q" create -f foo bad.img 1M -- "$QEMU_IMG" create -f foo bad.img 1M

# backing files: -b/-F, size taken from the backing file, -u, the -F check
"$QEMU_IMG" create -q -f qcow2 base.qcow2 32M
same_output "create -b -F takes the backing size" \
    "$Q" create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 -- \
    "$QEMU_IMG" create -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu_clean "backed image checks clean" top.qcow2
"$Q" info --output=json top.qcow2 >q.json; "$QEMU_IMG" info --output=json top.qcow2 >r.json
json_same "backed image info JSON" q.json r.json
same_output "backed image info" "$Q" info top.qcow2 -- "$QEMU_IMG" info top.qcow2
same_output "-b without -F is refused" "$Q" create -f qcow2 -b base.qcow2 nofmt.qcow2 -- \
    "$QEMU_IMG" create -f qcow2 -b base.qcow2 nofmt.qcow2
same_output "-u with a missing backing file" \
    "$Q" create -f qcow2 -u -b missing.qcow2 -F qcow2 u.qcow2 1G -- \
    "$QEMU_IMG" create -f qcow2 -u -b missing.qcow2 -F qcow2 u.qcow2 1G
same_output "missing backing file without -u" \
    "$Q" create -f qcow2 -b missing.qcow2 -F qcow2 m.qcow2 1G -- \
    "$QEMU_IMG" create -f qcow2 -b missing.qcow2 -F qcow2 m.qcow2 1G
done_testing
