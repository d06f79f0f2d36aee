#!/usr/bin/env bash
# The Debian test guest (scripts/guest.sh) on the emulated CPU: it boots,
# runs commands from the kernel command line and powers off with status 0;
# its arithmetic, hashing and sorting agree with the host's busybox; it
# picks the cheap Spectre/Meltdown paths our CPUID offers; -smp 2 shows two
# CPUs; its clock is the host's; an interactive shell on the -nographic
# console answers typed commands; reboot with -no-reboot exits.
# Two boots (a few minutes under emulation).
. "$(dirname "$0")/../lib.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }
BOOT=(-m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -display none -monitor none
      -serial stdio -no-reboot)
cmdline() { echo "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$1")"; }

# 1. One boot, many checks. Each output line is stamped with the host's
#    clock as it arrives, for the clock check.
WORK='seq 1 20000 | sha256sum
awk "BEGIN { for (i = 1; i <= 5000; i++) s += (i * i * i) % 97; print s }"
seq 1 3000 | awk "{ print (\$1 * 7919) % 10007 }" | sort -n | sha256sum'
GCMD="echo CPUS \$(grep -c ^processor /proc/cpuinfo)
echo KERNEL \$(uname -r)
echo SPECTRE \$(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2)
echo MELTDOWN \$(cat /sys/devices/system/cpu/vulnerabilities/meltdown)
$(echo "$WORK" | sed 's/^/echo RESULT $(/; s/$/)/')
echo DATE \$(date +%s)"
timeout 600 "$QUOKKA" "${BOOT[@]}" -smp 2 -append "$(cmdline "$GCMD")" </dev/null 2>"$T/err" |
    tr -d '\r' | while IFS= read -r line; do echo "$(date +%s) $line"; done >"$T/out"
rc=${PIPESTATUS[0]}
check_eq "guest powers off with exit status 0" 0 "$rc"
grep -q " quokka: exit status 0$" "$T/out" && ok "guest command ran" || {
    not_ok "guest command ran"; tail -20 "$T/out" "$T/err" | sed 's/^/#   /'; }
check_eq "kernel is the guest's" "$(sed 's/linux-image-//; s/ .*//' "$G/key")" \
    "$(awk '$2 == "KERNEL" { print $3 }' "$T/out")"
# what the CPU says about speculation decides how costly every system call is
spectre=$(awk '$2 == "SPECTRE" { $1 = $2 = ""; print }' "$T/out")
case $spectre in *"Enhanced / Automatic IBRS"*"BHI: BHI_DIS_S"*) ok "guest uses eIBRS, no retpolines";;
    *) not_ok "guest uses eIBRS, no retpolines (spectre_v2:$spectre)";; esac
check_eq "guest does not isolate page tables" "Not affected" \
    "$(awk '$2 == "MELTDOWN" { $1 = $2 = ""; sub(/^ +/, ""); print }' "$T/out")"
check_eq "-smp 2 shows 2 CPUs" 2 "$(awk '$2 == "CPUS" { print $3 }' "$T/out")"
host_results=$(echo "$WORK" | while IFS= read -r c; do echo RESULT $(busybox sh -c "$c"); done)
check_eq "sha256sum, awk and sort agree with the host" "$host_results" \
    "$(awk '$2 == "RESULT" { $1 = ""; sub(/^ /, ""); print }' "$T/out")"
read -r host_t guest_t < <(awk '$2 == "DATE" { print $1, $3 }' "$T/out")
d=$(( ${host_t:-0} - ${guest_t:-99} )); d=${d#-}
[ "$d" -le 1 ] && ok "guest clock within a second of the host" ||
    not_ok "guest clock within a second of the host (host $host_t, guest $guest_t)"

# 2. make run's shell: -nographic, typed input through the UART; then
#    reboot with -no-reboot ends the process instead of booting again.
python3 - "$QUOKKA" "$G" >"$T/out2" 2>&1 <<'PY'
import os, subprocess, sys, time
q, g = sys.argv[1], sys.argv[2]
p = subprocess.Popen([q, "-m", "256M", "-nographic", "-no-reboot", "-kernel", g + "/vmlinuz",
                      "-initrd", g + "/initrd.gz", "-append", "console=ttyS0 quiet"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
os.set_blocking(p.stdout.fileno(), False)
buf = b""
def expect(s, timeout=500):
    global buf
    end = time.time() + timeout
    while s not in buf:
        if time.time() > end or p.poll() is not None:
            raise SystemExit("timeout waiting for %r; got %r" % (s, buf[-300:]))
        try:
            chunk = p.stdout.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk
        else:
            time.sleep(0.05)
expect(b"busybox shell")
time.sleep(0.5)
for c in b"echo $((6 * 7))x\r":
    p.stdin.write(bytes([c])); p.stdin.flush(); time.sleep(0.01)
expect(b"42x")
print("shell answered")
p.stdin.write(b"reboot -f\r"); p.stdin.flush()
rc = p.wait(timeout=300)
try:
    buf += p.stdout.read() or b""
except BlockingIOError:
    pass
print("exit status", rc, "shells", buf.count(b"busybox shell"))
PY
grep -q "^shell answered" "$T/out2" && ok "interactive shell on the console" ||
    { not_ok "interactive shell on the console"; tail -5 "$T/out2" | sed 's/^/#   /'; }
grep -q "^exit status 0 shells 1$" "$T/out2" && ok "reboot with -no-reboot exits 0" ||
    { not_ok "reboot with -no-reboot exits 0"; tail -3 "$T/out2" | sed 's/^/#   /'; }
done_testing
