/* quokka-net's own DHCP server and DNS forwarder for one bridge, used by
 * `quokka-net up --dhcp` when dnsmasq is absent (or QUOKKA_NET_DHCP=builtin):
 * a daemon process answering DHCP on the bridge and DNS on its address. */
#ifndef QUOKKA_TOOLS_NET_SERVE_H
#define QUOKKA_TOOLS_NET_SERVE_H

#include <stdint.h>
#include <sys/types.h>

struct serve_conf {
    const char *bridge;
    uint32_t addr, mask, lo, hi;     /* host byte order */
    uint32_t upstream;               /* resolver for other names; 0: none (they fail) */
};

/* Open the sockets (errors on stderr), then fork the daemon; its pid, or
 * -errno. */
pid_t serve_start(const struct serve_conf *c);

/* The host's resolver: QUOKKA_NET_DNS_UPSTREAM, else the first IPv4
 * nameserver of /etc/resolv.conf; 0 if none. */
uint32_t serve_upstream(void);

#endif
