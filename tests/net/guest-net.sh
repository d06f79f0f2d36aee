# Shared by the guest tests: a udhcpc script for the busybox guest and a
# free TCP port on loopback.
DHCP_SETUP='cat > /tmp/dh <<EOF
#!/bin/sh
[ "\$1" = bound ] || exit 0
ip addr add \$ip/\$mask dev \$interface
ip route add default via \$router
echo "DHCP \$ip \$router \$dns"
EOF
chmod +x /tmp/dh; ip link set lo up; ip link set eth0 up'
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
