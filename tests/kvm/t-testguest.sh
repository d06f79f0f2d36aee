#!/usr/bin/env bash
# The freestanding test guest (testguest/) under -accel emu, under KVM and
# under QEMU (TCG), compared; and what -accel kvm / kvm:emu say on this host.
# Each run has a virtio-blk disk (the guest reads sector 0 and writes
# sector 1, which the test then reads from the image file) and a
# virtio-net NIC on -netdev user (an ARP request out, the reply back).
#
# On a PVM host (kvm_pvm) KVM still runs this guest, which works at CPL3,
# so the kvm run is compared too; what is asserted there besides is the
# one-line PVM notice (kvm:emu picks emu) and warning (kvm proceeds). On a
# host without usable KVM the test asserts the error naming cause and fix
# instead of a kvm run, and says so.
. "$(dirname "$0")/../lib.sh"

GUEST=$BUILD/testguest/testguest.bin
check "build the test guest" make -s -C "$TOP/testguest" OUT="$BUILD/testguest"

disk() {  # disk NAME: a 1 MiB raw image whose sector 0 the guest reads
    rm -f "$T/$1.img"; truncate -s 1M "$T/$1.img"
    printf 'QUOKKA-DISK-SECTOR-0' | dd of="$T/$1.img" conv=notrunc status=none
}
run() {   # run NAME ARGS...: output in $T/NAME.out, stderr in $T/NAME.err
    local name=$1; shift
    disk "$name"
    timeout 20 "$@" -nographic -m 64 -kernel "$GUEST" \
        -drive "file=$T/$name.img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0 \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
        >"$T/$name.out" 2>"$T/$name.err" </dev/null
    echo $? >"$T/$name.rc"
}
sector1() { dd if="$T/$1.img" bs=512 skip=1 count=1 status=none | tr -d '\0'; }
results() { grep -E '^(ok|FAIL|testguest:)' "$1" | tr -d '\r'; }

run emu "$QUOKKA" -accel emu
run emumax "$QUOKKA" -accel emu -cpu max
check_eq "emu -cpu max: same output as emu" "$(cat "$T/emu.out")" "$(cat "$T/emumax.out")"
timeout 10 "$QUOKKA" -accel emu -cpu host -nographic -m 16 >"$T/emuhost.out" 2>&1 </dev/null
check_eq "emu -cpu host: refused, naming the model" "1/1" \
    "$?/$(grep -c "CPU model 'host' is not available with the emu accelerator" "$T/emuhost.out")"
check_eq "emu: exit status" 0 "$(cat "$T/emu.rc")"
check_eq "emu: every check passed" "testguest: all passed, powering off" \
    "$(grep '^testguest: all' "$T/emu.out")"
check_eq "emu: no failed check" "" "$(grep FAIL "$T/emu.out")"
check_eq "emu: eleven checks" 11 "$(grep -c '^ok ' "$T/emu.out")"
check_eq "emu: the guest's write reached the image" "written by the test guest" "$(sector1 emu)"

