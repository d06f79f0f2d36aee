#!/usr/bin/env bash
# amend and measure against qemu-img 7.2: what qemu-img refuses we refuse
# with its words; what we change leaves an image qemu-img calls clean, with
# the data unchanged; measure prints qemu-img's numbers.
# Scratch images on tmpfs when there is one: the many syncs of repairs cost
# nothing there, and the test is about metadata, not the disk.
[ -w /dev/shm ] && export TMPDIR=${TMPDIR:-/dev/shm}
. "$(dirname "$0")/../lib.sh"
command -v qemu-img >/dev/null || { not_ok "qemu-img is installed"; done_testing; }

norm() { sed -e 's/^qemu-img: /IMG: /' -e 's/^quokka-img: /IMG: /'; }
both() {   # both NAME ARGS...: same output and status (@ is the image, a copy each)
    local name=$1; shift
    local qa=("${@//@/$T/q.qcow2}") oa=("${@//@/$T/o.qcow2}") q o
    q=$(qemu-img "${qa[@]}" 2>&1 | norm; echo "rc=${PIPESTATUS[0]}")
    o=$("$QUOKKA_IMG" "${oa[@]}" 2>&1 | norm; echo "rc=${PIPESTATUS[0]}")
    check_eq "$name" "${q//$T\/q.qcow2/IMGFILE}" "${o//$T\/o.qcow2/IMGFILE}"
}
field() { qemu-img info "$1" | sed -n "s/^ *$2: //p"; }

# image with data, zero clusters (plain and preallocated), a compressed
# cluster and a snapshot sharing some of it
mkimg() {
    qemu-img create -q -f qcow2 -o compat=${2:-1.1} "$1" 8M
    qemu-io -c 'write -P 1 0 192k' -c 'write -P 2 4M 64k' -c 'write -c -P 3 5M 64k' "$1" >/dev/null
    qemu-img snapshot -c s "$1"
    if [ "${2:-1.1}" = 1.1 ]; then
        qemu-io -c 'write -z 0 64k' -c 'write -z 2M 128k' -c 'write -z -u 4M 64k' "$1" >/dev/null
    fi
}
I=$T/i.qcow2
mkimg "$I"
qemu-img convert -O raw "$I" "$T/i.raw"
cp "$I" "$T/q.qcow2"; cp "$I" "$T/o.qcow2"
for o in refcount_bits=3 compat=2 compat=0.10,refcount_bits=8 backing_file=x backing_fmt=raw \
         cluster_size=4k lazy_refcounts=maybe; do
    both "amend -o $o refused" amend -o $o @
done
for bits in 1 2 4 8 32 64 16; do
    cp "$I" "$T/o.qcow2"
    "$QUOKKA_IMG" amend -o refcount_bits=$bits "$T/o.qcow2" 2>"$T/err"
    if [ $bits -lt 2 ]; then
        cp "$I" "$T/q.qcow2"; cp "$I" "$T/o.qcow2"
        both "refcount_bits=1 refused (shared clusters)" amend -o refcount_bits=1 @
        continue
    fi
    check_eq "refcount_bits=$bits" "$bits" "$(field "$T/o.qcow2" 'refcount bits')"
    check "refcount_bits=$bits: qemu-img check clean" qemu-img check -q "$T/o.qcow2"
    check "refcount_bits=$bits: data" qemu-img compare -q "$T/i.raw" "$T/o.qcow2"
done
cp "$I" "$T/o.qcow2"
check "compat=0.10" "$QUOKKA_IMG" amend -o compat=0.10 "$T/o.qcow2"
check_eq "compat=0.10: version" "0.10" "$(field "$T/o.qcow2" compat)"
check "compat=0.10: qemu-img check clean" qemu-img check -q "$T/o.qcow2"
check "compat=0.10: data" qemu-img compare -q "$T/i.raw" "$T/o.qcow2"
check "compat=0.10: snapshot still applies" qemu-img snapshot -a s "$T/o.qcow2"
check "compat=0.10: clean after apply" qemu-img check -q "$T/o.qcow2"
cp "$T/o.qcow2" "$T/q.qcow2"
both "lazy_refcounts on v2 refused" amend -o lazy_refcounts=on @
mkimg "$T/v2.qcow2" 0.10
qemu-img convert -O raw "$T/v2.qcow2" "$T/v2.raw"
check "compat=1.1,lazy_refcounts=on" "$QUOKKA_IMG" amend -o compat=1.1,lazy_refcounts=on "$T/v2.qcow2"
check_eq "upgraded: version" "1.1" "$(field "$T/v2.qcow2" compat)"
check_eq "upgraded: lazy" "true" "$(field "$T/v2.qcow2" 'lazy refcounts')"
check "upgraded: qemu-img check clean" qemu-img check -q "$T/v2.qcow2"
check "upgraded: data" qemu-img compare -q "$T/v2.raw" "$T/v2.qcow2"
check "upgraded: snapshot listed" sh -c "qemu-img snapshot -l '$T/v2.qcow2' | grep -q ' s '"
check "lazy_refcounts=off" "$QUOKKA_IMG" amend -o lazy_refcounts=off "$T/v2.qcow2"
check_eq "lazy off" "false" "$(field "$T/v2.qcow2" 'lazy refcounts')"
check "size=16M" "$QUOKKA_IMG" amend -o size=16M "$T/v2.qcow2"
check_eq "size" "16 MiB (16777216 bytes)" "$(field "$T/v2.qcow2" 'virtual size')"

# measure: the same numbers for sizes, options and source images
for o in "" cluster_size=4k refcount_bits=1 compat=0.10 preallocation=full \
         preallocation=metadata extended_l2=on cluster_size=2M,refcount_bits=64 \
         cluster_size=512,refcount_bits=8 cluster_size=1000 refcount_bits=3 \
         compat=0.10,refcount_bits=8 preallocation=foo extended_l2=on,cluster_size=4k; do
    for size in 0 1M 10G 1P; do
        both "measure -o '$o' --size $size" measure -O qcow2 ${o:+-o $o} --size $size
    done
done
cp "$I" "$T/q.qcow2"; cp "$I" "$T/o.qcow2"
for o in "" cluster_size=4k compat=0.10 backing_file=x cluster_size=2M; do
    both "measure -o '$o' qcow2 source" measure -O qcow2 ${o:+-o $o} @
    both "measure -o '$o' qcow2 source (json)" measure --output=json -O qcow2 ${o:+-o $o} @
done
cp "$T/i.raw" "$T/q.qcow2"; cp "$T/i.raw" "$T/o.qcow2"
both "measure raw source" measure -O qcow2 -f raw @
# a source with persistent bitmaps: "bitmaps size" counts them
qemu-img create -q -f qcow2 "$T/q.qcow2" 64M
qemu-img bitmap --add "$T/q.qcow2" b0
qemu-img bitmap --add -g 4096 "$T/q.qcow2" b1
qemu-io -c 'write -P 1 0 1M' "$T/q.qcow2" >/dev/null
cp "$T/q.qcow2" "$T/o.qcow2"
for o in "" cluster_size=4k cluster_size=2M compat=0.10; do
    both "measure -o '$o' source with bitmaps" measure -O qcow2 ${o:+-o $o} @
done
done_testing
