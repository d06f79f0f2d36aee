#!/usr/bin/env bash
# A virtconsole carries bytes both ways between the Debian guest's /dev/hvc0
# and a unix socket on the host (-chardev socket,server=on,wait=off).
. "$(dirname "$0")/../lib.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }

GCMD='exec 3<>/dev/hvc0
stty raw -echo <&3
echo TO-HOST-FROM-GUEST >&3
echo CONSOLE $(head -c 16 <&3)'
sock=$T/con.sock
timeout 300 "$QUOKKA" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -display none \
    -monitor none -serial stdio -no-reboot \
    -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")" \
    -chardev socket,id=con,path="$sock",server=on,wait=off \
    -device virtio-serial-pci -device virtconsole,chardev=con \
    </dev/null >"$T/out" 2>"$T/err" &
vm=$!
# The host end: read the guest's line, answer with 16 bytes.
python3 - "$sock" >"$T/console" <<'PY' &
import socket, sys, time
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.2)
s.settimeout(280)
buf = b""
try:
    while b"TO-HOST-FROM-GUEST" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    s.sendall(b"FROM-HOST-0123\r\n")
except OSError as e:
    print("socket:", e)
print(buf.decode(errors="replace").strip())
time.sleep(2)
PY
py=$!
wait $vm
rc=$?
wait $py
check_eq "guest powers off with status 0" 0 "$rc"
grep -q "TO-HOST-FROM-GUEST" "$T/console" && ok "virtconsole: guest to host" ||
    { not_ok "virtconsole: guest to host"; sed 's/^/#   /' "$T/console" "$T/err"; }
check_eq "virtconsole: host to guest" "FROM-HOST-0123" \
    "$(tr -d '\r' <"$T/out" | awk '$1 == "CONSOLE" { print $2 }')"
done_testing
