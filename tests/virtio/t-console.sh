#!/usr/bin/env bash
# A virtconsole carries bytes both ways between the Debian guest's /dev/hvc0
# and a unix socket on the host (-chardev socket,server=on,wait=off), with
# other virtio devices busy beside it (two disks written meanwhile, entropy,
# a second serial port).
#
# What the guest writes while no client is connected is discarded, as in
# QEMU; the guest can reach its console before the host's client connects
# (it did, once the emulated CPU got fast, in the five-disk boot this
# exchange used to share), so it repeats its line until the host answers.
# A virtserialport is different: its guest writes wait until the socket has
# a peer (the port opens when the chardev connects), so nothing is lost.
. "$(dirname "$0")/../lib.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }

GCMD='for d in vda vdb; do dd if=/dev/urandom of=/dev/$d bs=64k count=64 2>/dev/null & done
exec 3<>/dev/hvc0
stty raw -echo <&3
( while :; do echo TO-HOST-FROM-GUEST >&3; sleep 0.3; done ) &
w=$!
echo CONSOLE $(head -c 16 <&3)
kill $w
wait
for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = org.test.port ] && port=/dev/${p##*/}; done
echo WRITING; echo AGENT-HELLO >$port; echo WROTE
timeout 2 dd if=/dev/zero of=$port bs=64k count=256 2>/dev/null
echo NOTAHEAD $(dmesg | grep -c "is not a head")
echo DISKS $(cat /sys/block/vda/stat /sys/block/vdb/stat | awk "\$7 >= 8192 { n++ } END { print n + 0 }")'
truncate -s 16M "$T/a.img" "$T/b.img"
sock=$T/con.sock
timeout 300 "$QUOKKA" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -display none \
    -monitor none -serial stdio -no-reboot \
    -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")" \
    -chardev socket,id=con,path="$sock",server=on,wait=off \
    -drive file="$T/a.img",format=raw,if=virtio -drive file="$T/b.img",format=raw,if=virtio \
    -device virtio-rng-pci -chardev null,id=ga \
    -device virtio-serial-pci -device virtconsole,chardev=con \
    -device virtserialport,chardev=ga,name=org.qemu.guest_agent.0 \
    -chardev socket,id=port,path="$T/port.sock",server=on,wait=off \
    -device virtserialport,chardev=port,name=org.test.port \
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
# The port's host end connects only a second after the guest began writing.
python3 - "$T/port.sock" "$T/out" >"$T/port" <<'PY' &
import socket, sys, time
end = time.time() + 280
while b"WRITING" not in open(sys.argv[2], "rb").read() and time.time() < end:
    time.sleep(0.1)
time.sleep(1)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(60)
buf = b""
try:
    while b"AGENT-HELLO" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    # Then hang up in the middle of the guest's next, longer write.
    more = 0
    while more < 65536:
        d = s.recv(65536)
        if not d:
            break
        more += len(d)
except OSError as e:
    print("socket:", e)
s.close()
print(buf.split(b"\n")[0].decode(errors="replace").strip())
PY
py2=$!
wait $vm
rc=$?
wait $py $py2
check_eq "guest powers off with status 0" 0 "$rc"
grep -q "TO-HOST-FROM-GUEST" "$T/console" && ok "virtconsole: guest to host" ||
    { not_ok "virtconsole: guest to host"; sed 's/^/#   /' "$T/console" "$T/err"; }
check_eq "virtconsole: host to guest" "FROM-HOST-0123" \
    "$(tr -d '\r' <"$T/out" | awk '$1 == "CONSOLE" { print $2 }')"
check_eq "virtserialport: a write waits for the host to connect" "AGENT-HELLO" "$(cat "$T/port")"
check_eq "virtserialport: the host hanging up mid-write leaves the queues sound" 0 \
    "$(tr -d '\r' <"$T/out" | awk '$1 == "NOTAHEAD" { print $2 }')"
check_eq "both disks written meanwhile" 2 "$(tr -d '\r' <"$T/out" | awk '$1 == "DISKS" { print $2 }')"
done_testing
