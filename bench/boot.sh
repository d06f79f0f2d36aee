#!/usr/bin/env bash
# Boot time of the test guest (scripts/guest.sh), Quokka against QEMU TCG:
# process start -> guest /init running -> power-off and exit, with the same
# kernel, initrd, RAM and CPUs. Prints the median of BOOT_RUNS runs for
# each, the ratio qemu/quokka (>1: we are faster) and each one's peak RSS.
#
#   bench/boot.sh          (BUILD=build; BOOT_RUNS=3; BOOT_MEM=256M; BOOT_SMP=1)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
Q=${QUOKKA:-$BUILD/quokka}
QEMU=${QEMU:-qemu-system-x86_64}
RUNS=${BOOT_RUNS:-3}
MEM=${BOOT_MEM:-256M}
SMP=${BOOT_SMP:-1}
[ -x "$Q" ] || { echo "build quokka first ($Q)"; exit 1; }
command -v "$QEMU" >/dev/null || { echo "no $QEMU (apt-get install qemu-system-x86)"; exit 1; }
G=$("$TOP/scripts/guest.sh") || exit 1
APPEND="console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" 'echo QUOKKA-INIT-REACHED')"

# run NAME CMD...: one boot; prints "init_seconds total_seconds peak_rss_kib".
run() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
t_init, buf = None, b""
for chunk in iter(lambda: p.stdout.read1(4096), b""):
    buf += chunk
    if t_init is None and b"QUOKKA-INIT-REACHED" in buf.replace(b"echo QUOKKA", b""):
        t_init = time.monotonic() - t0
p.wait()
total = time.monotonic() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
ok = p.returncode == 0 and t_init is not None
print("%.3f %.3f %d %s" % (t_init or 0, total, rss, "ok" if ok else "FAILED(%d)" % p.returncode))
PY
}

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

bench() {   # bench NAME CMD...
    local name=$1; shift
    : > "/tmp/boot-bench.$$.$name"
    for _ in $(seq "$RUNS"); do run "$@" >> "/tmp/boot-bench.$$.$name"; done
    if grep -q FAILED "/tmp/boot-bench.$$.$name"; then
        echo "$name: a boot failed:"; cat "/tmp/boot-bench.$$.$name"; return 1
    fi
}

COMMON=(-m "$MEM" -smp "$SMP" -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -append "$APPEND"
        -display none -serial stdio -monitor none -no-reboot)
bench quokka "$Q" -accel emu "${COMMON[@]}" || exit 1
bench qemu "$QEMU" -accel tcg -M pc "${COMMON[@]}" || exit 1

report() {
    local f=/tmp/boot-bench.$$.$1
    init=$(cut -d' ' -f1 "$f" | median); total=$(cut -d' ' -f2 "$f" | median)
    rss=$(cut -d' ' -f3 "$f" | sort -n | tail -1)
    printf "%-8s to /init %7.3f s   to exit %7.3f s   peak RSS %6d MiB\n" "$1" "$init" "$total" $((rss / 1024))
}
echo "boot: $RUNS runs each, median; -m $MEM -smp $SMP; $(basename "$G")/vmlinuz $(cat "$G/key" | cut -d' ' -f1)"
report quokka
report qemu
qt=$(cut -d' ' -f2 "/tmp/boot-bench.$$.quokka" | median)
et=$(cut -d' ' -f2 "/tmp/boot-bench.$$.qemu" | median)
awk -v q="$qt" -v e="$et" 'BEGIN { printf "ratio qemu/quokka (total): %.2f (>1: quokka is faster)\n", e / q }'
rm -f /tmp/boot-bench.$$.*
