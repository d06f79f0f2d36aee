/* The net layer without a guest: bridge.conf rules, MAC derivation, QEMU's
 * stream framing, peer delivery with queues and limits, and a socket
 * netdev on loopback fed good, oversized and truncated frames by a peer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/bridge-conf.h"
#include "net/net.h"
#include "util/mainloop.h"

/* ---- bridge.conf ---- */

static int acl(const char *text, const char *br, struct bridge_acl *a, struct error *e)
{
    memset(a, 0, sizeof(*a));
    return bridge_conf_parse(text, "bridge.conf", br, a, e);
}

static void test_bridge_conf_rules(void **state)
{
    struct bridge_acl a;
    struct error e = {0};
    assert_int_equal(acl("allow br0\n", "br0", &a, &e), 0);
    assert_true(a.allowed && !a.denied);
    assert_int_equal(acl("allow br0\n", "br1", &a, &e), 0);
    assert_false(a.allowed);
    assert_int_equal(acl("# comment\n\n  allow all   # trailing\n", "virbr9", &a, &e), 0);
    assert_true(a.allowed);
    /* deny wins whatever the order, as qemu-bridge-helper */
    assert_int_equal(acl("deny br0\nallow all\n", "br0", &a, &e), 0);
    assert_true(a.allowed && a.denied);
    assert_int_equal(acl("allow all\ndeny all\n", "x", &a, &e), 0);
    assert_true(a.denied);
    assert_int_equal(acl("", "br0", &a, &e), 0);
    assert_false(a.allowed);
}

static void test_bridge_conf_errors(void **state)
{
    struct bridge_acl a;
    struct error e = {0};
    assert_int_equal(acl("allow br0\npermit br1\n", "br0", &a, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "bridge.conf:2"));
    assert_non_null(strstr(e.msg, "permit"));
    struct error e2 = {0};
    assert_int_equal(acl("allow\n", "br0", &a, &e2), -EINVAL);
    struct error e3 = {0};
    assert_int_equal(acl("allow br0 br1\n", "br0", &a, &e3), -EINVAL);
    struct error e4 = {0};
    assert_true(acl("include /nonexistent/quokka.conf\n", "br0", &a, &e4) < 0);
    assert_non_null(strstr(e4.msg, "/nonexistent/quokka.conf"));
}

static void test_bridge_conf_include(void **state)
{
    char dir[] = "/tmp/quokka-brconf.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char inc[300], loop[300], text[700];
    snprintf(inc, sizeof(inc), "%s/inc.conf", dir);
    snprintf(loop, sizeof(loop), "%s/loop.conf", dir);
    FILE *f = fopen(inc, "w");
    fprintf(f, "allow brX\n");
    fclose(f);
    f = fopen(loop, "w");
    fprintf(f, "include %s\n", loop);
    fclose(f);
    struct bridge_acl a;
    struct error e = {0};
    snprintf(text, sizeof(text), "include %s\n", inc);
    assert_int_equal(acl(text, "brX", &a, &e), 0);
    assert_true(a.allowed);
    memset(&a, 0, sizeof(a));
    assert_int_equal(bridge_conf_check(inc, "brY", &a, &e), 0);
    assert_false(a.allowed);
    struct error e2 = {0};
    memset(&a, 0, sizeof(a));
    assert_int_equal(bridge_conf_check(loop, "brX", &a, &e2), -ELOOP);
    unlink(inc);
    unlink(loop);
    rmdir(dir);
}

/* ---- MAC ---- */

