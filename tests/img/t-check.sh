#!/usr/bin/env bash
# check: the same report, JSON and exit codes as qemu-img (0 clean,
# 2 corruptions, 3 leaks, 63 unsupported) on clean, leaking and corrupted
# images, and repairs (-r leaks, -r all) that qemu-img then finds clean.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

# setref IMG CLUSTER VALUE: write a 16-bit refcount straight into the first
# refcount block (images here are small enough for one block).
setref() {
    python3 - "$@" <<'PY'
import struct, sys
path, cluster, value = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    hdr = f.read(104)
    csize = 1 << struct.unpack(">I", hdr[20:24])[0]
    rt = struct.unpack(">Q", hdr[48:56])[0]
    f.seek(rt)
    rb = struct.unpack(">Q", f.read(8))[0]
    f.seek(rb + 2 * cluster)
    f.write(struct.pack(">H", value))
    f.seek(0, 2)
    if f.tell() < (cluster + 1) * csize:
        f.truncate((cluster + 1) * csize)
PY
}

"$QEMU_IMG" create -q -f qcow2 clean.qcow2 16M
"$QEMU_IO" -c 'write -P 1 0 128k' -c 'write -P 2 5M 64k' clean.qcow2 >/dev/null
same_output "clean image report" "$Q" check clean.qcow2 -- "$QEMU_IMG" check clean.qcow2
"$Q" check --output=json clean.qcow2 >q.json; "$QEMU_IMG" check --output=json clean.qcow2 >r.json
check "clean image JSON byte-identical" cmp q.json r.json
check_status "clean image exits 0" 0 "$Q" check clean.qcow2

# leaks: two clusters past the end counted but never referenced
cp clean.qcow2 leak.qcow2
end=$(( $(stat -c %s leak.qcow2) / 65536 ))
setref leak.qcow2 $end 1; setref leak.qcow2 $((end + 1)) 1
check_status "qemu-img sees the leaks (3)" 3 "$QEMU_IMG" check leak.qcow2
check_status "leaks exit 3" 3 "$Q" check leak.qcow2
same_output "leak report" "$Q" check leak.qcow2 -- "$QEMU_IMG" check leak.qcow2
"$Q" check --output=json leak.qcow2 >q.json 2>/dev/null; "$QEMU_IMG" check --output=json leak.qcow2 >r.json 2>/dev/null
json_same "leak JSON" q.json r.json
cp leak.qcow2 leak2.qcow2
same_output "-r leaks repairs" "$Q" check -r leaks leak.qcow2 -- "$QEMU_IMG" check -r leaks leak2.qcow2
qemu_clean "repaired leaks: qemu-img finds it clean" leak.qcow2
same_content "repair kept the data" clean.qcow2 leak.qcow2

# corruption: a data cluster whose refcount is 0
cp clean.qcow2 bad.qcow2
host=$("$QEMU_IMG" map --output=json bad.qcow2 | python3 -c 'import json,sys; print([e["offset"] for e in json.load(sys.stdin) if e["data"]][0])')
setref bad.qcow2 $((host / 65536)) 0
check_status "qemu-img sees the corruption (2)" 2 "$QEMU_IMG" check bad.qcow2
check_status "corruption exits 2" 2 "$Q" check bad.qcow2
same_output "corruption report" "$Q" check bad.qcow2 -- "$QEMU_IMG" check bad.qcow2
"$Q" check --output=json bad.qcow2 >q.json 2>/dev/null; "$QEMU_IMG" check --output=json bad.qcow2 >r.json 2>/dev/null
json_same "corruption JSON" q.json r.json
cp bad.qcow2 bad-q.qcow2; cp bad.qcow2 bad-r.qcow2
same_output "-r leaks on a corrupted image (refcount rebuild needed)" \
    "$Q" check -r leaks bad-q.qcow2 -- "$QEMU_IMG" check -r leaks bad-r.qcow2
check_status "-r all repairs it (0)" 0 "$Q" check -r all bad.qcow2
qemu_clean "repaired corruption: qemu-img finds it clean" bad.qcow2
same_content "repair kept the data" clean.qcow2 bad.qcow2

check_status "raw: unsupported (63)" 63 "$Q" check -f raw clean.qcow2
same_output "bad -r value" "$Q" check -r some clean.qcow2 -- "$QEMU_IMG" check -r some clean.qcow2
same_output "bad --output" "$Q" check --output=xml clean.qcow2 -- "$QEMU_IMG" check --output=xml clean.qcow2
done_testing
