/* -netdev socket: frames over a TCP stream (listen=/connect=, QEMU's
 * 4-byte length framing, so a QEMU on the other end interoperates), or
 * UDP datagrams, one frame each (mcast=, udp= with localaddr=). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/net_int.h"
#include "util/mainloop.h"

struct netsock {
    struct net_client nc;
    struct mainloop *ml;
    int listen_fd, fd;
    bool stream, polling;
    struct sockaddr_in dgram_dst;
    char desc[96];
    struct net_stream_rx rx;
};

int net_parse_inet(const char *s, struct sockaddr_in *sa, struct error *err)
{
    const char *colon = strrchr(s, ':');
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || end == colon + 1 || *end || port < 0 || port > 65535)
        return error_set(err, -EINVAL, "'%s' is not host:port", s);
    sa->sin_port = htons((uint16_t)port);
    char host[64];
    int hl = (int)(colon - s);
    if (hl >= (int)sizeof(host))
        return error_set(err, -EINVAL, "host name too long in '%s'", s);
    snprintf(host, sizeof(host), "%.*s", hl, s);
    if (!*host)
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcmp(host, "localhost"))
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return error_set(err, -EINVAL, "'%s' is not an IPv4 address", host);
    return 0;
}

static void sock_close_conn(struct netsock *s)
{
    if (s->fd >= 0) {
        ml_del_fd(s->ml, s->fd);
        close(s->fd);
        s->fd = -1;
    }
    s->rx.have_len = 0;
}

static void sock_frame(void *opaque, const uint8_t *frame, size_t len)
{
    struct netsock *s = opaque;
    net_send_buf(&s->nc, frame, len);
}

static void sock_poll(struct netsock *s, bool on)
{
    if (s->fd >= 0 && s->polling != on) {
        ml_mod_fd(s->ml, s->fd, on ? EPOLLIN : 0);
        s->polling = on;
    }
}

static void sock_readable(void *opaque, uint32_t events)
{
    struct netsock *s = opaque;
    static uint8_t buf[NET_MAX_FRAME + 4];
    for (int i = 0; i < 64 && s->fd >= 0; i++) {
        if (!net_peer_can_receive(&s->nc)) {
            sock_poll(s, false);          /* resume() turns it back on */
            return;
        }
        ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (!s->stream) {
            if (n >= 0)
                sock_frame(s, buf, (size_t)n);
            continue;
        }
        if (n <= 0) {
            sock_close_conn(s);           /* peer gone: wait for the next one (listen=) */
            return;
        }
        if (net_stream_feed(&s->rx, buf, (size_t)n, sock_frame, s) < 0) {
            warn_report("netdev %s: peer sent a frame over %d bytes; closing the connection",
                        s->nc.name, NET_MAX_FRAME);
            sock_close_conn(s);
            return;
        }
    }
}

static void sock_resume(struct net_client *nc)
{
    sock_poll(nc->opaque, true);
}

static void sock_accept(void *opaque, uint32_t events)
{
    struct netsock *s = opaque;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);   /* blocking writes keep frames whole */
    if (fd < 0)
        return;
    if (s->fd >= 0) {
        close(fd);                        /* one peer at a time, as QEMU */
        return;
    }
    s->fd = fd;
    s->polling = true;
    ml_add_fd(s->ml, fd, EPOLLIN, sock_readable, s);
}

