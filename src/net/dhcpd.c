/* DHCPv4 server logic: parse a BOOTREQUEST, pick or confirm a lease, build
 * the BOOTREPLY. The lease table is a flat array: a bridge serves a few
 * VMs, and a linear scan of 256 entries costs nothing next to the network. */
#include "net/dhcpd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { DISCOVER = 1, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM };
enum { OPT_PAD = 0, OPT_MASK = 1, OPT_ROUTER = 3, OPT_DNS = 6, OPT_HOSTNAME = 12,
       OPT_BROADCAST = 28, OPT_REQ_IP = 50, OPT_LEASE = 51, OPT_TYPE = 53, OPT_SERVER = 54,
       OPT_END = 255 };
#define BOOTP_OPTIONS 240
#define OFFER_HOLD 30                 /* seconds an offered address stays reserved */

struct dhcp_req {
    uint8_t type;
    const uint8_t *chaddr;
    uint32_t ciaddr, req_ip, server;
    char host[64];
};

void dhcpd_init(struct dhcpd *d, uint32_t server, uint32_t mask, uint32_t lo, uint32_t hi,
                uint32_t lease_secs)
{
    memset(d, 0, sizeof(*d));
    d->server = server;
    d->mask = mask;
    d->lo = lo;
    d->hi = hi;
    d->dns = server;
    d->lease_secs = lease_secs;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The options we use; a malformed option list ends the walk. */
static int parse(const uint8_t *pkt, size_t len, struct dhcp_req *r)
{
    memset(r, 0, sizeof(*r));
    if (len < BOOTP_OPTIONS + 1 || pkt[0] != 1 || pkt[1] != 1 || pkt[2] != 6 ||
        get32(pkt + 236) != 0x63825363)
        return -EINVAL;
    r->chaddr = pkt + 28;
    r->ciaddr = get32(pkt + 12);
    for (size_t i = BOOTP_OPTIONS; i < len && pkt[i] != OPT_END;) {
        if (pkt[i] == OPT_PAD) {
            i++;
            continue;
        }
        if (i + 2 > len || i + 2 + pkt[i + 1] > len)
            break;
        const uint8_t *v = pkt + i + 2;
        uint8_t code = pkt[i], n = pkt[i + 1];
        if (code == OPT_TYPE && n == 1)
            r->type = v[0];
        else if (code == OPT_REQ_IP && n == 4)
            r->req_ip = get32(v);
        else if (code == OPT_SERVER && n == 4)
            r->server = get32(v);
        else if (code == OPT_HOSTNAME && n > 0)
            snprintf(r->host, sizeof(r->host), "%.*s", (int)n, (const char *)v);
        i += 2 + n;
    }
    return r->type ? 0 : -EINVAL;
}

static struct dhcpd_lease *by_mac(struct dhcpd *d, const uint8_t *mac)
{
    for (int i = 0; i < d->n; i++)
        if (!memcmp(d->lease[i].mac, mac, 6))
            return &d->lease[i];
    return NULL;
}

static bool ip_taken(const struct dhcpd *d, uint32_t ip, const uint8_t *mac, int64_t now)
{
    for (int i = 0; i < d->n; i++)
        if (d->lease[i].ip == ip && memcmp(d->lease[i].mac, mac, 6) && d->lease[i].expires > now)
            return true;
    return ip == d->server;
}

static bool in_range(const struct dhcpd *d, uint32_t ip) { return ip >= d->lo && ip <= d->hi; }

/* This client's lease: its own, or the address it asks for, or the first
 * free one (an expired lease of another client is taken over). */
static struct dhcpd_lease *choose(struct dhcpd *d, const struct dhcp_req *r, int64_t now)
{
    struct dhcpd_lease *l = by_mac(d, r->chaddr);
    if (l && !ip_taken(d, l->ip, r->chaddr, now))
        return l;
    uint32_t ip = 0;
    if (r->req_ip && in_range(d, r->req_ip) && !ip_taken(d, r->req_ip, r->chaddr, now))
        ip = r->req_ip;
    for (uint32_t a = d->lo; !ip && a <= d->hi && a >= d->lo; a++)
        if (!ip_taken(d, a, r->chaddr, now))
            ip = a;
    if (!ip)
        return NULL;
    if (!l) {
        for (int i = 0; i < d->n && !l; i++)
            if (d->lease[i].expires <= now)
                l = &d->lease[i];
        if (!l && d->n < DHCPD_MAX_LEASES)
            l = &d->lease[d->n++];
        if (!l)
            return NULL;
        memset(l, 0, sizeof(*l));
        memcpy(l->mac, r->chaddr, 6);
    }
    l->ip = ip;
    return l;
}

static uint8_t *opt(uint8_t *p, uint8_t code, uint8_t n, const void *v)
{
    p[0] = code;
    p[1] = n;
    memcpy(p + 2, v, n);
    return p + 2 + n;
}

static uint8_t *opt32(uint8_t *p, uint8_t code, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    return opt(p, code, 4, b);
}

static int reply(const struct dhcpd *d, const uint8_t *req, uint8_t type, uint32_t yiaddr,
                 uint8_t *out)
{
    memset(out, 0, DHCPD_PACKET_MAX);
    out[0] = 2;                                /* BOOTREPLY */
    memcpy(out + 1, req + 1, 3);               /* htype, hlen, hops */
    memcpy(out + 4, req + 4, 4);               /* xid */
    memcpy(out + 10, req + 10, 2);             /* flags */
    memcpy(out + 12, req + 12, 4);             /* ciaddr */
    put32(out + 16, yiaddr);
    memcpy(out + 24, req + 24, 4);             /* giaddr */
    memcpy(out + 28, req + 28, 16);            /* chaddr */
    put32(out + 236, 0x63825363);
    uint8_t *p = out + BOOTP_OPTIONS;
    p = opt(p, OPT_TYPE, 1, &type);
    p = opt32(p, OPT_SERVER, d->server);
    if (type != NAK) {
        if (type != ACK || yiaddr)
            p = opt32(p, OPT_LEASE, d->lease_secs);
        p = opt32(p, OPT_MASK, d->mask);
        p = opt32(p, OPT_ROUTER, d->server);
        if (d->dns)
            p = opt32(p, OPT_DNS, d->dns);
        p = opt32(p, OPT_BROADCAST, (d->server & d->mask) | ~d->mask);
    }
    *p++ = OPT_END;
    int len = (int)(p - out);
    return len < 300 ? 300 : len;              /* BOOTP's minimum, some clients insist */
}

int dhcpd_handle(struct dhcpd *d, const uint8_t *pkt, size_t len, int64_t now, uint8_t *out,
                 size_t out_max, uint32_t *dest)
{
    struct dhcp_req r;
    if (out_max < DHCPD_PACKET_MAX || parse(pkt, len, &r) < 0)
        return -EINVAL;
    *dest = r.ciaddr ? r.ciaddr : 0xffffffffu;
    struct dhcpd_lease *l;
    switch (r.type) {
    case DISCOVER:
        if (!(l = choose(d, &r, now)))
            return 0;                          /* range exhausted: stay silent */
        if (!l->bound || l->expires <= now)
            l->expires = now + OFFER_HOLD;
        return reply(d, pkt, OFFER, l->ip, out);
    case REQUEST: {
        if (r.server && r.server != d->server) {
            if ((l = by_mac(d, r.chaddr)) && !l->bound)
                l->expires = now;              /* it took another server's offer */
            return 0;
        }
        uint32_t want = r.req_ip ? r.req_ip : r.ciaddr;
        l = by_mac(d, r.chaddr);
        if (!l || l->ip != want || ip_taken(d, want, r.chaddr, now)) {
            struct dhcp_req again = r;
            again.req_ip = want;
            l = in_range(d, want) ? choose(d, &again, now) : NULL;
            if (!l || l->ip != want)
                return reply(d, pkt, NAK, 0, out);
        }
        l->bound = true;
        l->expires = now + d->lease_secs;
        if (r.host[0])
            snprintf(l->host, sizeof(l->host), "%s", r.host);
        return reply(d, pkt, ACK, l->ip, out);
    }
    case RELEASE:
    case DECLINE:
        if ((l = by_mac(d, r.chaddr)))
            l->expires = now;
        return 0;
    case INFORM:
        return reply(d, pkt, ACK, 0, out);
    default:
        return 0;
    }
}

uint32_t dhcpd_find_host(const struct dhcpd *d, const char *name, int64_t now)
{
    for (int i = 0; i < d->n; i++)
        if (d->lease[i].bound && d->lease[i].expires > now && d->lease[i].host[0] &&
            !strcasecmp(d->lease[i].host, name))
            return d->lease[i].ip;
    return 0;
}
