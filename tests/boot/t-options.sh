#!/usr/bin/env bash
# Command-line errors are one clear sentence and exit status 1, before any
# guest starts: unknown and not-yet-supported options, bad -m/-smp/-M/-accel/-d,
# guest RAM beyond what the host has, a missing kernel, a kernel that is not
# a bzImage, an initrd larger than RAM. And the informational options exit 0.
. "$(dirname "$0")/../lib.sh"

# fails_with NAME PATTERN ARGS...: exit status 1 within 10 s, stderr matches.
fails_with() {
    local name=$1 pat=$2; shift 2
    timeout 10 "$QUOKKA" "$@" >"$T/out" 2>"$T/err" </dev/null
    local rc=$?
    if [ "$rc" -eq 1 ] && grep -qE "^quokka: .*$pat" "$T/err"; then ok "$name"; else
        not_ok "$name (exit $rc)"; sed 's/^/#   /' "$T/err" | head -5; fi
}

# A file that looks like a bzImage to the header check, and one that does not.
python3 - "$T/fake-bzimage" <<'PY'
import sys
b = bytearray(0x1000)
b[0x1FE:0x200] = b"\x55\xAA"
b[0x202:0x206] = b"HdrS"
open(sys.argv[1], "wb").write(b)
PY
head -c 4096 /dev/urandom > "$T/random.bin"
truncate -s 200M "$T/big-initrd"
host_kib=$(awk '/^MemTotal:/ {m=$2} /^SwapTotal:/ {s=$2} END {print m + s}' /proc/meminfo)
too_much=$(( host_kib / 1024 / 1024 * 2 + 2 ))G

fails_with "unknown option" "-frobnicate: invalid option" -frobnicate
fails_with "unknown option with two dashes" "--frobnicate: invalid option" --frobnicate
fails_with "-drive with a missing image" "-drive file=x.img: Could not open 'x.img'" -drive file=x.img
fails_with "-netdev of an unknown type" "-netdev bogus,id=n0: .*netdev backend type" -netdev bogus,id=n0
fails_with "-cdrom not supported yet" "-cdrom: not supported yet" -cdrom install.iso
fails_with "-vga not supported yet" "-vga: not supported yet" -vga std
fails_with "-device of an unknown model" "'virtio-gpu-pci' is not a valid device model name" -device virtio-gpu-pci
fails_with "-vnc not supported yet" "-vnc: not supported yet" -vnc :1
fails_with "bare disk image argument that does not exist" "-hda disk.img: Could not open 'disk.img'" disk.img
fails_with "option without its argument" "-m: requires an argument" -m
fails_with "-m not a size" "-m lots: invalid RAM size" -m lots
fails_with "-m zero" "at least 1 MiB" -m 0
fails_with "-m unknown key" "Invalid parameter 'bogus'" -m 1G,bogus=1
fails_with "-m beyond the host ($too_much)" "cannot allocate .* guest RAM: the host has" -m "$too_much"
fails_with "-smp bad topology" "Invalid CPU topology" -smp 4,sockets=3,cores=1
fails_with "-smp zero" "must be greater than zero" -smp 0
fails_with "-smp too many" "Invalid SMP CPUs" -smp 1000
fails_with "-machine other than pc" "unsupported machine type 'q35'" -M q35
fails_with "-accel unknown" "invalid accelerator" -accel xen
fails_with "-d unknown item" "unknown or unsupported log item 'in_asm'" -d int,in_asm
fails_with "-display other than none" "not supported yet" -display gtk
fails_with "missing kernel" "could not open kernel file '$T/nope'" -kernel "$T/nope"
fails_with "kernel that is not a bzImage" "is not a Linux kernel image" -kernel "$T/random.bin"
fails_with "missing initrd" "could not open initrd" -kernel "$T/fake-bzimage" -initrd "$T/nope"
fails_with "initrd larger than RAM" "does not fit in guest RAM" -m 128 -kernel "$T/fake-bzimage" -initrd "$T/big-initrd"
fails_with "-append without -kernel" "-append only allowed with -kernel" -append console=ttyS0
fails_with "-serial unknown backend" "-serial bogus: 'bogus' is not a valid char driver name" -serial bogus -S
fails_with "-serial chardev that does not exist" "chardev 'nope' not found" -serial chardev:nope -S
fails_with "stdio used twice" "cannot use stdio by multiple character devices" -serial stdio -monitor stdio -S
fails_with "-chardev without id" "missing id=" -chardev null -S
fails_with "-chardev unknown key" "Invalid parameter 'colour'" -chardev null,id=c0,colour=red -S
fails_with "-mon in control mode" "not supported yet" -mon chardev=c0,mode=control
fails_with "-nographic with -daemonize" "cannot be used with -daemonize" -nographic -daemonize

check "-version exits 0" "$QUOKKA" -version
"$QUOKKA" -version | grep -q "^Quokka emulator version [0-9]" && ok "-version text" || not_ok "-version text"
"$QUOKKA" -help | grep -q -- "-serial DEV" && ok "-help lists options" || not_ok "-help lists options"
out=$("$QUOKKA" -d help); rc=$?
check_eq "-d help exits 0" 0 "$rc"
echo "$out" | grep -q "^cpu_reset " && ok "-d help lists cpu_reset" || not_ok "-d help lists cpu_reset"
"$QUOKKA" -machine help | grep -q "^pc " && ok "-machine help lists pc" || not_ok "-machine help lists pc"
done_testing
