#!/usr/bin/env bash
# amend on qcow2: the same messages, info and data as qemu-img's amend.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

# amend
"$QEMU_IMG" create -q -f qcow2 m.qcow2 16M
"$QEMU_IO" -c 'write -P 7 0 256k' m.qcow2 >/dev/null
cp m.qcow2 n.qcow2
for o in lazy_refcounts=on refcount_bits=64 compat=0.10 compat=1.1 refcount_bits=1; do
    same_output "amend -o $o" "$Q" amend -o $o m.qcow2 -- "$QEMU_IMG" amend -o $o n.qcow2
    qemu_clean "amend -o $o: clean" m.qcow2
    "$Q" info --output=json m.qcow2 >q.json; "$QEMU_IMG" info --output=json n.qcow2 >r.json
    json_same "amend -o $o: info as qemu-img's" q.json r.json filename actual-size
    same_content "amend -o $o: data kept" n.qcow2 m.qcow2
done
same_output "amend creation-only option" "$Q" amend -o cluster_size=4k m.qcow2 -- \
    "$QEMU_IMG" amend -o cluster_size=4k n.qcow2
same_output "amend on raw" "$Q" amend -f raw -o size=1M m.qcow2 -- "$QEMU_IMG" amend -f raw -o size=1M n.qcow2

done_testing
