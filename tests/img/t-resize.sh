#!/usr/bin/env bash
# resize on qcow2, and dd/compare/bench over qcow2, against qemu-img's
# results on the same images.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

"$QEMU_IMG" create -q -f qcow2 a.qcow2 16M
"$QEMU_IO" -c 'write -P 1 0 1M' -c 'write -P 2 15M 1M' a.qcow2 >/dev/null
cp a.qcow2 b.qcow2
same_output "resize grow" "$Q" resize a.qcow2 +16M -- "$QEMU_IMG" resize b.qcow2 +16M
qemu_clean "grown image clean" a.qcow2
same_content "grown image content" b.qcow2 a.qcow2
same_output "resize shrink refused" "$Q" resize a.qcow2 8M -- "$QEMU_IMG" resize b.qcow2 8M
same_output "resize --shrink" "$Q" resize --shrink a.qcow2 8M -- "$QEMU_IMG" resize --shrink b.qcow2 8M
qemu_clean "shrunk image clean" a.qcow2
same_content "shrunk image content" b.qcow2 a.qcow2
same_output "resize -size" "$Q" resize --shrink a.qcow2 -1M -- "$QEMU_IMG" resize --shrink b.qcow2 -1M
check_eq "resize -1M size" "7340032" \
    "$("$QEMU_IMG" info --output=json a.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"

# dd and compare between formats
"$QEMU_IMG" create -q -f qcow2 m.qcow2 16M
"$QEMU_IO" -c 'write -P 7 0 256k' m.qcow2 >/dev/null
cp m.qcow2 n.qcow2
"$Q" dd -O qcow2 if=m.qcow2 of=dd.qcow2 bs=64k count=3 >/dev/null
"$QEMU_IMG" dd -O qcow2 if=m.qcow2 of=dd-ref.qcow2 bs=64k count=3
qemu_clean "dd -O qcow2 clean" dd.qcow2
same_content "dd -O qcow2 as qemu-img's" dd-ref.qcow2 dd.qcow2
same_output "compare qcow2 with itself" "$Q" compare m.qcow2 n.qcow2 -- "$QEMU_IMG" compare m.qcow2 n.qcow2
"$QEMU_IO" -c 'write -P 9 100k 1' n.qcow2 >/dev/null
same_output "compare qcow2 mismatch" "$Q" compare m.qcow2 n.qcow2 -- "$QEMU_IMG" compare m.qcow2 n.qcow2

# bench writes through qcow2
check "bench -w on qcow2" "$Q" bench -w -c 500 -d 16 -S 65536 --pattern=3 m.qcow2
qemu_clean "bench-written image clean" m.qcow2
check_eq "bench data visible to qemu-io" "1" \
    "$("$QEMU_IO" -c 'read -P 3 1M 4k' m.qcow2 | grep -c 'read 4096/4096')"
done_testing
