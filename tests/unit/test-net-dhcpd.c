/* quokka-net's DHCP server and DNS answerer, packet in, packet out: leases
 * per client, exhaustion, NAK for an address not ours to give, RELEASE,
 * another server's offer taken, host names; DNS answers for local names,
 * empty answers for other types, forwarding for the rest, malformed
 * queries refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include "net/dhcpd.h"
#include "net/dnsd.h"

#define SERVER 0xc0a84201u        /* 192.168.66.1 */
#define LO 0xc0a84280u
#define HI 0xc0a84281u            /* two addresses */

static struct dhcpd d;
static uint8_t out[DHCPD_PACKET_MAX];

static size_t req(uint8_t *p, uint8_t mac_last, uint8_t type, uint32_t want, uint32_t server,
                  const char *host)
{
    memset(p, 0, 300);
    p[0] = 1; p[1] = 1; p[2] = 6;
    p[4] = 0x12; p[7] = mac_last;                 /* xid */
    memcpy(p + 28, (uint8_t[]){ 2, 0, 0, 0, 0, mac_last }, 6);
    memcpy(p + 236, (uint8_t[]){ 0x63, 0x82, 0x53, 0x63 }, 4);
    size_t i = 240;
    p[i++] = 53; p[i++] = 1; p[i++] = type;
    if (want) {
        p[i++] = 50; p[i++] = 4;
        for (int k = 3; k >= 0; k--)
            p[i++] = (uint8_t)(want >> (8 * k));
    }
    if (server) {
        p[i++] = 54; p[i++] = 4;
        for (int k = 3; k >= 0; k--)
            p[i++] = (uint8_t)(server >> (8 * k));
    }
    if (host) {
        p[i++] = 12; p[i++] = (uint8_t)strlen(host);
        memcpy(p + i, host, strlen(host));
        i += strlen(host);
    }
    p[i++] = 255;
    return i;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* The reply's message type (0: none) and its yiaddr. */
static int ask(uint8_t mac, uint8_t type, uint32_t want, uint32_t server, const char *host,
               int64_t now, uint32_t *yi)
{
    uint8_t p[400];
    size_t n = req(p, mac, type, want, server, host);
    uint32_t dest;
    int r = dhcpd_handle(&d, p, n, now, out, sizeof(out), &dest);
    assert_true(r >= 0);
    if (!r)
        return 0;
    assert_int_equal(dest, 0xffffffffu);
    assert_int_equal(out[0], 2);
    assert_int_equal(out[7], mac);                /* xid echoed */
    *yi = be32(out + 16);
    for (int i = 240; i < r && out[i] != 255; i += 2 + out[i + 1])
        if (out[i] == 53)
            return out[i + 2];
    return -1;
}

static void test_leases(void **state)
{
    dhcpd_init(&d, SERVER, 0xffffff00u, LO, HI, 3600);
    uint32_t a, b, c;
    assert_int_equal(ask(1, 1, 0, 0, NULL, 10, &a), 2);           /* OFFER */
    assert_int_equal(a, LO);
    assert_int_equal(ask(1, 3, a, SERVER, "vm-a", 10, &a), 5);    /* ACK */
    assert_int_equal(dhcpd_find_host(&d, "VM-A", 11), LO);
    assert_int_equal(ask(2, 1, 0, 0, NULL, 10, &b), 2);
    assert_int_equal(b, HI);                                       /* a different one */
    assert_int_equal(ask(3, 1, 0, 0, NULL, 10, &c), 0);           /* range full: silence */
    assert_int_equal(ask(3, 3, LO, 0, NULL, 10, &c), 6);          /* another's address: NAK */
    assert_int_equal(ask(3, 3, 0x0a000001u, 0, NULL, 10, &c), 6); /* outside the range: NAK */
    /* client 2 takes another server's offer: its held address comes free */
    assert_int_equal(ask(2, 3, b, 0x0a000001u, NULL, 11, &b), 0);
    assert_int_equal(ask(3, 1, 0, 0, NULL, 12, &c), 2);
    assert_int_equal(c, HI);
    /* client 1 releases; a renewal of the same address by 1 works again */
    assert_int_equal(ask(1, 7, 0, SERVER, NULL, 13, &a), 0);
    assert_int_equal(dhcpd_find_host(&d, "vm-a", 14), 0);
    assert_int_equal(ask(1, 3, LO, 0, NULL, 14, &a), 5);
    assert_int_equal(a, LO);
    /* leases end */
    assert_int_equal(dhcpd_find_host(&d, "vm-a", 14 + 3600 + 1), 0);
}

static void test_not_dhcp(void **state)
{
    dhcpd_init(&d, SERVER, 0xffffff00u, LO, HI, 3600);
    uint8_t p[400];
    uint32_t dest;
    size_t n = req(p, 1, 1, 0, 0, NULL);
    p[236] = 0;                                                    /* no magic cookie */
    assert_int_equal(dhcpd_handle(&d, p, n, 0, out, sizeof(out), &dest), -EINVAL);
    n = req(p, 1, 1, 0, 0, NULL);
    assert_int_equal(dhcpd_handle(&d, p, 200, 0, out, sizeof(out), &dest), -EINVAL);
    p[0] = 2;                                                      /* a reply, not a request */
    assert_int_equal(dhcpd_handle(&d, p, n, 0, out, sizeof(out), &dest), -EINVAL);
}

static uint32_t lookup(void *opaque, const char *name)
{
    return strcmp(name, "vm-a") ? 0 : LO;
}

static size_t query(uint8_t *q, const char *label, uint16_t type)
{
    memcpy(q, (uint8_t[]){ 0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 }, 12);
    size_t i = 12, n = strlen(label);
    q[i++] = (uint8_t)n;
    memcpy(q + i, label, n);
    i += n;
    q[i++] = 0;
    q[i++] = 0; q[i++] = (uint8_t)type;
    q[i++] = 0; q[i++] = 1;
    return i;
}

static void test_dns(void **state)
{
    uint8_t q[64], r[DNSD_PACKET_MAX];
    size_t n = query(q, "vm-a", 1);
    int len = dnsd_answer(q, n, lookup, NULL, r, sizeof(r));
    assert_int_equal(len, (int)n + 16);
    assert_int_equal(r[0], 0xab);
    assert_true(r[2] & 0x80);                                      /* a response */
    assert_int_equal(r[3] & 15, 0);                                /* NOERROR */
    assert_int_equal(r[7], 1);                                     /* one answer */
    assert_int_equal(be32(r + len - 4), LO);
    n = query(q, "vm-a", 28);                                      /* AAAA: none */
    len = dnsd_answer(q, n, lookup, NULL, r, sizeof(r));
    assert_int_equal(len, (int)n);
    assert_int_equal(r[7], 0);
    n = query(q, "example", 1);
    assert_int_equal(dnsd_answer(q, n, lookup, NULL, r, sizeof(r)), 0);   /* forward it */
    n = query(q, "vm-a", 1);
    q[12] = 0xc0;                                                  /* a compression pointer */
    assert_int_equal(dnsd_answer(q, n, lookup, NULL, r, sizeof(r)), -EINVAL);
    n = query(q, "vm-a", 1);
    q[2] |= 0x80;                                                  /* a response */
    assert_int_equal(dnsd_answer(q, n, lookup, NULL, r, sizeof(r)), -EINVAL);
    assert_int_equal(dnsd_answer(q, 14, lookup, NULL, r, sizeof(r)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leases),
        cmocka_unit_test(test_not_dhcp),
        cmocka_unit_test(test_dns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
