#!/usr/bin/env bash
# virtio-balloon with the Debian guest: after the guest has touched 150 MiB
# and freed it, `balloon 128` makes it hand pages back (its MemTotal falls
# by 128 MiB, Quokka's RSS falls, `info balloon` says 128); `balloon 256`
# gives them back. Then the monitor's errors without a balloon, and the
# one-balloon rule.
. "$(dirname "$0")/../lib.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }

# The guest: dirty 150 MiB of RAM, free it, then report MemTotal whenever it
# changes (for up to 100 s); stop a little after it is back where it began.
GCMD='dd if=/dev/zero of=/tmp/fill bs=1M count=150 2>/dev/null; rm /tmp/fill
m0=$(awk "/MemTotal/ { print \$2 }" /proc/meminfo); echo "FILLED $m0"; last=$m0
for i in $(seq 500); do
    m=$(awk "/MemTotal/ { print \$2 }" /proc/meminfo)
    [ "$m" != "$last" ] && echo "MEMTOTAL $m" && last=$m
    [ "$m" = "$m0" ] && [ -n "${shrunk:-}" ] && sleep 3 && break
    [ "$m" != "$m0" ] && shrunk=1
    sleep 0.2
done'
sock=$T/mon.sock
timeout 300 "$QUOKKA" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -display none \
    -monitor unix:"$sock",server=on,wait=off -serial stdio -no-reboot \
    -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")" \
    -device virtio-balloon-pci,id=balloon0 </dev/null >"$T/out" 2>"$T/err" &
vm=$!

# The host side: wait for FILLED, then balloon down and up through the
# monitor, sampling the VM's RSS; prints "KEY value" lines.
python3 - "$sock" "$T/out" "$vm" >"$T/host" <<'PY'
import os, socket, sys, time
sock, out, pid = sys.argv[1], sys.argv[2], sys.argv[3]
def quokka_pid():   # the child of timeout
    for t in os.listdir("/proc/%s/task" % pid):
        kids = open("/proc/%s/task/%s/children" % (pid, t)).read().split()
        if kids:
            return kids[0]
    return pid
def rss():
    for l in open("/proc/%s/status" % quokka_pid()):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
def wait_for(pred, secs):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False
if not wait_for(lambda: "FILLED" in open(out, errors="replace").read(), 240):
    print("NOFILL"); sys.exit(0)
s = socket.socket(socket.AF_UNIX); s.connect(sock); s.settimeout(5)
buf = b""
def cmd(line):
    global buf
    s.sendall(line.encode() + b"\n")
    while buf.count(b"(quokka) ") < 2:
        buf += s.recv(4096)
    reply = buf.split(b"(quokka) ")[1].decode(errors="replace")
    buf = b"(quokka) " + buf.split(b"(quokka) ", 2)[2]
    return reply.replace("\r", "").split("\n", 1)[1].strip()
while b"(quokka) " not in buf:
    buf += s.recv(4096)
print("INFO0", cmd("info balloon"))
print("RSS0", rss())
print("SET", cmd("balloon 128") or "-")
ok = wait_for(lambda: cmd("info balloon") == "balloon: actual=128", 60)
print("INFO1", cmd("info balloon"))
time.sleep(1.5)   # the guest samples MemTotal every 0.2 s: let it see the low point
print("RSS1", rss())
print("SET", cmd("balloon 256") or "-")
wait_for(lambda: cmd("info balloon") == "balloon: actual=256", 60)
print("INFO2", cmd("info balloon"))
PY
wait $vm
rc=$?
check_eq "guest powers off with status 0" 0 "$rc"
h() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$T/host"; }
check_eq "info balloon before: all of RAM" "balloon: actual=256" "$(h INFO0)"
check_eq "balloon 128: the guest inflates to it" "balloon: actual=128" "$(h INFO1)"
check_eq "balloon 256: the guest deflates back" "balloon: actual=256" "$(h INFO2)"
rss0=$(h RSS0) rss1=$(h RSS1)
if [ -n "$rss0" ] && [ -n "$rss1" ] && [ $((rss0 - rss1)) -ge $((64 * 1024)) ]; then
    ok "host RSS falls by at least 64 MiB ($rss0 -> $rss1 KiB)"
else
    not_ok "host RSS falls by at least 64 MiB (${rss0:-?} -> ${rss1:-?} KiB)"
    sed 's/^/#   /' "$T/host" "$T/err" | tail -20
fi
# MemTotal moves in steps as the driver works: the lowest and the last.
m=$(tr -d '\r' <"$T/out" | awk '$1 == "FILLED" { m0 = $2; lo = $2; last = $2 }
    $1 == "MEMTOTAL" { last = $2; if ($2 < lo) lo = $2 }
    END { if (m0) print m0 - lo, (last == m0) ? "yes" : "no" }')
check_eq "guest MemTotal falls by 128 MiB" $((128 * 1024)) "${m% *}"
check_eq "guest MemTotal comes back" yes "${m#* }"

# Without a balloon, and with two.
mon_once() {   # mon_once CMD...: run the monitor commands on a stopped VM
    printf '%s\n' "$@" quit | timeout 60 "$QUOKKA" -S -m 64M -display none -monitor stdio \
        -serial none "${extra[@]}" 2>&1 | tr -d '\r'
}
extra=()
out=$(mon_once "info balloon" "balloon 100")
check_eq "info balloon without a balloon" 2 \
    "$(echo "$out" | grep -c '^Error: No balloon device has been activated$')"
extra=(-device virtio-balloon-pci)
out=$(mon_once "balloon 0" "info balloon")
echo "$out" | grep -q "Error: Parameter 'target' expects a size" && ok "balloon 0 is refused" ||
    { not_ok "balloon 0 is refused"; echo "$out" | sed 's/^/#   /'; }
echo "$out" | grep -q "^balloon: actual=64$" && ok "info balloon before the driver: all of RAM" ||
    { not_ok "info balloon before the driver: all of RAM"; echo "$out" | sed 's/^/#   /'; }
out=$(timeout 60 "$QUOKKA" -S -m 64M -display none -monitor none -serial none \
    -device virtio-balloon-pci -device virtio-balloon-pci </dev/null 2>&1)
echo "$out" | grep -q "Only one balloon device is supported" && ok "a second balloon is refused" ||
    { not_ok "a second balloon is refused"; echo "$out" | sed 's/^/#   /'; }
done_testing
