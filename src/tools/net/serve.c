/* The DHCP/DNS daemon behind `quokka-net up --dhcp` without dnsmasq. One
 * process, three UDP sockets, one poll loop: DHCP on port 67 of the bridge,
 * DNS on the bridge's address (local names answered, the rest relayed to
 * the host's resolver with a fresh ID), and the socket facing upstream. */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "net/dhcpd.h"
#include "net/dnsd.h"

#define FWD_SLOTS 256
#define FWD_TIMEOUT 10                /* seconds a relayed query waits for upstream */

struct fwd {
    uint16_t id, client_id;
    struct sockaddr_in client;
    int64_t sent;                     /* 0: free */
};

struct server {
    int dhcp_fd, dns_fd, up_fd;
    char host[64];
    struct dhcpd dhcp;
    struct fwd fwd[FWD_SLOTS];
    uint16_t next_id;
};

static int64_t now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec;
}

uint32_t serve_upstream(void)
{
    struct in_addr a;
    const char *e = getenv("QUOKKA_NET_DNS_UPSTREAM");
    if (e)
        return inet_pton(AF_INET, e, &a) == 1 ? ntohl(a.s_addr) : 0;
    FILE *f = fopen("/etc/resolv.conf", "r");
    char line[256], ns[64];
    uint32_t r = 0;
    while (f && !r && fgets(line, sizeof(line), f))
        if (sscanf(line, " nameserver %63s", ns) == 1 && inet_pton(AF_INET, ns, &a) == 1)
            r = ntohl(a.s_addr);
    if (f)
        fclose(f);
    return r;
}

static int udp_socket(const char *dev, uint32_t addr, uint16_t port, bool bcast)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(addr) };
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if ((bcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0) ||
        (dev && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, strlen(dev) + 1) < 0) ||
        (port && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static uint32_t local_name(void *opaque, const char *name)
{
    struct server *s = opaque;
    if (s->host[0] && !strcasecmp(name, s->host))
        return s->dhcp.server;
    return dhcpd_find_host(&s->dhcp, name, now_s());
}

static void on_dhcp(struct server *s)
{
    uint8_t in[1500], out[DHCPD_PACKET_MAX];
    ssize_t n = recv(s->dhcp_fd, in, sizeof(in), 0);
    uint32_t dest;
    int len = n > 0 ? dhcpd_handle(&s->dhcp, in, (size_t)n, now_s(), out, sizeof(out), &dest) : 0;
    if (len <= 0)
        return;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(68),
                              .sin_addr.s_addr = htonl(dest) };
    sendto(s->dhcp_fd, out, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to));
}

static void on_dns_query(struct server *s)
{
    uint8_t q[DNSD_PACKET_MAX], out[DNSD_PACKET_MAX];
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(s->dns_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    if (n < 12)
        return;
    int len = dnsd_answer(q, (size_t)n, local_name, s, out, sizeof(out));
    if (len > 0) {
        sendto(s->dns_fd, out, (size_t)len, 0, (struct sockaddr *)&from, fl);
        return;
    }
    if (len < 0 || s->up_fd < 0)
        return;
    uint16_t id = s->next_id++;
    struct fwd *f = &s->fwd[id % FWD_SLOTS];   /* the oldest relay in this slot gives way */
    f->id = id;
    f->client_id = (uint16_t)(q[0] << 8 | q[1]);
    f->client = from;
    f->sent = now_s();
    q[0] = (uint8_t)(id >> 8);
    q[1] = (uint8_t)id;
    send(s->up_fd, q, (size_t)n, 0);
}

static void on_dns_reply(struct server *s)
{
    uint8_t r[4096];
    ssize_t n = recv(s->up_fd, r, sizeof(r), 0);
    if (n < 12)
        return;
    uint16_t id = (uint16_t)(r[0] << 8 | r[1]);
    struct fwd *f = &s->fwd[id % FWD_SLOTS];
    if (!f->sent || f->id != id || now_s() - f->sent > FWD_TIMEOUT)
        return;
    r[0] = (uint8_t)(f->client_id >> 8);
    r[1] = (uint8_t)f->client_id;
    f->sent = 0;
    sendto(s->dns_fd, r, (size_t)n, 0, (struct sockaddr *)&f->client, sizeof(f->client));
}

static void serve_loop(struct server *s)
{
    for (;;) {
        /* a negative fd is skipped by poll */
        struct pollfd p[3] = { { s->dhcp_fd, POLLIN, 0 }, { s->dns_fd, POLLIN, 0 },
                               { s->up_fd, POLLIN, 0 } };
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            return;
        if (p[0].revents & POLLIN)
            on_dhcp(s);
        if (s->dns_fd >= 0 && (p[1].revents & POLLIN))
            on_dns_query(s);
        if (s->up_fd >= 0 && (p[2].revents & POLLIN))
            on_dns_reply(s);
    }
}

static int open_sockets(struct server *s, const struct serve_conf *c)
{
    s->dhcp_fd = udp_socket(c->bridge, INADDR_ANY, 67, true);
    if (s->dhcp_fd < 0) {
        fprintf(stderr, "quokka-net: DHCP on %s: %s\n", c->bridge, strerror(-s->dhcp_fd));
        return s->dhcp_fd;
    }
    s->dns_fd = udp_socket(NULL, c->addr, 53, false);
    if (s->dns_fd < 0) {
        /* Another DNS server holds port 53 on every address: serve DHCP
         * alone and hand out the host's resolver if guests can reach it. */
        bool loop = (c->upstream >> 24) == 127;
        s->dhcp.dns = loop ? 0 : c->upstream;
        fprintf(stderr, "quokka-net: no DNS on %s (%s); DHCP offers %s\n", c->bridge,
                strerror(-s->dns_fd), s->dhcp.dns ? "the host's resolver" : "no DNS server");
    }
    s->up_fd = -1;
    if (s->dns_fd < 0)
        return 0;
    struct sockaddr_in up = { .sin_family = AF_INET, .sin_port = htons(53),
                              .sin_addr.s_addr = htonl(c->upstream) };
    if (c->upstream && (s->up_fd = udp_socket(NULL, 0, 0, false)) >= 0 &&
        connect(s->up_fd, (struct sockaddr *)&up, sizeof(up)) < 0) {
        close(s->up_fd);
        s->up_fd = -1;
    }
    return 0;
}

pid_t serve_start(const struct serve_conf *c)
{
    static struct server s;                   /* big (the lease table): not on the stack */
    memset(&s, 0, sizeof(s));
    dhcpd_init(&s.dhcp, c->addr, c->mask, c->lo, c->hi, 3600);
    if (gethostname(s.host, sizeof(s.host)) < 0)
        s.host[0] = 0;
    int r = open_sockets(&s, c);
    if (r < 0)
        return r;
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        serve_loop(&s);
        _exit(1);
    }
    int e = pid < 0 ? -errno : 0;
    close(s.dhcp_fd);
    if (s.dns_fd >= 0)
        close(s.dns_fd);
    if (s.up_fd >= 0)
        close(s.up_fd);
    return pid < 0 ? e : pid;
}
