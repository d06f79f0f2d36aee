#!/usr/bin/env bash
# The monitor and chardevs with no guest OS: -S and no kernel (the board
# idles on its reset-vector ROM). HMP over a unix and a tcp socket, over the
# stdio mux (-nographic, Ctrl-A keys), pty announcement, pidfile, daemon
# mode, SIGTERM, and the terminal restored on every way out.
. "$(dirname "$0")/../lib.sh"
HMP="python3 $(dirname "$0")/hmp.py"
BASE=(-S -display none -serial none)

# 1. unix socket: run control and inspection, quit ends the process with 0.
"$QUOKKA" "${BASE[@]}" -smp 2 -monitor "unix:$T/m.sock,server,nowait" 2>"$T/err1" &
pid=$!
$HMP "unix:$T/m.sock" "info status" "cont" "info status" "stop" "info status" \
    "info cpus" "info chardev" "info mtree" "xp /2xw 0" "x/3xb 0" "xp /2d 0" \
    "bogus" "help" "quit" >"$T/h1"
wait $pid; rc=$?
check_eq "quit exits 0" 0 "$rc"
grep -q "^VM status: paused (prelaunch)" "$T/h1" && ok "-S starts paused" || not_ok "-S starts paused"
grep -A1 "^(quokka) cont" "$T/h1" | tail -1 >/dev/null
[ "$(grep -c '^VM status: running' "$T/h1")" = 1 ] && ok "cont runs" || not_ok "cont runs"
grep -A1 "^(quokka) stop" "$T/h1" >/dev/null
[ "$(grep '^VM status' "$T/h1" | tail -1)" = "VM status: paused" ] && ok "stop pauses" || not_ok "stop pauses"
check_eq "info cpus lists 2 CPUs" 2 "$(grep -c 'CPU #' "$T/h1")"
grep -q "^compat_monitor0: filename=unix:$T/m.sock,server=on" "$T/h1" && ok "info chardev" || not_ok "info chardev"
grep -qE "^  0000000000000000-[0-9a-f]{16} \(prio [0-9]+, ram\)" "$T/h1" && ok "info mtree shows RAM at 0" || not_ok "info mtree shows RAM at 0"
grep -q "^0000000000000000: 0x00000000 0x00000000$" "$T/h1" && ok "xp /2xw" || not_ok "xp /2xw"
grep -q "^0000000000000000: 0x00 0x00 0x00$" "$T/h1" && ok "x/3xb" || not_ok "x/3xb"
grep -qE "^0000000000000000: +0 +0$" "$T/h1" && ok "xp /2d" || not_ok "xp /2d"
grep -q "^unknown command: 'bogus'" "$T/h1" && ok "unknown command" || not_ok "unknown command"
grep -q "^info \[subcommand\]" "$T/h1" && ok "help" || not_ok "help"
[ -e "$T/m.sock" ] && not_ok "socket removed at exit" || ok "socket removed at exit"

# 2. tcp socket; system_reset keeps it alive; a second peer after the first left.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$QUOKKA" "${BASE[@]}" -monitor "tcp:127.0.0.1:$port,server,nowait" 2>"$T/err2" &
pid=$!
$HMP "tcp:127.0.0.1:$port" "system_reset" "info status" >"$T/h2"
$HMP "tcp:127.0.0.1:$port" "info version" $'\e[A' "quit" >"$T/h3"
wait $pid; rc=$?
check_eq "tcp monitor quit exits 0" 0 "$rc"
grep -q "^VM status: paused" "$T/h2" && ok "tcp monitor answers" || not_ok "tcp monitor answers"
grep -q "^Quokka .* monitor" "$T/h3" && grep -q "^[0-9]\+\.[0-9]" "$T/h3" && ok "second tcp peer gets a monitor" || not_ok "second tcp peer gets a monitor"
check_eq "up arrow repeats the last command" 2 "$(grep -c "^[0-9]\+\.[0-9]" "$T/h3")"

# 3. -chardev + -mon, and SIGTERM: exit 0 with a message.
"$QUOKKA" "${BASE[@]}" -chardev "socket,id=mon0,path=$T/c.sock,server=on,wait=off" \
    -mon chardev=mon0,mode=readline 2>"$T/err3" &
