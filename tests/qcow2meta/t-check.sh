#!/usr/bin/env bash
# qcow2 check/repair against qemu-img 7.2: images corrupted on purpose at
# known places must be diagnosed with the same messages and counts, and
# `check -r` must leave an image qemu-img calls clean, data unchanged.
# Scratch images on tmpfs when there is one: the many syncs of repairs cost
# nothing there, and the test is about metadata, not the disk.
[ -w /dev/shm ] && export TMPDIR=${TMPDIR:-/dev/shm}
. "$(dirname "$0")/../lib.sh"
POKE="python3 $TOP/tests/qcow2meta/qcow2poke.py"
command -v qemu-img >/dev/null || { not_ok "qemu-img is installed"; done_testing; }

# Base images: 4 MiB, data in guest clusters 0-1 and at 1M (host clusters
# 5-7). "snap" adds a compressed cluster at 2M (host cluster 8) and a
# snapshot taken last, so the older clusters have refcount 2.
for kind in plain snap; do
    B=$T/base-$kind.qcow2
    qemu-img create -q -f qcow2 "$B" 4M
    qemu-io -c 'write -P 0x5a 0 128k' -c 'write -P 0xa5 1M 64k' "$B" >/dev/null
    if [ $kind = snap ]; then
        qemu-io -c 'write -c -P 0x77 2M 64k' "$B" >/dev/null
        qemu-img snapshot -c s1 "$B"
    fi
    qemu-img convert -O raw "$B" "$T/base-$kind.raw"
done

# NAME|BASE|MODES|ITEM VALUE...  (MODES: the repairs to compare; ITEMs as
# qcow2poke.py takes them, "truncate" sets the file size)
SPECS='
leak-refcount-high|plain|leaks all|rc[5] 2
leak-unreferenced|plain|leaks all|truncate 458752 rc[6] 1
refcount-zero|plain|leaks all|rc[5] 0
oflag-copied|plain|all|l2[0,0] 0x50000
l1-reserved-bits|plain|all|l1[0] 0x8000000000040001
l2-past-eof|plain|all|l2[0,3] 0x80000000f0000000
l2-unaligned|plain|all|l2[0,3] 0x8000000000050200
prealloc-zero-unaligned|plain|all|l2[0,5] 0x8000000000070201
refblock-outside-image|plain|leaks all|reft[1] 0x100000
l1-table-past-eof|plain|all|hdr.l1_offset 0x900000
l1-table-on-header|plain|all|hdr.l1_offset 0
reftable-past-eof|plain|all|hdr.reftable_offset 0x900000
reftable-on-l1|plain|all|hdr.reftable_offset 0x30000
l1-entry-past-eof|plain|all|l1[0] 0x8000000000900000
reft-entry-past-eof|plain|all|reft[0] 0x900000
reft-entry-zero|plain|leaks all|reft[0] 0
snap-refcount-low|snap|all|rc[5] 1
snap-l1-unaligned|snap|all|sn[0].l1_offset 0x90200
snap-entry-incomplete|snap|all|sn[0].extra 0
snap-extra-too-big|snap|all|sn[0].extra 2000
snap-table-unaligned|snap|all|hdr.snapshots_offset |0x200
snap-table-past-eof|snap|all|hdr.snapshots_offset 0x900000
snap-l1-too-large|snap|leaks|sn[0].l1_size 0x1000000
snap-l1-past-eof|snap|all|sn[0].l1_offset 0x800000
compressed-copied|snap|all|l2[0,32] |0x8000000000000000
compressed-leak|snap|all|rc[8] 3
reft-entry-unaligned|plain||reft[0] 0x20200
too-many-snapshots|snap||hdr.nb_snapshots 70000
'
# (snap-l1-too-large: qemu-img -r all spends many seconds on it; the last
# two: qemu-img 7.2 fails its own repair, checked separately below)
echo "$SPECS" | while IFS='|' read -r name kind modes items; do
    [ -n "$name" ] && echo "$T/base-$kind.qcow2 $T/$name.qcow2 $items"
done | $POKE batch || not_ok "corrupted images made"

# run TOOL OUTPREFIX ARGS...: stdout, stderr (tool name normalised), status.
run() {
    local tool=$1 out=$2; shift 2
    "$tool" "$@" >"$out.stdout" 2>"$out.stderr"
    echo $? >"$out.rc"
    sed -i -e 's/^qemu-img: /IMG: /' -e 's/^quokka-img: /IMG: /' "$out.stderr"
}

same() {   # same NAME A B: compare two runs
    local what=$1 a=$2 b=$3 f
    for f in stdout stderr rc; do
        if cmp -s "$a.$f" "$b.$f"; then ok "$what: same $f"; else
            not_ok "$what: same $f"; diff "$a.$f" "$b.$f" | sed 's/^/#   /' | head -20; fi
    done
}

while IFS='|' read -r name kind modes items; do
    [ -n "$name" ] || continue
    I=$T/$name.qcow2
    if [ "$name" != too-many-snapshots ]; then      # 65536 lines of output
        run qemu-img "$T/q" check "$I"
        run "$QUOKKA_IMG" "$T/o" check "$I"
        same "$name: check" "$T/q" "$T/o"
    else
        run "$QUOKKA_IMG" "$T/o" check "$I"
        check_eq "$name: diagnosed" "IMG: ERROR snapshot table too large|You can force-remove \
all 4464 overhanging snapshots with qemu-img check -r all|IMG: Check failed: File too large" \
            "$(paste -sd'|' "$T/o.stderr")"
    fi
    for mode in $modes; do
        cp "$I" "$T/q.qcow2"; cp "$I" "$T/o.qcow2"
        run qemu-img "$T/q" check -r $mode "$T/q.qcow2"
        run "$QUOKKA_IMG" "$T/o" check -r $mode "$T/o.qcow2"
        same "$name: check -r $mode" "$T/q" "$T/o"
        if [ "$(cat "$T/q.rc")" = 0 ]; then
            check "$name: -r $mode: qemu-img finds ours clean" qemu-img check "$T/o.qcow2"
            check "$name: -r $mode: data unchanged" qemu-img compare -q "$T/base-$kind.raw" "$T/o.qcow2"
        fi
    done
    if [ -z "$modes" ]; then
        # qemu-img gives up on these (its own corrupt flag / overlap check
        # stops it); ours repairs.
        check "$name: -r all repairs" "$QUOKKA_IMG" check -r all "$I"
        check "$name: qemu-img finds ours clean" qemu-img check "$I"
        check "$name: data unchanged" qemu-img compare -q "$T/base-$kind.raw" "$I"
    fi
done <<<"$SPECS"

# Persistent dirty bitmaps (directory, tables, data) are references too.
I=$T/bitmaps.qcow2
qemu-img create -q -f qcow2 "$I" 64M
qemu-img bitmap --add "$I" b0
qemu-io -c 'write -P 1 0 1M' "$I" >/dev/null
qemu-img bitmap --add -g 65536 "$I" b1
run qemu-img "$T/q" check "$I"
run "$QUOKKA_IMG" "$T/o" check "$I"
same "bitmaps: check" "$T/q" "$T/o"
done_testing
