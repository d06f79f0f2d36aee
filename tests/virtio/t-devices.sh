#!/usr/bin/env bash
# -drive/-device on the command line without a guest: help texts, option
# errors worded as QEMU words them, PCI addresses, `info pci`, and image
# locking between two VMs.
. "$(dirname "$0")/../lib.sh"

# fails_with NAME PATTERN ARGS...: exit status 1, stderr matches.
fails_with() {
    local name=$1 pat=$2; shift 2
    timeout 10 "$QUOKKA" -S -display none -serial none -monitor none "$@" \
        >"$T/out" 2>"$T/err" </dev/null
    local rc=$?
    if [ "$rc" -eq 1 ] && grep -qE "^quokka: .*$pat" "$T/err"; then ok "$name"; else
        not_ok "$name (exit $rc)"; sed 's/^/#   /' "$T/err" | head -5; fi
}
truncate -s 16M "$T/a.img"
"$QUOKKA_IMG" create -q -f qcow2 "$T/b.qcow2" 16M 2>/dev/null || qemu-img create -q -f qcow2 "$T/b.qcow2" 16M

"$QUOKKA" -device help >"$T/out" 2>&1
grep -q '^name "virtio-blk-pci", bus PCI' "$T/out" && grep -q '^name "virtconsole"' "$T/out" &&
    ok "-device help lists the models" || not_ok "-device help lists the models"
"$QUOKKA" -device virtio-blk-pci,help >"$T/out" 2>&1
grep -q "drive=<str>" "$T/out" && ok "-device virtio-blk-pci,help names drive=" ||
    not_ok "-device virtio-blk-pci,help names drive="

fails_with "unknown model" "'virtio-gpu-pci' is not a valid device model name" -device virtio-gpu-pci
fails_with "unknown property" "Invalid parameter 'bogus'" -device virtio-rng-pci,bogus=1
fails_with "virtio-blk without drive=" "drive property not set" -device virtio-blk-pci
fails_with "drive= naming no drive" "can't find value 'nope'" -device virtio-blk-pci,drive=nope
fails_with "one drive, two devices" "already in use" \
    -drive file="$T/a.img",format=raw,if=none,id=d0 \
    -device virtio-blk-pci,drive=d0 -device virtio-blk-pci,drive=d0
fails_with "two devices in one slot" "slot 5 function 0 not available" \
    -device virtio-rng-pci,addr=5 -device virtio-rng-pci,addr=5
fails_with "bad PCI address" "Property 'addr' doesn't take value 'zz'" -device virtio-rng-pci,addr=zz
fails_with "bus other than pci.0" "Bus 'pcie.1' not found" -device virtio-rng-pci,bus=pcie.1
fails_with "if=ide" "if=ide is not supported" -drive file="$T/a.img",if=ide
fails_with "bad cache mode" "invalid cache option 'sometimes'" -drive file="$T/a.img",cache=sometimes
fails_with "unknown -drive key" "Invalid parameter 'colour'" -drive file="$T/a.img",colour=red
fails_with "detect-zeroes=unmap without discard" "without setting discard operation to unmap" \
    -drive file="$T/a.img",detect-zeroes=unmap
fails_with "wrong format" "" -drive file="$T/a.img",format=qcow2
fails_with "virtconsole without virtio-serial" "No 'virtio-serial-bus' bus found" \
    -chardev null,id=c -device virtconsole,chardev=c
fails_with "virtserialport on port 0" "reserved for virtconsole" \
    -chardev null,id=c -device virtio-serial -device virtserialport,chardev=c,nr=0

# info pci: placement, ids, interrupts.
printf 'info pci\nquit\n' | timeout 10 "$QUOKKA" -S -display none -serial none -monitor stdio \
    -drive file="$T/a.img",format=raw,if=virtio -device virtio-rng-pci,id=rng0,addr=0x7 \
    -blockdev driver=file,filename="$T/b.qcow2",node-name=f0 \
    -blockdev driver=qcow2,file=f0,node-name=q0 -device virtio-blk-pci,drive=q0,id=disk1 \
    >"$T/out" 2>&1
check_eq "info pci: four functions" 4 "$(grep -c "Bus  0, device" "$T/out")"
grep -A2 "device   7, function 0" "$T/out" | grep -q "PCI device 1af4:1044" &&
    ok "info pci: rng at addr=0x7" || { not_ok "info pci: rng at addr=0x7"; sed 's/^/#   /' "$T/out"; }
grep -q 'id "disk1"' "$T/out" && ok "info pci: -device id" || not_ok "info pci: -device id"
grep -q "BAR4: 64 bit prefetchable memory at 0xe" "$T/out" && ok "info pci: BARs in the PCI hole" ||
    not_ok "info pci: BARs in the PCI hole"

# Locking: a second VM cannot open an image another has read-write, unless
# both share it (share-rw) or locking is off.
"$QUOKKA" -S -display none -serial none -monitor none \
    -drive file="$T/a.img",format=raw,if=virtio </dev/null >/dev/null 2>&1 &
vm=$!
for _ in $(seq 50); do ls -l /proc/$vm/fd 2>/dev/null | grep -q a.img && break; sleep 0.1; done
sleep 0.3
fails_with "second writer refused" 'Failed to get "write" lock' -drive file="$T/a.img",format=raw,if=virtio
fails_with "read-only second opener refused too" 'Failed to get shared "write" lock' \
    -drive file="$T/a.img",format=raw,if=virtio,readonly=on
timeout 2 "$QUOKKA" -S -display none -serial none -monitor none \
    -drive file="$T/a.img",format=raw,if=virtio,file.locking=off </dev/null >/dev/null 2>&1
check_eq "file.locking=off opens anyway (runs until killed)" 124 "$?"
kill "$vm"
wait "$vm" 2>/dev/null
done_testing