pvm=no; [ -d /sys/module/kvm_pvm ] && pvm=yes
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    run kvm "$QUOKKA" -accel kvm -d int
    check_eq "kvm: exit status" 0 "$(cat "$T/kvm.rc")"
    check_eq "kvm: same output as emu" "$(cat "$T/emu.out")" "$(cat "$T/kvm.out")"
    check_eq "kvm: the guest's write reached the image" "written by the test guest" "$(sector1 kvm)"
    # Split irqchip (this host has it): the doorbell is an ioeventfd (no
    # MMIO exit on it), the MSI-X completions irqfds; KVM_SIGNAL_MSI only
    # for the two level INTx messages of the I/O APIC (their EOIs came
    # back, or the second would not arrive); only the PIT's ticks injected
    # with KVM_INTERRUPT (the APIC timer's never leave the kernel).
    stat() { grep '^quokka: kvm: irqchip [a-z]*; exits' "$T/$1.err" | grep -o "$2 [0-9]*" | cut -d' ' -f2; }
    check_eq "kvm: split irqchip in use, said under -d int" 1 \
        "$(grep -c 'kvm: irqchip split: local APICs in the kernel' "$T/kvm.err")"
    check_eq "kvm split: doorbells (blk 1, net 2) by ioeventfd, none exits" "3/0" \
        "$(stat kvm ioeventfds)/$(stat kvm doorbells)"
    check_eq "kvm split: MSI-X by irqfd, KVM_SIGNAL_MSI for the I/O APIC's 2 only" "1/2" \
        "$(stat kvm irqfds)/$(stat kvm KVM_SIGNAL_MSI)"
    check "kvm split: KVM_INTERRUPT only for the 8259's ticks (10-12)" \
        test "$(stat kvm KVM_INTERRUPT)" -ge 10 -a "$(stat kvm KVM_INTERRUPT)" -le 12
    run off "$QUOKKA" -accel kvm,kernel-irqchip=off -d int
    check_eq "kvm kernel-irqchip=off: same output as emu" "$(cat "$T/emu.out")" "$(cat "$T/off.out")"
    check_eq "kvm kernel-irqchip=off: the board's APICs, no irqfd, the MSIs injected" "1/0/1" \
        "$(grep -c 'kvm: irqchip off: the board' "$T/off.err")/$(stat off irqfds)/$(test "$(stat off KVM_INTERRUPT)" -ge 20 && echo 1)"
    run moff "$QUOKKA" -machine pc,kernel_irqchip=off -accel kvm -d int
    check_eq "-machine kernel_irqchip=off: the board's APICs, exits 0" "1/0" \
        "$(grep -c 'kvm: irqchip off: the board' "$T/moff.err")/$(cat "$T/moff.rc")"
    timeout 10 "$QUOKKA" -accel kvm,kernel-irqchip=on -nographic -m 16 >"$T/on.out" 2>&1 </dev/null
    check_eq "kvm kernel-irqchip=on: refused, saying why" "1/1" \
        "$?/$(grep -c 'kernel-irqchip=on: kvm offers split or off' "$T/on.out")"
    run flags "$QUOKKA" -accel kvm -cpu qemu64,-sse4.2,popcnt=off
    check_eq "kvm -cpu qemu64,-sse4.2,popcnt=off: same output" "$(cat "$T/emu.out")" "$(cat "$T/flags.out")"
    # bench/blk-kvm.sh's guest side, small: 1 MiB read and written, 4 in flight.
    disk bench
    timeout 20 "$QUOKKA" -accel kvm -nographic -m 256 -kernel "$GUEST" \
        -append "blkbench=1 blkreq=256 blkdepth=4" \
        -drive "file=$T/bench.img,if=virtio,format=raw,cache=none" >"$T/bench.out" 2>&1 </dev/null
    check_eq "kvm blkbench: read and write passes complete" "2/0" \
        "$(grep -c '^blkbench: \(read\|write\) done' "$T/bench.out")/$(grep -c failed "$T/bench.out")"
    timeout 10 "$QUOKKA" -accel kvm -cpu qemu64,+x2apic -nographic -m 16 >"$T/x2.out" 2>&1 </dev/null
    check_eq "kvm -cpu qemu64,+x2apic: refused, saying why" "1/1" \
        "$?/$(grep -c 'cannot enable x2apic: the local APIC is xAPIC only' "$T/x2.out")"
    run ekvm "$QUOKKA" -enable-kvm
    check_eq "-enable-kvm: same output as emu" "$(cat "$T/emu.out")" "$(cat "$T/ekvm.out")"
    run smp "$QUOKKA" -accel kvm -smp 2
    check_eq "kvm -smp 2 (an AP waiting for SIPI): same output, exits" \
        "$(cat "$T/emu.out")/0" "$(cat "$T/smp.out")/$(cat "$T/smp.rc")"
    run host "$QUOKKA" -accel kvm -cpu host
    check_eq "kvm -cpu host: same output" "$(cat "$T/emu.out")" "$(cat "$T/host.out")"
    timeout 10 "$QUOKKA" -accel kvm -cpu Pentium-Z -nographic -m 16 >"$T/badcpu.out" 2>&1 </dev/null
    check_eq "kvm -cpu with an unknown model: refused, naming the known ones" "1/1" \
        "$?/$(grep -c 'unknown CPU model (kvm knows host, max, qemu64' "$T/badcpu.out")"
    # The monitor reads a vCPU that spins at CPL3 without exiting.
    (sleep 1; echo "info registers"; sleep 0.5; echo quit) | timeout 10 "$QUOKKA" -accel kvm \
        -display none -serial none -monitor stdio -m 64 -kernel "$GUEST" -append hold \
        >"$T/mon.out" 2>&1
    rc=$?
    check_eq "kvm: info registers of a spinning vCPU, then quit" "1/0" \
        "$(grep -c '^RIP=.* CPL=3 ' "$T/mon.out")/$rc"
    run fb "$QUOKKA" -accel kvm:emu
    check_eq "kvm:emu: same output as emu" "$(cat "$T/emu.out")" "$(cat "$T/fb.out")"
    if [ $pvm = yes ]; then
        echo "# PVM host: KVM cannot run guest CPL0 code natively; asserting the notices"
        check_eq "kvm:emu on PVM: one line says emu is used" 1 \
            "$(grep -c 'KVM here is kvm_pvm: guest kernel code (CPL0) cannot run natively; using emu' "$T/fb.err")"
        check_eq "kvm on PVM: one warning, then proceeds" 1 \
            "$(grep -c 'warning: KVM here is kvm_pvm.*proceeding with kvm' "$T/kvm.err")"
    else
        check_eq "kvm:emu on a native KVM host: nothing said" "" "$(cat "$T/fb.err")"
    fi
