#!/usr/bin/env bash
# Internal snapshots against qemu-img 7.2: snapshots either tool makes are
# listed, applied and deleted identically by the other; check stays clean
# and the data is what it was when the snapshot was taken.
# Scratch images on tmpfs when there is one: the many syncs of repairs cost
# nothing there, and the test is about metadata, not the disk.
[ -w /dev/shm ] && export TMPDIR=${TMPDIR:-/dev/shm}
. "$(dirname "$0")/../lib.sh"
command -v qemu-img >/dev/null || { not_ok "qemu-img is installed"; done_testing; }

norm() { sed -e 's/^qemu-img: /IMG: /' -e 's/^quokka-img: /IMG: /'; }
both() {   # both NAME ARGS...: same output and status from both tools on copies
    local name=$1; shift
    local qa=("${@//@/$T/q.qcow2}") oa=("${@//@/$T/o.qcow2}")
    local q o qs os
    q=$(qemu-img "${qa[@]}" 2>&1 | norm; echo "rc=${PIPESTATUS[0]}")
    o=$("$QUOKKA_IMG" "${oa[@]}" 2>&1 | norm; echo "rc=${PIPESTATUS[0]}")
    q=${q//$T\/q.qcow2/IMGFILE}; o=${o//$T\/o.qcow2/IMGFILE}
    check_eq "$name" "$q" "$o"
}
clean() { check "$1: qemu-img check clean" qemu-img check -q "$2"; }
data()  { check "$1: data as when taken" qemu-img compare -q "$2" "$3"; }

for compat in 1.1 0.10; do
    I=$T/img.qcow2
    qemu-img create -q -f qcow2 -o compat=$compat "$I" 8M
    qemu-io -c 'write -P 1 0 192k' -c 'write -P 2 4M 64k' "$I" >/dev/null
    qemu-img convert -O raw "$I" "$T/s1.raw"
    qemu-img snapshot -c qemu1 "$I"                      # made by qemu-img
    qemu-io -c 'write -P 3 64k 64k' -c 'write -P 4 6M 64k' "$I" >/dev/null
    qemu-img convert -O raw "$I" "$T/s2.raw"
    check "v$compat: create ours" "$QUOKKA_IMG" snapshot -c ours2 "$I"
    clean "v$compat: after create" "$I"
    qemu-io -c 'write -P 5 0 64k' -c 'write -P 6 7M 64k' "$I" >/dev/null
    qemu-img convert -O raw "$I" "$T/s3.raw"
    check "v$compat: create another" "$QUOKKA_IMG" snapshot -c same "$I"
    qemu-img snapshot -c same "$I"                       # duplicate names are allowed
    cp "$I" "$T/q.qcow2"; cp "$I" "$T/o.qcow2"
    both "v$compat: list" snapshot -l @
    both "v$compat: info" info @
    # apply qemu-img's snapshot with ours, ours with qemu-img
    both "v$compat: apply qemu's by name" snapshot -a qemu1 @
    clean "v$compat: apply qemu's" "$T/o.qcow2"; data "v$compat: apply qemu's" "$T/s1.raw" "$T/o.qcow2"
    check "v$compat: qemu-img applies ours" qemu-img snapshot -a ours2 "$T/o.qcow2"
    data "v$compat: qemu-img applies ours" "$T/s2.raw" "$T/o.qcow2"
    both "v$compat: apply by id" snapshot -a 2 @
    clean "v$compat: apply by id" "$T/o.qcow2"; data "v$compat: apply by id" "$T/s2.raw" "$T/o.qcow2"
    both "v$compat: apply missing" snapshot -a nosuch @
    # delete: by name only, first match; ids are not names
    both "v$compat: delete by id fails" snapshot -d 1 @
    both "v$compat: delete duplicate name" snapshot -d same @
    both "v$compat: delete qemu's" snapshot -d qemu1 @
    both "v$compat: list after deletes" snapshot -l @
    clean "v$compat: after deletes" "$T/o.qcow2"
    both "v$compat: check after deletes" check @
    both "v$compat: apply the rest" snapshot -a same @
    data "v$compat: apply the rest" "$T/s3.raw" "$T/o.qcow2"
    both "v$compat: delete all" snapshot -d ours2 @
    both "v$compat: delete last" snapshot -d same @
    both "v$compat: check with none left" check @
    data "v$compat: data after all deletes" "$T/s3.raw" "$T/o.qcow2"
    rm -f "$I"
done

# A broken snapshot table fails the open with the problem named.
POKE="python3 $TOP/tests/qcow2meta/qcow2poke.py"
qemu-img create -q -f qcow2 "$T/b.qcow2" 1M
qemu-img snapshot -c s "$T/b.qcow2"
cp "$T/b.qcow2" "$T/q.qcow2"; cp "$T/b.qcow2" "$T/o.qcow2"
$POKE "$T/q.qcow2" set 'sn[0].extra' 5000 >/dev/null; $POKE "$T/o.qcow2" set 'sn[0].extra' 5000 >/dev/null
both "open: too much extra data" snapshot -l @
cp "$T/b.qcow2" "$T/q.qcow2"; cp "$T/b.qcow2" "$T/o.qcow2"
$POKE "$T/q.qcow2" set hdr.snapshots_offset '|0x100' >/dev/null
$POKE "$T/o.qcow2" set hdr.snapshots_offset '|0x100' >/dev/null
both "open: table offset unaligned" snapshot -l @
$POKE "$T/b.qcow2" set hdr.nb_snapshots 9 >/dev/null
"$QUOKKA_IMG" snapshot -l "$T/b.qcow2" >"$T/out" 2>&1
check_eq "open: table past the end of the file" \
    "quokka-img: Could not open '$T/b.qcow2': Snapshot table exceeds the end of the file (offset 0x50000, 9 entries)" \
    "$(cat "$T/out")"

# A snapshot brings back its own virtual size (v3).
I=$T/size.qcow2
qemu-img create -q -f qcow2 "$I" 1M
qemu-io -c 'write -P 7 0 1M' "$I" >/dev/null
"$QUOKKA_IMG" snapshot -c small "$I"
qemu-img resize -q "$I" 64M
qemu-io -c 'write -P 8 60M 1M' "$I" >/dev/null
"$QUOKKA_IMG" snapshot -c big "$I"
check "apply smaller snapshot" "$QUOKKA_IMG" snapshot -a small "$I"
check_eq "size restored" 1048576 "$(qemu-img info --output=json "$I" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')"
check "apply larger snapshot" "$QUOKKA_IMG" snapshot -a big "$I"
check "larger snapshot's data" qemu-io -c 'read -P 8 60M 1M' "$I"
clean "after size changes" "$I"
done_testing