static void test_mac(void **state)
{
    uint8_t a[6], b[6], c[6], d[6];
    net_derive_mac("vm1", 100, 0, a);
    net_derive_mac("vm1", 200, 0, b);
    net_derive_mac("vm1", 100, 1, c);
    net_derive_mac("vm2", 100, 0, d);
    assert_memory_equal(a, b, 6);          /* the name decides, not the pid */
    assert_memory_not_equal(a, c, 6);
    assert_memory_not_equal(a, d, 6);
    assert_true((a[0] & 2) && !(a[0] & 1)); /* locally administered unicast */
    uint8_t p1[6], p2[6];
    net_derive_mac(NULL, 100, 0, p1);
    net_derive_mac(NULL, 101, 0, p2);
    assert_memory_not_equal(p1, p2, 6);
    uint8_t m[6];
    assert_int_equal(net_parse_mac("52:54:00:12:34:57", m), 0);
    assert_int_equal(m[5], 0x57);
    char s[18];
    net_format_mac(m, s, sizeof(s));
    assert_string_equal(s, "52:54:00:12:34:57");
    assert_int_equal(net_parse_mac("52:54:00:12:34", m), -EINVAL);
    assert_int_equal(net_parse_mac("52:54:00:12:34:57:00", m), -EINVAL);
    assert_int_equal(net_parse_mac("01:00:5e:00:00:01", m), -EINVAL);   /* multicast */
    assert_int_equal(net_parse_mac("zz:54:00:12:34:57", m), -EINVAL);
}

/* ---- stream framing ---- */

struct frames {
    int n;
    size_t len[8];
    uint8_t first[8];
};

static void on_frame(void *opaque, const uint8_t *f, size_t len)
{
    struct frames *fr = opaque;
    if (fr->n < 8) {
        fr->len[fr->n] = len;
        fr->first[fr->n] = f[0];
    }
    fr->n++;
}

static size_t put_frame(uint8_t *p, size_t len, uint8_t fill)
{
    p[0] = len >> 24; p[1] = len >> 16; p[2] = len >> 8; p[3] = len;
    memset(p + 4, fill, len);
    return 4 + len;
}

static void test_framing(void **state)
{
    static uint8_t stream[200000];
    static struct net_stream_rx rx;
    size_t n = put_frame(stream, 60, 0xa1);
    n += put_frame(stream + n, 0, 0);                 /* empty frames are skipped */
    n += put_frame(stream + n, 1514, 0xb2);
    n += put_frame(stream + n, NET_MAX_FRAME, 0xc3);
    for (size_t chunk = 1; chunk < 9000; chunk = chunk * 3 + 1) {
        struct frames fr = {0};
        memset(&rx, 0, sizeof(rx));
        for (size_t off = 0; off < n; off += chunk)
            assert_int_equal(net_stream_feed(&rx, stream + off, off + chunk > n ? n - off : chunk,
                                             on_frame, &fr), 0);
        assert_int_equal(fr.n, 3);
        assert_int_equal(fr.len[0], 60);
        assert_int_equal(fr.first[0], 0xa1);
        assert_int_equal(fr.len[1], 1514);
        assert_int_equal(fr.first[1], 0xb2);
        assert_int_equal(fr.len[2], NET_MAX_FRAME);
        assert_int_equal(fr.first[2], 0xc3);
    }
    struct frames fr = {0};
    memset(&rx, 0, sizeof(rx));
    uint8_t big[4] = { 0, 1, 0, 1 };                  /* 65537 */
    assert_int_equal(net_stream_feed(&rx, big, 4, on_frame, &fr), -EMSGSIZE);
    assert_int_equal(fr.n, 0);
}

/* ---- peers and queues ---- */

struct sink {
    struct net_client nc;
    bool room;
    int got;
    size_t last_len;
    uint8_t last_first;
    int resumed;
};

static ssize_t sink_receive(struct net_client *nc, const struct iovec *iov, int n)
{
    struct sink *s = nc->opaque;
    s->got++;
    s->last_len = 0;
    for (int i = 0; i < n; i++)
        s->last_len += iov[i].iov_len;
    s->last_first = ((uint8_t *)iov[0].iov_base)[0];
    return (ssize_t)s->last_len;
}

static bool sink_can_receive(struct net_client *nc) { return ((struct sink *)nc->opaque)->room; }
static void sink_resume(struct net_client *nc) { ((struct sink *)nc->opaque)->resumed++; }

static const struct net_client_ops sink_ops = {
    .type = "test", .receive = sink_receive, .can_receive = sink_can_receive,
    .resume = sink_resume,
};

