/* A small DHCPv4 server's protocol logic (RFC 2131/2132), no sockets:
 * quokka-net serves a bridge with it when dnsmasq is absent. DISCOVER ->
 * OFFER, REQUEST -> ACK or NAK, RELEASE; one lease per client MAC from a
 * range, the server's own address as router and DNS server. Addresses are
 * in host byte order; times in seconds of any monotonic clock. */
#ifndef QUOKKA_NET_DHCPD_H
#define QUOKKA_NET_DHCPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCPD_MAX_LEASES 256
#define DHCPD_PACKET_MAX 576          /* what every client must accept */

struct dhcpd_lease {
    uint8_t mac[6];
    uint32_t ip;
    int64_t expires;
    bool bound;                      /* ACKed (an OFFER alone holds it briefly) */
    char host[64];                   /* the client's host name option, if it sent one */
};

struct dhcpd {
    uint32_t server, mask, lo, hi;
    uint32_t dns;                    /* the DNS server offered: server by default, 0: none */
    uint32_t lease_secs;
    int n;
    struct dhcpd_lease lease[DHCPD_MAX_LEASES];
};

void dhcpd_init(struct dhcpd *d, uint32_t server, uint32_t mask, uint32_t lo, uint32_t hi,
                uint32_t lease_secs);

/* Handle one request (a BOOTP packet from port 68). Returns the reply's
 * length in out (out_max >= DHCPD_PACKET_MAX), 0 if nothing is to be sent,
 * -EINVAL if the packet is not a DHCP request. *dest is where the reply
 * goes: the client's address, or 0xffffffff to broadcast it. */
int dhcpd_handle(struct dhcpd *d, const uint8_t *pkt, size_t len, int64_t now, uint8_t *out,
                 size_t out_max, uint32_t *dest);

/* The address leased to a client that called itself name (case-insensitive),
 * or 0. */
uint32_t dhcpd_find_host(const struct dhcpd *d, const char *name, int64_t now);

#endif
