#!/usr/bin/env bash
# Serial ports through every chardev backend, driven by a tiny payload
# (echo-payload.S: prints a ready line on COM1 and COM2, echoes COM1 input
# upper-cased to both, powers off at '.'): stdio, file, tcp and unix
# sockets (server with wait and nowait, and client), pty, -chardev, and the
# mon:stdio mux with the monitor in between.
. "$(dirname "$0")/../lib.sh"
D=$(dirname "$0")
"$D/mkpayload.sh" "$D/echo-payload.S" "$T/echo.bz" || { not_ok "build the payload"; done_testing; }
RUN=(-m 32M -kernel "$T/echo.bz" -display none -monitor none)
READY="quokka-payload: ready"

# 1. stdio in and out, file out; input typed before the guest is ready waits.
printf 'hello, world.' | timeout 20 "$QUOKKA" "${RUN[@]}" -serial stdio \
    -serial "file:$T/com2" >"$T/out1" 2>&1; rc=$?
check_eq "stdio: poweroff exits 0" 0 "$rc"
check_eq "stdio: output and echoed input" "$READY|HELLO, WORLD" "$(tr '\n' '|' <"$T/out1")"
check_eq "file: COM2 output" "$READY|HELLO, WORLD" "$(tr '\n' '|' <"$T/com2")"

# talk.py WHERE INPUT: connect (retrying), send INPUT, print all until EOF.
talk() {
    python3 - "$@" <<'PY'
import os, socket, sys, time
where, data = sys.argv[1], sys.argv[2].encode()
deadline = time.time() + 10
while True:
    try:
        if where.startswith("unix:"):
            s = socket.socket(socket.AF_UNIX); s.connect(where[5:])
        elif where.startswith("tcp:"):
            h, p = where[4:].rsplit(":", 1); s = socket.create_connection((h, int(p)))
        else:
            s = None; fd = os.open(where, os.O_RDWR | os.O_NOCTTY)
        break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.05)
out = b""
if s:
    s.settimeout(10); s.sendall(data)
    while True:
        try:
            b = s.recv(4096)
        except OSError:
            break
        if not b: break
        out += b
else:
    # A pty loses what is unread when quokka exits: read the whole echo
    # before sending the '.' that powers the payload off.
    import select
    os.write(fd, data.rstrip(b"."))
    want, end = data.upper().rstrip(b"."), time.time() + 10
    while want not in out and time.time() < end:
        if select.select([fd], [], [], 0.2)[0]:
            out += os.read(fd, 4096)
    os.write(fd, b".")
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
PY
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 2. tcp server, waiting for its peer before the guest starts.
port=$(free_port)
timeout 20 "$QUOKKA" "${RUN[@]}" -serial "tcp:127.0.0.1:$port,server" 2>"$T/err2" &
pid=$!
out=$(talk "tcp:127.0.0.1:$port" "tcp ok.")
wait $pid; rc=$?
check_eq "tcp server: poweroff exits 0" 0 "$rc"
check_eq "tcp server: nothing lost while waiting" "$READY|TCP OK|" "$(echo "$out" | tr '\n' '|')"
grep -q "waiting for connection on: tcp:127.0.0.1:$port,server=on" "$T/err2" &&
    ok "tcp server: says it waits" || not_ok "tcp server: says it waits"

# 3. unix server with nowait (-chardev spelling) and a late peer.
timeout 20 "$QUOKKA" "${RUN[@]}" -chardev "socket,id=s0,path=$T/s.sock,server=on,wait=off" \
    -serial chardev:s0 2>"$T/err3" &
pid=$!
out=$(talk "unix:$T/s.sock" "unix ok.")
wait $pid; rc=$?
check_eq "unix server nowait: poweroff exits 0" 0 "$rc"
check_eq "unix server nowait: echo" "UNIX OK" "$(echo "$out" | tr -d '\n' | sed "s/^.*ready//")"

# 4. unix client: quokka connects to our listener.
python3 - "$T/c.sock" >"$T/out4" <<'PY' &
import socket, sys
l = socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); l.listen(1); l.settimeout(20)
c, _ = l.accept(); c.settimeout(10); c.sendall(b"client ok.")
out = b""
while True:
    try:
        b = c.recv(4096)
    except OSError:
        break
    if not b: break
    out += b