static void test_queue(void **state)
{
    struct sink a = { .room = true }, b = { .room = false };
    assert_int_equal(net_client_add(&a.nc, &sink_ops, "qa", &a), 0);
    assert_int_equal(net_client_add(&b.nc, &sink_ops, "qb", &b), 0);
    a.nc.is_nic = true;
    assert_int_equal(net_client_connect(&a.nc, &b.nc, NULL), 0);
    struct sink c = { .room = true };
    struct error e = {0};
    assert_int_equal(net_client_add(&c.nc, &sink_ops, "qc", &c), 0);
    assert_int_equal(net_client_connect(&c.nc, &b.nc, &e), -EBUSY);   /* one NIC per netdev */

    static uint8_t frame[NET_MAX_FRAME + 1];
    frame[0] = 1;
    assert_true(net_send_buf(&b.nc, frame, 60) > 0);                  /* a has room */
    assert_int_equal(a.got, 1);
    assert_true(net_send_buf(&a.nc, frame, 60) == 0);                 /* b is full: queued */
    assert_false(net_peer_can_receive(&a.nc));
    for (int i = 1; i < NET_QUEUE_MAX; i++) {
        frame[0] = (uint8_t)(i + 1);
        assert_int_equal(net_send_buf(&a.nc, frame, 64), 0);
    }
    assert_true(net_send_buf(&a.nc, frame, 64) < 0);                  /* the bound */
    assert_int_equal(b.nc.dropped, 1);
    assert_true(net_send_buf(&a.nc, frame, NET_MAX_FRAME + 1) < 0);   /* oversized */
    assert_true(net_send_buf(&a.nc, frame, 10) < 0);                  /* runt */
    b.room = true;
    net_client_ready(&b.nc);
    assert_int_equal(b.got, NET_QUEUE_MAX);
    assert_int_equal(b.last_first, (uint8_t)NET_QUEUE_MAX);           /* in order */
    assert_int_equal(a.resumed, 1);
    a.nc.link_down = true;
    assert_true(net_send_buf(&b.nc, frame, 60) < 0);
    net_client_remove(&a.nc);
    net_client_remove(&b.nc);
    net_client_remove(&c.nc);
}

/* ---- socket netdev fed by a hostile peer ---- */

static void *loop_thread(void *ml)
{
    ml_run(ml);
    return NULL;
}

static int wait_got(struct mainloop *ml, struct sink *s, int want)
{
    for (int i = 0; i < 400; i++) {
        ml_lock(ml);
        int g = s->got;
        ml_unlock(ml);
        if (g >= want)
            return g;
        usleep(5000);
    }
    return s->got;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { AF_INET, htons((uint16_t)port), { htonl(INADDR_LOOPBACK) } };
    for (int i = 0; i < 100; i++) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        usleep(10000);
    }
    return -1;
}

