#!/usr/bin/env bash
# Which Linux boot path the board takes, from the -d cpu_reset log, without
# running the guest (-S): the Debian test guest's XZ bzImage is unpacked on
# the host and entered at startup_64; a copy with a corrupt payload falls
# back to the kernel's own decompressor; the vmlinux inside it, given as
# -kernel, is entered directly; a text file and a PIE program are
# refused before anything runs. (Full boots through the fast path are
# tests/boot/t-guest.sh.)
. "$(dirname "$0")/../lib.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }

# kernel_log KERNEL: the board's "kernel: ..." line, or nothing after 60 s.
kernel_log() {
    : >"$T/log"
    "$QUOKKA" -S -d cpu_reset -m 256M -kernel "$1" -display none -monitor none \
        -serial none 2>"$T/log" &
    local pid=$! i
    for i in $(seq 600); do
        grep -q "kernel: " "$T/log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    sed -n 's/^quokka: kernel: //p' "$T/log"
}

log=$(kernel_log "$G/vmlinuz")
case $log in
    "bzImage, xz payload unpacked on the host ("*"), entering vmlinux at startup_64")
        ok "XZ bzImage: payload unpacked on the host";;
    *) not_ok "XZ bzImage: payload unpacked on the host"; echo "#   log: $log";;
esac

cp "$G/vmlinuz" "$T/bad"
size=$(stat -c %s "$T/bad")
head -c 4096 /dev/zero | dd of="$T/bad" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
check_eq "corrupt payload: in-guest decompressor" \
    "bzImage, in-guest decompressor (xz payload is corrupt)" "$(kernel_log "$T/bad")"

# The payload's vmlinux, unpacked here with Python's lzma (setup_sects at
# 0x1f1, payload_offset/length at 0x248/0x24c).
python3 - "$G/vmlinuz" "$T/vmlinux" <<'PY'
import lzma, struct, sys
k = open(sys.argv[1], "rb").read()
setup = ((k[0x1f1] or 4) + 1) * 512
off, n = struct.unpack_from("<II", k, 0x248)
p = k[setup + off:setup + off + n]
open(sys.argv[2], "wb").write(lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(p))
PY
check_eq "vmlinux ELF as -kernel: entered directly" \
    "vmlinux ELF, entering at startup_64" "$(kernel_log "$T/vmlinux")"

refused() {    # NAME FILE MESSAGE
    "$QUOKKA" -kernel "$2" -display none -monitor none -serial none 2>"$T/err"
    check_eq "$1 as -kernel fails (exit status)" 1 "$?"
    grep -q "$3" "$T/err" && ok "$1 as -kernel is refused" ||
        { not_ok "$1 as -kernel is refused"; sed 's/^/#   /' "$T/err"; }
}
echo "not a kernel" >"$T/text"
refused "a text file" "$T/text" "not a Linux kernel image"
refused "a PIE program" /bin/true "not an x86-64 executable ELF"
done_testing