static ssize_t sock_receive(struct net_client *nc, const struct iovec *iov, int cnt)
{
    struct netsock *s = nc->opaque;
    if (s->fd < 0)
        return -ENOTCONN;
    size_t len = 0;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    struct iovec v[17];
    uint8_t hdr[4] = { len >> 24, len >> 16, len >> 8, len };
    int k = 0;
    if (s->stream)
        v[k++] = (struct iovec){ hdr, 4 };
    for (int i = 0; i < cnt && k < 17; i++)
        v[k++] = iov[i];
    struct msghdr m = { .msg_iov = v, .msg_iovlen = k };
    if (!s->stream) {
        m.msg_name = &s->dgram_dst;
        m.msg_namelen = sizeof(s->dgram_dst);
    }
    size_t want = len + (s->stream ? 4 : 0), done = 0;
    while (done < want) {
        ssize_t n = sendmsg(s->fd, &m, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return done ? (ssize_t)len : -errno;
        if (!s->stream)
            break;
        done += (size_t)n;
        while (k && (size_t)n >= m.msg_iov[0].iov_len) {
            n -= (ssize_t)m.msg_iov[0].iov_len;
            m.msg_iov++;
            k--;
        }
        m.msg_iovlen = k;
        if (k) {
            m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + n;
            m.msg_iov[0].iov_len -= (size_t)n;
        }
    }
    return (ssize_t)len;
}

static void sock_info(struct net_client *nc, char *buf, int len)
{
    struct netsock *s = nc->opaque;
    snprintf(buf, len, "%s%s", s->desc, s->stream && s->fd < 0 ? " (not connected)" : "");
}

static const struct net_client_ops sock_ops = {
    .type = "socket", .receive = sock_receive, .resume = sock_resume, .info = sock_info,
};

static int sock_open(struct netsock *s, struct opts *o, struct error *err)
{
    const char *listen_a = opts_get(o, "listen"), *connect_a = opts_get(o, "connect");
    const char *mcast = opts_get(o, "mcast"), *udp = opts_get(o, "udp");
    const char *local = opts_get(o, "localaddr");
    if (opts_get(o, "fd"))
        return error_set(err, -ENOTSUP, "socket fd= is not supported; use listen= or connect=");
    int r0 = opts_check_unused(o, err);
    if (r0)
        return r0;
    int kinds = !!listen_a + !!connect_a + !!mcast + !!udp;
    if (kinds != 1)
        return error_set(err, -EINVAL, "exactly one of listen=, connect=, mcast= or udp= is "
                         "required");
    if (local && !udp && !mcast)
        return error_set(err, -EINVAL, "localaddr= is only for udp= and mcast=");
    struct sockaddr_in sa, la;
    const char *addr = listen_a ? listen_a : connect_a ? connect_a : mcast ? mcast : udp;
    int r = net_parse_inet(addr, &sa, err);
    if (!r && local)
        r = net_parse_inet(local, &la, err);
    if (r)
        return r;
    s->stream = listen_a || connect_a;
    int fd = socket(AF_INET, (s->stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_set_errno(err, -errno, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    snprintf(s->desc, sizeof(s->desc), "%s=%s", listen_a ? "listen" : connect_a ? "connect"
                                               : mcast ? "mcast" : "udp", addr);
    if (listen_a) {
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
            r = error_set_errno(err, -errno, "can't listen on %s", listen_a);
            close(fd);
            return r;
        }
        s->listen_fd = fd;
        return ml_add_fd(s->ml, fd, EPOLLIN, sock_accept, s);
    }
    if (connect_a) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            r = error_set_errno(err, -errno, "can't connect to %s", connect_a);
            close(fd);
            return r;
        }
    } else if (mcast) {
        struct ip_mreq mr = { sa.sin_addr, { local ? la.sin_addr.s_addr : htonl(INADDR_ANY) } };
        struct sockaddr_in b = sa;
        if (!IN_MULTICAST(ntohl(sa.sin_addr.s_addr)) ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&b, sizeof(b)) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
            r = error_set_errno(err, errno ? -errno : -EINVAL, "can't join multicast %s", mcast);
            close(fd);
            return r;
        }
        if (local)
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &la.sin_addr, sizeof(la.sin_addr));
        s->dgram_dst = sa;
    } else {
        if (!local) {
            close(fd);
            return error_set(err, -EINVAL, "udp= needs localaddr=");
        }
        if (bind(fd, (struct sockaddr *)&la, sizeof(la)) < 0) {
            r = error_set_errno(err, -errno, "can't bind %s", local);
            close(fd);
            return r;
        }
        s->dgram_dst = sa;
    }
    if (!s->stream)
        fcntl(fd, F_SETFL, O_NONBLOCK | fcntl(fd, F_GETFL));
    s->fd = fd;
    s->polling = true;
    return ml_add_fd(s->ml, fd, EPOLLIN, sock_readable, s);
}

int net_socket_create(struct mainloop *ml, struct opts *o, const char *name,
                      struct net_client **out, struct error *err)
{
    struct netsock *s = calloc(1, sizeof(*s));
    if (!s)
        return error_set(err, -ENOMEM, "out of memory");
    s->ml = ml;
    s->fd = s->listen_fd = -1;
    int r = sock_open(s, o, err);
    if (!r)
        r = net_client_add(&s->nc, &sock_ops, name, s);
    if (r) {
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return r;
    }
    *out = &s->nc;
    return 0;
}
