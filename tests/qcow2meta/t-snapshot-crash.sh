#!/usr/bin/env bash
# Snapshot create/apply/delete killed at random moments. qemu-img check may
# then find leaked clusters, or OFLAG_COPIED missing on clusters whose
# refcount is 1 (a needless copy-on-write, which check -r all fixes), but
# never a refcount below the references nor COPIED on a shared cluster.
# On a real disk: its syncs stretch each operation, so kills land inside.
. "$(dirname "$0")/../lib.sh"
command -v qemu-img >/dev/null || { not_ok "qemu-img is installed"; done_testing; }

I=$T/c.qcow2
# 512-byte clusters: many small tables, so each operation does more writes.
qemu-img create -q -f qcow2 -o cluster_size=512 "$I" 16M
qemu-io -c 'write -P 1 0 2M' -c 'write -P 2 8M 1M' -c 'write -c -P 3 12M 64k' "$I" >/dev/null
"$QUOKKA_IMG" snapshot -c base "$I"
"$QUOKKA_IMG" snapshot -d base "$I"
unsafe=0 hit=0
for i in $(seq 1 18); do
    case $((i % 3)) in
        1) args=(-c x) ;;
        2) args=(-d x) ;;
        0) "$QUOKKA_IMG" snapshot -c y "$I"; args=(-a y) ;;
    esac
    "$QUOKKA_IMG" snapshot "${args[@]}" "$I" 2>/dev/null &
    pid=$!
    sleep "0.0$((RANDOM % 4))$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null && hit=$((hit + 1))
    wait $pid 2>/dev/null
    qemu-img check "$I" >"$T/out" 2>&1
    if grep -v '^ERROR OFLAG_COPIED .* refcount=1$' "$T/out" | grep -q '^ERROR'; then
        unsafe=$((unsafe + 1))
        grep '^ERROR' "$T/out" | grep -v 'refcount=1$' | head -3 | sed 's/^/#   /'
    fi
    "$QUOKKA_IMG" check -q -r all "$I" >/dev/null 2>&1
    "$QUOKKA_IMG" snapshot -d y "$I" 2>/dev/null
done
echo "# $hit of 18 operations were killed before they finished"
check_eq "no unsafe state after killed snapshot operations" 0 "$unsafe"
check "image clean after repairs" qemu-img check -q "$I"
check "data intact" qemu-io -c 'read -P 1 0 2M' -c 'read -P 2 8M 1M' -c 'read -P 3 12M 64k' "$I"
done_testing