print(out.decode().replace("\r", "").replace("\n", "|"))
PY
lpid=$!
for _ in $(seq 100); do [ -S "$T/c.sock" ] && break; sleep 0.05; done
timeout 20 "$QUOKKA" "${RUN[@]}" -serial "unix:$T/c.sock" 2>"$T/err4"; rc=$?
wait $lpid
check_eq "unix client: poweroff exits 0" 0 "$rc"
check_eq "unix client: echo" "$READY|CLIENT OK" "$(cat "$T/out4")"

# 5. pty: the announced device carries the port.
timeout 20 "$QUOKKA" "${RUN[@]}" -serial pty 2>"$T/err5" &
pid=$!
for _ in $(seq 100); do grep -q "redirected to" "$T/err5" && break; sleep 0.05; done
pts=$(sed -n 's/.*redirected to \(\/dev\/pts\/[0-9]*\) (label serial0).*/\1/p' "$T/err5")
[ -n "$pts" ] && ok "pty: announced ($pts)" || not_ok "pty: announced"
out=$(talk "$pts" "pty ok.")
wait $pid; rc=$?
check_eq "pty: poweroff exits 0" 0 "$rc"
echo "$out" | grep -q "PTY OK" && ok "pty: echo" || { not_ok "pty: echo"; echo "# got: $out"; }

# 6. mon:stdio: serial first, C-a c to the monitor and back, then '.'.
{ printf 'abc'; sleep 0.5; printf '\001cinfo status\r'; sleep 0.5; printf '\001cdef.'; } |
    timeout 20 "$QUOKKA" -m 32M -kernel "$T/echo.bz" -display none -serial mon:stdio \
    >"$T/out6" 2>&1; rc=$?
check_eq "mon:stdio: poweroff exits 0" 0 "$rc"
grep -q "VM status: running" "$T/out6" && ok "mon:stdio: monitor in between" || not_ok "mon:stdio: monitor in between"
tr -d '\r\n' <"$T/out6" | grep -q "ABC.*DEF" && ok "mon:stdio: serial input around it" ||
    { not_ok "mon:stdio: serial input around it"; sed 's/^/#   /' "$T/out6"; }
# 7. -S holds the payload until cont; with -no-shutdown its power-off
#    leaves the process paused (shutdown) until the monitor quits.
"$QUOKKA" -m 32M -kernel "$T/echo.bz" -display none -S -no-shutdown \
    -monitor "unix:$T/m7.sock,server,nowait" -serial "unix:$T/s7.sock,server,nowait" 2>"$T/err7" &
pid=$!
python3 - "$T" >"$T/out7" 2>&1 <<'PY'
import socket, sys, time
t = sys.argv[1]
def conn(path):
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(path); s.settimeout(10); return s
        except OSError:
            time.sleep(0.05)
    raise SystemExit("cannot connect to " + path)
def until(s, marker):
    out = b""
    while marker not in out:
        b = s.recv(4096)
        if not b: break
        out += b
    return out.decode(errors="replace")
mon, ser = conn(t + "/m7.sock"), conn(t + "/s7.sock")
until(mon, b"(quokka) ")
ser.settimeout(0.5)
try:
    early = ser.recv(100)
except socket.timeout:
    early = b""
print("before cont:", repr(early))
ser.settimeout(10)
mon.sendall(b"cont\n"); until(mon, b"(quokka) ")
print("after cont:", until(ser, b"ready").strip())
ser.sendall(b"bye.")
time.sleep(0.5)
mon.sendall(b"info status\n"); print(until(mon, b"(quokka) ").splitlines()[1])
mon.sendall(b"quit\n"); until(mon, b"\0")
PY
wait $pid; rc=$?
grep -q "^before cont: b''" "$T/out7" && ok "-S: no output before cont" || not_ok "-S: no output before cont"
grep -q "^after cont: $READY" "$T/out7" && ok "-S: runs after cont" || not_ok "-S: runs after cont"
grep -q "^VM status: paused (shutdown)" "$T/out7" && ok "-no-shutdown: paused after power-off" ||
    { not_ok "-no-shutdown: paused after power-off"; sed 's/^/#   /' "$T/out7"; }
check_eq "-no-shutdown: quit exits 0" 0 "$rc"
done_testing
