#!/usr/bin/env bash
# measure: the same figures (human and JSON) as qemu-img for sizes and for
# existing images.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

"$QEMU_IMG" create -q -f qcow2 a.qcow2 16M
"$QEMU_IO" -c 'write -P 1 0 1M' -c 'write -P 2 15M 1M' a.qcow2 >/dev/null
"$QEMU_IMG" create -q -f qcow2 -o compat=0.10 m.qcow2 16M
"$QEMU_IO" -c 'write -P 7 0 256k' m.qcow2 >/dev/null
# measure
while read -r args; do
    same_output "measure $args" "$Q" measure $args -- "$QEMU_IMG" measure $args
    same_output "measure --output=json $args" "$Q" measure --output=json $args -- \
        "$QEMU_IMG" measure --output=json $args
done <<LIST
--size 1G -O qcow2
--size 10G -O qcow2 -o cluster_size=4k
--size 10G -O qcow2 -o refcount_bits=1
--size 100M -O qcow2 -o preallocation=full
--size 1G -O qcow2 -o extended_l2=on
--size 1000 -O raw
-O qcow2 a.qcow2
-O raw a.qcow2
-O qcow2 -o compat=0.10 m.qcow2
-O qcow2 -o cluster_size=512 a.qcow2
LIST
same_output "measure needs a size or a file" "$Q" measure -O qcow2 -- "$QEMU_IMG" measure -O qcow2

done_testing
