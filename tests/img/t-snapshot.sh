#!/usr/bin/env bash
# snapshot -c/-l/-a/-d: qemu-img sees our snapshots and their data, we
# see qemu-img's, and the messages and exit codes match.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

"$Q" create -q -f qcow2 s.qcow2 16M
"$QEMU_IO" -c 'write -P 0x11 0 128k' s.qcow2 >/dev/null
check "snapshot -c one" "$Q" snapshot -c one s.qcow2
"$QEMU_IO" -c 'write -P 0x22 64k 128k' s.qcow2 >/dev/null
check "snapshot -c two" "$Q" snapshot -c two s.qcow2
"$QEMU_IO" -c 'write -P 0x33 0 4k' s.qcow2 >/dev/null
qemu_clean "after creating snapshots: qemu-img check clean" s.qcow2
check_eq "qemu-img lists both" "one two" \
    "$("$QEMU_IMG" snapshot -l s.qcow2 | awk 'NR > 2 { printf "%s%s", sep, $2; sep = " " }')"
same_output "snapshot -l" "$Q" snapshot -l s.qcow2 -- "$QEMU_IMG" snapshot -l s.qcow2
"$Q" info --output=json s.qcow2 >q.json; "$QEMU_IMG" info --output=json s.qcow2 >r.json
check "info JSON with snapshots byte-identical" cmp q.json r.json

# snapshot data as qemu-img sees it
"$QEMU_IMG" convert -l one -O raw s.qcow2 one.raw
"$QEMU_IMG" convert -l two -O raw s.qcow2 two.raw
cp s.qcow2 s2.qcow2
check "snapshot -a one" "$Q" snapshot -a one s.qcow2
"$QEMU_IMG" convert -O raw s.qcow2 now.raw
check "applied snapshot one has its data" cmp one.raw now.raw
qemu_clean "after apply: qemu-img check clean" s.qcow2
check "snapshot -a two (qemu-img's view)" "$QEMU_IMG" snapshot -a two s2.qcow2
check "snapshot -a two" "$Q" snapshot -a two s.qcow2
same_content "same data as qemu-img's apply" s2.qcow2 s.qcow2
check "snapshot -d one" "$Q" snapshot -d one s.qcow2
qemu_clean "after delete: qemu-img check clean" s.qcow2
check_eq "one left" "two" "$("$QEMU_IMG" snapshot -l s.qcow2 | awk 'NR > 2 { print $2 }')"

same_output "delete unknown" "$Q" snapshot -d nope s.qcow2 -- "$QEMU_IMG" snapshot -d nope s.qcow2
check_status "apply unknown fails" 1 "$Q" snapshot -a nope s.qcow2
check "delete the last" "$Q" snapshot -d two s.qcow2
same_output "no snapshots: -l prints nothing" "$Q" snapshot -l s.qcow2 -- "$QEMU_IMG" snapshot -l s.qcow2

# qemu-img's snapshots, read and applied by us
"$QEMU_IMG" create -q -f qcow2 q.qcow2 8M
"$QEMU_IO" -c 'write -P 0x44 0 64k' q.qcow2 >/dev/null
"$QEMU_IMG" snapshot -c base q.qcow2
"$QEMU_IO" -c 'write -P 0x55 0 64k' q.qcow2 >/dev/null
same_output "qemu-img's snapshot listed alike" "$Q" snapshot -l q.qcow2 -- "$QEMU_IMG" snapshot -l q.qcow2
"$QEMU_IMG" convert -l base -O raw q.qcow2 base.raw
check "apply qemu-img's snapshot" "$Q" snapshot -a base q.qcow2
"$QEMU_IMG" convert -O raw q.qcow2 q-now.raw
check "applied data equals qemu-img's snapshot" cmp base.raw q-now.raw
check_status "raw has no snapshots" 1 "$Q" snapshot -c x base.raw
check_eq "raw snapshot message" "$("$QEMU_IMG" snapshot -c x base.raw 2>&1 | tail -1 | sed s/qemu-img/quokka-img/)" \
    "$("$Q" snapshot -c x base.raw 2>&1 | tail -1)"
same_output "snapshot takes no -f" "$Q" snapshot -f raw -l base.raw -- "$QEMU_IMG" snapshot -f raw -l base.raw
same_output "missing option argument" "$Q" info -f -- "$QEMU_IMG" info -f
done_testing
