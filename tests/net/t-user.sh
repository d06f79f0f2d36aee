#!/usr/bin/env bash
# User networking in one boot of the Debian guest: DHCP gives 10.0.2.15 with
# gateway 10.0.2.2 and DNS 10.0.2.3; the gateway answers ping; the guest
# downloads a file from a host web server through 10.0.2.2; the host fetches
# a file from a web server in the guest through hostfwd; checksums equal.
# The NIC (from -nic) has the derived, locally administered MAC.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/guest-net.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }

mkdir -p "$T/www"
head -c 300000 /dev/urandom > "$T/www/blob"
host_sha=$(sha256sum < "$T/www/blob" | cut -c1-64)
: > "$T/out"
hport=$(free_port); fport=$(free_port); dport=$(free_port)
(cd "$T/www" && exec python3 -m http.server --bind 127.0.0.1 "$hport" >/dev/null 2>&1) &
web=$!

GCMD="$DHCP_SETUP
ip link show eth0 | grep -o 'ether [0-9a-f:]*'
udhcpc -i eth0 -s /tmp/dh -q -n -t 5
echo PING \$(ping -c 2 10.0.2.2 | grep -o '[0-9]* packets received')
wget -q -O /tmp/blob http://10.0.2.2:$hport/blob
echo GOT \$(sha256sum < /tmp/blob | cut -c1-64)
mkdir -p /tmp/www; dd if=/dev/urandom of=/tmp/www/g.bin bs=1000 count=200 2>/dev/null
echo GSHA \$(sha256sum < /tmp/www/g.bin | cut -c1-64)
httpd -p 80 -h /tmp/www
echo READY
nc -l -p 81 >/dev/null
echo DONE"

timeout 200 ${NETTEST_WRAP:-} "$QUOKKA" -name nettest -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" \
    -display none -monitor none -serial stdio -no-reboot \
    -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")" \
    -nic user,model=virtio,hostfwd=tcp:127.0.0.1:$fport-:80,hostfwd=tcp:127.0.0.1:$dport-:81 \
    </dev/null >"$T/out" 2>"$T/err" &
vm=$!
for _ in $(seq 1500); do grep -q READY "$T/out" && break; kill -0 $vm 2>/dev/null || break; sleep 0.1; done
got=$(curl -s --max-time 60 "http://127.0.0.1:$fport/g.bin" | sha256sum | cut -c1-64)
(exec 3<>/dev/tcp/127.0.0.1/$dport) 2>/dev/null
wait $vm; st=$?
kill $web 2>/dev/null

check_eq "VM exits 0" 0 "$st"
check_eq "DHCP lease" "DHCP 10.0.2.15 10.0.2.2 10.0.2.3" "$(grep -o 'DHCP .*' "$T/out" | tr -d '\r')"
check_eq "gateway answers ping" "PING 2 packets received" "$(grep -o 'PING .*' "$T/out" | tr -d '\r')"
check_eq "guest downloads from the host through 10.0.2.2" "GOT $host_sha" \
    "$(grep -o 'GOT .*' "$T/out" | tr -d '\r')"
check_eq "host fetches from the guest through hostfwd" \
    "GSHA $got" "$(grep -o 'GSHA .*' "$T/out" | tr -d '\r')"
empty=$(printf '' | sha256sum | cut -c1-64)
[ "$got" != "$empty" ] && ok "hostfwd data non-empty" || not_ok "hostfwd data non-empty"
mac=$(grep -o 'ether [0-9a-f:]*' "$T/out" | cut -d' ' -f2)
case $mac in 52:54:*) ok "derived MAC is locally administered ($mac)" ;;
             *) not_ok "derived MAC ($mac)" ;; esac
grep -q DONE "$T/out" && ok "guest saw the host connect to port 81" || not_ok "guest saw the host connect"
[ -n "${NETTEST_SHOW:-}" ] && cat "$T/out"; [ $FAILS -gt 0 ] && { tail -20 "$T/out"; cat "$T/err"; } | sed 's/^/#  /'
done_testing