else
    echo "# no usable /dev/kvm here: asserting the error instead of a kvm run"
    timeout 10 "$QUOKKA" -accel kvm -nographic -m 16 >"$T/nokvm.out" 2>&1 </dev/null
    check_eq "kvm without /dev/kvm fails" 1 "$?"
    check_eq "the error names KVM" 1 "$(grep -c 'KVM is not available' "$T/nokvm.out")"
fi

# The error paths, made on purpose: no device node, no permission.
if unshare -m true 2>/dev/null; then
    unshare -m sh -c 'mount -t tmpfs tmpfs /dev && exec "$@"' sh \
        timeout 10 "$QUOKKA" -accel kvm -nographic -m 16 >"$T/nodev.out" 2>&1 </dev/null
    check_eq "no /dev/kvm: -accel kvm fails" 1 "$?"
    check_eq "no /dev/kvm: cause and fix named" 1 \
        "$(grep -c '/dev/kvm is missing.*\(modprobe kvm_\|enable virtualization\)' "$T/nodev.out")"
    disk nodev2
    unshare -m sh -c 'mount -t tmpfs tmpfs /dev && exec "$@"' sh \
        timeout 20 "$QUOKKA" -accel kvm:emu -nographic -m 64 -kernel "$GUEST" \
        -drive "file=$T/nodev2.img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0 \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0 >"$T/nodev2.out" 2>"$T/nodev2.err" </dev/null
    check_eq "no /dev/kvm: kvm:emu runs the guest on emu" "$(cat "$T/emu.out")" "$(cat "$T/nodev2.out")"
    check_eq "no /dev/kvm: kvm:emu says why, in one line" 1 "$(grep -c 'using emu' "$T/nodev2.err")"
fi
if [ "$(id -u)" = 0 ] && [ -e /dev/kvm ] && command -v setpriv >/dev/null; then
    pub=$(mktemp -d); chmod 755 "$pub"; cp "$QUOKKA" "$pub/"    # wherever the tree lives
    (cd / && setpriv --reuid=65534 --regid=65534 --clear-groups \
        timeout 10 "$pub/quokka" -accel kvm -nographic -m 16) >"$T/noperm.out" 2>&1 </dev/null
    check_eq "no permission: -accel kvm fails" 1 "$?"
    check_eq "no permission: says join the kvm group" 1 "$(grep -c 'join the kvm group' "$T/noperm.out")"
    rm -rf "$pub"
fi

# QEMU is the reference: the results (not the board-specific '#' details) match.
if command -v qemu-system-x86_64 >/dev/null; then
    disk qemu
    timeout 30 qemu-system-x86_64 -accel tcg -display none -serial stdio -no-reboot -m 64 \
        -kernel "$GUEST" -drive "file=$T/qemu.img,if=none,id=d0,format=raw" \
        -device virtio-blk-pci,drive=d0,disable-legacy=on -netdev user,id=n0 \
        -device virtio-net-pci,netdev=n0,disable-legacy=on,romfile= \
        >"$T/qemu.out" 2>"$T/qemu.err" </dev/null
    check_eq "qemu tcg: exit status" 0 "$?"
    check_eq "qemu tcg: the guest's write reached the image" "written by the test guest" "$(sector1 qemu)"
    check_eq "qemu tcg: same results as emu" "$(results "$T/emu.out")" "$(results "$T/qemu.out")"
else
    not_ok "qemu-system-x86_64 missing: scripts/setup.sh installs it"
fi
done_testing