pid=$!
$HMP "unix:$T/c.sock" "info chardev" >"$T/h4"
kill -TERM $pid; wait $pid; rc=$?
check_eq "SIGTERM exits 0" 0 "$rc"
grep -q "^mon0: filename=unix:" "$T/h4" && ok "-chardev socket + -mon" || not_ok "-chardev socket + -mon"
grep -q "terminating on signal 15" "$T/err3" && ok "SIGTERM reported" || not_ok "SIGTERM reported"

# 4. -nographic: serial and monitor share stdio; C-a h, C-a c, C-a x.
{ printf '\001h\001cinfo status\r'; sleep 1; printf '\001x'; } |
    timeout 20 "$QUOKKA" -S -nographic >"$T/mux" 2>&1; rc=$?
check_eq "C-a x exits 0" 0 "$rc"
grep -q "C-a c    switch between console and monitor" "$T/mux" && ok "C-a h help" || not_ok "C-a h help"
grep -q "VM status: paused (prelaunch)" "$T/mux" && ok "C-a c reaches the monitor" || not_ok "C-a c reaches the monitor"

# 5. pty announcement, pidfile written and removed, stdin not a terminal.
"$QUOKKA" -S -display none -serial pty -pidfile "$T/q.pid" \
    -monitor "unix:$T/p.sock,server,nowait" 2>"$T/err5" </dev/null &
pid=$!
$HMP "unix:$T/p.sock" "info chardev" >"$T/h5"
grep -qE "^quokka: char device redirected to /dev/pts/[0-9]+ \(label serial0\)" "$T/err5" \
    && ok "pty announced" || not_ok "pty announced"
check_eq "pidfile holds the pid" "$pid" "$(cat "$T/q.pid" 2>/dev/null)"
$HMP "unix:$T/p.sock" "quit" >/dev/null
wait $pid
[ -e "$T/q.pid" ] && not_ok "pidfile removed at exit" || ok "pidfile removed at exit"

# 6. -daemonize: the command returns once the machine is built.
timeout 20 "$QUOKKA" -S -display none -serial none -daemonize -pidfile "$T/d.pid" \
    -monitor "unix:$T/d.sock,server,nowait"; rc=$?
check_eq "-daemonize returns 0" 0 "$rc"
dpid=$(cat "$T/d.pid" 2>/dev/null)
[ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null && ok "daemon runs" || not_ok "daemon runs"
$HMP "unix:$T/d.sock" "info status" "quit" >"$T/h6"
grep -q "^VM status" "$T/h6" && ok "daemon's monitor answers" || not_ok "daemon's monitor answers"
for i in $(seq 50); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$dpid" 2>/dev/null && { not_ok "daemon quits"; kill "$dpid"; } || ok "daemon quits"

# 7. The terminal comes back as it was: after C-a x, SIGTERM, and a crash.
python3 - "$QUOKKA" <<'PY' > "$T/tty" 2>&1
import os, pty, signal, sys, termios, time
q = sys.argv[1]
def run(how):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(q, [q, "-S", "-nographic"])
    time.sleep(0.5)
    slave = os.open(os.readlink("/proc/%d/fd/0" % pid), os.O_RDWR | os.O_NOCTTY)
    raw = termios.tcgetattr(slave)
    if how == "C-a x":
        os.write(fd, b"\x01x")
    else:
        os.kill(pid, how)
    _, status = os.waitpid(pid, 0)
    after = termios.tcgetattr(slave)
    echo_back = bool(after[3] & termios.ECHO) and bool(after[3] & termios.ICANON)
    was_raw = not (raw[3] & termios.ICANON)
    label = how if isinstance(how, str) else signal.Signals(how).name
    print("%s: raw while running=%s restored=%s status=%d" % (label, was_raw, echo_back, status))
for how in ["C-a x", signal.SIGTERM, signal.SIGSEGV]:
    run(how)
PY
grep -q "C-a x: raw while running=True restored=True status=0" "$T/tty" && ok "terminal restored after C-a x" || not_ok "terminal restored after C-a x"
grep -q "SIGTERM: raw while running=True restored=True status=0" "$T/tty" && ok "terminal restored after SIGTERM" || not_ok "terminal restored after SIGTERM"
grep -q "SIGSEGV: raw while running=True restored=True status=[1-9]" "$T/tty" && ok "terminal restored after a crash signal" || not_ok "terminal restored after a crash signal"
sed 's/^/# /' "$T/tty"
done_testing