static void test_socket_peer(void **state)
{
    struct mainloop *ml = ml_new();
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { AF_INET, 0, { htonl(INADDR_LOOPBACK) } };
    socklen_t sl = sizeof(sa);
    bind(probe, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(probe, (struct sockaddr *)&sa, &sl);
    int port = ntohs(sa.sin_port);
    close(probe);
    char spec[96];
    snprintf(spec, sizeof(spec), "socket,id=sk,listen=127.0.0.1:%d", port);
    struct error e = {0};
    assert_int_equal(net_backend_create(ml, spec, -1, &e), 0);
    struct sink nic = { .room = true };
    assert_int_equal(net_client_add(&nic.nc, &sink_ops, "nic", &nic), 0);
    nic.nc.is_nic = true;
    assert_int_equal(net_client_connect(&nic.nc, net_client_find("sk"), NULL), 0);
    pthread_t t;
    pthread_create(&t, NULL, loop_thread, ml);

    int fd = connect_to(port);
    assert_true(fd >= 0);
    static uint8_t buf[4 + NET_MAX_FRAME];
    size_t n = put_frame(buf, 98, 0x42);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    assert_int_equal(wait_got(ml, &nic, 1), 1);
    assert_int_equal(nic.last_len, 98);
    /* an oversized length closes this connection, and only it */
    uint8_t bad[8] = { 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4 };
    assert_int_equal(write(fd, bad, 8), 8);
    char c;
    assert_int_equal(read(fd, &c, 1), 0);
    close(fd);
    /* a new peer is served; frames from the NIC reach it framed */
    fd = connect_to(port);
    assert_true(fd >= 0);
    n = put_frame(buf, 1514, 0x43);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    assert_int_equal(wait_got(ml, &nic, 2), 2);
    assert_int_equal(nic.last_first, 0x43);
    memset(buf, 0x44, 70);
    ml_lock(ml);
    ssize_t sent = net_send_buf(&nic.nc, buf, 70);
    ml_unlock(ml);
    assert_int_equal(sent, 70);
    uint8_t in[74];
    size_t got = 0;
    while (got < sizeof(in)) {
        ssize_t r = read(fd, in + got, sizeof(in) - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_int_equal(in[3], 70);
    assert_int_equal(in[4], 0x44);
    /* a truncated frame followed by hang-up: nothing delivered, still serving */
    n = put_frame(buf, 500, 0x45);
    assert_int_equal(write(fd, buf, 100), 100);
    close(fd);
    fd = connect_to(port);
    assert_true(fd >= 0);
    n = put_frame(buf, 60, 0x46);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    assert_int_equal(wait_got(ml, &nic, 3), 3);
    assert_int_equal(nic.last_first, 0x46);
    close(fd);
    ml_quit(ml);
    pthread_join(t, NULL);
    net_client_remove(&nic.nc);
}

static int udp_bound(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    *sa = (struct sockaddr_in){ AF_INET, 0, { htonl(INADDR_LOOPBACK) } };
    socklen_t sl = sizeof(*sa);
    bind(fd, (struct sockaddr *)sa, sizeof(*sa));
    getsockname(fd, (struct sockaddr *)sa, &sl);
    return fd;
}

/* udp=REMOTE,localaddr=LOCAL: one frame per datagram, both ways. */
static void test_socket_udp(void **state)
{
    struct mainloop *ml = ml_new();
    struct sockaddr_in peer, local;
    int pfd = udp_bound(&peer);
    int tmp = udp_bound(&local);
    close(tmp);                                   /* a free port for the netdev */
    char spec[128];
    snprintf(spec, sizeof(spec), "socket,id=ud,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d",
             ntohs(peer.sin_port), ntohs(local.sin_port));
    struct error e = {0};
    assert_int_equal(net_backend_create(ml, spec, -1, &e), 0);
    struct error e2 = {0};
    assert_true(net_backend_create(ml, "socket,id=ud2,udp=127.0.0.1:9", -1, &e2) < 0);
    assert_non_null(strstr(e2.msg, "localaddr"));
    struct sink nic = { .room = true };
    assert_int_equal(net_client_add(&nic.nc, &sink_ops, "unic", &nic), 0);
    nic.nc.is_nic = true;
    assert_int_equal(net_client_connect(&nic.nc, net_client_find("ud"), NULL), 0);
    pthread_t t;
    pthread_create(&t, NULL, loop_thread, ml);
    uint8_t frame[80];
    memset(frame, 0x61, sizeof(frame));
    assert_int_equal(sendto(pfd, frame, 80, 0, (struct sockaddr *)&local, sizeof(local)), 80);
    assert_int_equal(wait_got(ml, &nic, 1), 1);
    assert_int_equal(nic.last_len, 80);
    assert_int_equal(nic.last_first, 0x61);
    memset(frame, 0x62, sizeof(frame));
    ml_lock(ml);
    net_send_buf(&nic.nc, frame, 64);
    ml_unlock(ml);
    uint8_t in[128];
    assert_int_equal(recv(pfd, in, sizeof(in), 0), 64);   /* no length prefix on datagrams */
    assert_int_equal(in[0], 0x62);
    close(pfd);
    ml_quit(ml);
    pthread_join(t, NULL);
    net_client_remove(&nic.nc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bridge_conf_rules),
        cmocka_unit_test(test_bridge_conf_errors),
        cmocka_unit_test(test_bridge_conf_include),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_socket_peer),
        cmocka_unit_test(test_socket_udp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
