/* libFuzzer target: quokka-net's DHCP server and DNS answerer take packets
 * from any guest on the bridge and run as root on the host. The input is a
 * sequence of packets (2-byte length, then the bytes); byte 0 of each says
 * whether it is a DHCP request or a DNS query. Replies must stay within
 * their buffers and be well formed; leases must stay within the range and
 * never be given to two clients at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "net/dhcpd.h"
#include "net/dnsd.h"

#define LO 0xc0a84280u            /* 192.168.66.128 */
#define HI 0xc0a84283u            /* four addresses: exhaustion is reachable */

static struct dhcpd d;

static uint32_t lookup(void *opaque, const char *name)
{
    return strcmp(name, "vm-a") ? dhcpd_find_host(&d, name, 100) : 0xc0a84201u;
}

static void check_leases(int64_t now)
{
    for (int i = 0; i < d.n; i++) {
        if (d.lease[i].expires <= now)
            continue;
        if (d.lease[i].ip < LO || d.lease[i].ip > HI)
            abort();
        for (int j = i + 1; j < d.n; j++)
            if (d.lease[j].expires > now && d.lease[j].ip == d.lease[i].ip)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dhcpd_init(&d, 0xc0a84201u, 0xffffff00u, LO, HI, 3600);
    int64_t now = 100;
    while (size >= 3) {
        size_t len = (size_t)(data[0] << 8 | data[1]) % 1500;
        uint8_t kind = data[2];
        data += 3;
        size -= 3;
        if (len > size)
            len = size;
        uint8_t *pkt = malloc(len ? len : 1);   /* exact size: ASan sees over-reads */
        memcpy(pkt, data, len);
        uint8_t out[DHCPD_PACKET_MAX + 16];
        memset(out + DHCPD_PACKET_MAX, 0xa5, 16);
        if (kind & 1) {
            uint32_t dest;
            int r = dhcpd_handle(&d, pkt, len, now, out, DHCPD_PACKET_MAX, &dest);
            if (r > DHCPD_PACKET_MAX || (r > 0 && out[0] != 2))
                abort();
            check_leases(now);
        } else {
            int r = dnsd_answer(pkt, len, lookup, NULL, out, DNSD_PACKET_MAX);
            if (r > DNSD_PACKET_MAX || (r > 0 && (r < 12 || !(out[2] & 0x80))))
                abort();
        }
        for (int i = 0; i < 16; i++)
            if (out[DHCPD_PACKET_MAX + i] != 0xa5)
                abort();
        free(pkt);
        data += len;
        size -= len;
        now += kind >> 4;                    /* time moves: leases and offers expire */
    }
    return 0;
}
