/* -netdev user: libslirp's NAT stack (10.0.2.0/24 by default: gateway .2,
 * DNS .3, DHCP from .15). slirp's sockets are polled by a small thread of
 * our own that takes the device lock to let slirp act; slirp's timers are
 * main-loop timers. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "net/net_int.h"
#include "net/user.h"
#include "util/mainloop.h"

#define USER_MTU 65520
#define USER_MAX_WAIT_MS 1000

struct pollset {
    struct pollfd *pfd;
    int n, cap;
};

struct netuser {
    struct net_client nc;
    struct mainloop *ml;
    Slirp *slirp;
    pthread_t thread;
    int wake_fd;
    struct pollset set;            /* what the thread polls */
    struct pollset now;            /* what slirp wants after a guest frame (user_kick) */
    int64_t deadline;              /* when the thread's poll times out (clock_ns) */
    bool in_poll;                  /* the thread sleeps on set (under the device lock) */
    bool stale;                    /* slirp's poll indices point into now, not set */
    char desc[64];
    struct in_addr dhcp;           /* default guest address of hostfwd rules */
};

static ssize_t user_send_packet(const void *buf, size_t len, void *opaque)
{
    struct netuser *u = opaque;
    net_send_buf(&u->nc, buf, len);     /* queued by the net layer if the NIC is full */
    return (ssize_t)len;
}

static void user_guest_error(const char *msg, void *opaque)
{
    warn_report("netdev user: guest error: %s", msg);
}

static int64_t user_clock(void *opaque) { return clock_ns(); }

static void *user_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct netuser *u = opaque;
    return timer_new(u->ml, cb, cb_opaque);
}

static void user_timer_free(void *t, void *opaque) { timer_free(t); }
static void user_timer_mod(void *t, int64_t ms, void *opaque) { timer_mod(t, ms * 1000000); }
static void user_wake(void *opaque)
{
    struct netuser *u = opaque;
    uint64_t one = 1;
    if (write(u->wake_fd, &one, 8) < 0) {
        /* the counter is saturated: the thread is awake anyway */
    }
}

static void user_fd_change(int fd, void *opaque) { user_wake(opaque); }

static const SlirpCb user_cb = {
    .send_packet = user_send_packet, .guest_error = user_guest_error,
    .clock_get_ns = user_clock, .timer_new = user_timer_new, .timer_free = user_timer_free,
    .timer_mod = user_timer_mod, .register_poll_fd = user_fd_change,
    .unregister_poll_fd = user_fd_change, .notify = user_wake,
};

static int user_add_poll(int fd, int events, void *opaque)
{
    struct pollset *ps = opaque;
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 32;
        struct pollfd *p = realloc(ps->pfd, cap * sizeof(*p));
        if (!p)
            return -1;
        ps->pfd = p;
        ps->cap = cap;
    }
    short ev = 0;
    ev |= events & SLIRP_POLL_IN ? POLLIN : 0;
    ev |= events & SLIRP_POLL_OUT ? POLLOUT : 0;
    ev |= events & SLIRP_POLL_PRI ? POLLPRI : 0;
    ps->pfd[ps->n] = (struct pollfd){ fd, ev, 0 };
    return ps->n++;
}

static int user_get_revents(int idx, void *opaque)
{
    struct pollset *ps = opaque;
    if (idx < 0 || idx >= ps->n)
        return 0;
    short r = ps->pfd[idx].revents;
    return (r & POLLIN ? SLIRP_POLL_IN : 0) | (r & POLLOUT ? SLIRP_POLL_OUT : 0) |
           (r & POLLPRI ? SLIRP_POLL_PRI : 0) | (r & POLLERR ? SLIRP_POLL_ERR : 0) |
           (r & POLLHUP ? SLIRP_POLL_HUP : 0);
}

/* slirp's fds and timeout now, into ps (our wake fd first); the deadline. */
static int64_t user_fill(struct netuser *u, struct pollset *ps)
{
    uint32_t timeout = USER_MAX_WAIT_MS;
    ps->n = 0;
    user_add_poll(u->wake_fd, SLIRP_POLL_IN, ps);
    slirp_pollfds_fill(u->slirp, &timeout, user_add_poll, ps);
    if (timeout > USER_MAX_WAIT_MS)
        timeout = USER_MAX_WAIT_MS;
    return clock_ns() + (int64_t)timeout * 1000000;
}

/* Poll ps without waiting and let slirp act on it. */
static void user_poll_now(struct netuser *u, struct pollset *ps)
{
    int r = poll(ps->pfd, ps->n, 0);
    slirp_pollfds_poll(u->slirp, r < 0, user_get_revents, ps);
}

static void *user_thread(void *opaque)
{
    struct netuser *u = opaque;
    for (;;) {
        ml_lock(u->ml);
        u->deadline = user_fill(u, &u->set);
        u->stale = false;
        u->in_poll = true;
        int64_t wait = (u->deadline - clock_ns()) / 1000000;
        ml_unlock(u->ml);
        int r = poll(u->set.pfd, u->set.n, wait > 0 ? (int)wait : 0);
        if (u->set.pfd[0].revents & POLLIN) {
            uint64_t v;
            if (read(u->wake_fd, &v, 8) < 0) {
                /* nothing to drain */
            }
        }
        ml_lock(u->ml);
        u->in_poll = false;
        if (u->stale) {                /* slirp's indices point into now: refill */
            user_fill(u, &u->set);
            user_poll_now(u, &u->set);
        } else {
            slirp_pollfds_poll(u->slirp, r < 0, user_get_revents, &u->set);
        }
        ml_unlock(u->ml);
    }
    return NULL;
}

/* After a guest frame (device lock held): let slirp do now, in this
 * thread, what the frame made possible (read a socket whose buffer it
 * drained, accept the data of a connection it completed), then wake the
 * thread only if it sleeps on fds, events or a timeout slirp no longer
 * wants. Waking it for every frame cost a thread switch per frame. */
static void user_kick(struct netuser *u)
{
    user_fill(u, &u->now);
    user_poll_now(u, &u->now);
    if (!u->in_poll)
        return;                        /* the thread refills before it sleeps again */
    u->stale = true;
    int64_t deadline = user_fill(u, &u->now);
    bool changed = u->now.n != u->set.n || deadline < u->deadline;
    for (int i = 0; i < u->now.n && !changed; i++)
        changed = u->now.pfd[i].fd != u->set.pfd[i].fd ||
                  u->now.pfd[i].events != u->set.pfd[i].events;
    if (changed)
        user_wake(u);
}

static ssize_t user_receive(struct net_client *nc, const struct iovec *iov, int cnt)
{
    struct netuser *u = nc->opaque;
    static uint8_t buf[NET_MAX_FRAME];
    size_t len = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    slirp_input(u->slirp, buf, (int)len);
    user_kick(u);
    return (ssize_t)len;
}

static void user_info(struct net_client *nc, char *buf, int len)
{
    struct netuser *u = nc->opaque;
    snprintf(buf, len, "%s", u->desc);
}

static const struct net_client_ops user_ops = {
    .type = "user", .receive = user_receive, .info = user_info,
};

/* hostfwd=[tcp|udp]:[haddr]:hport-[gaddr]:gport */
static int user_hostfwd(struct netuser *u, const char *spec, bool add, struct error *err)
{
    char buf[128], *p = buf;
    snprintf(buf, sizeof(buf), "%s", spec);
    int udp = 0;
    if (!strncmp(p, "tcp:", 4)) {
        p += 4;
    } else if (!strncmp(p, "udp:", 4)) {
        p += 4;
        udp = 1;
    } else if (*p == ':') {
        p++;
    }
    char *dash = strchr(p, '-');
    if (dash)
        *dash = 0;
    char *hport = strrchr(p, ':');
    struct in_addr ha = { htonl(INADDR_ANY) }, ga = { 0 };
    if (!hport || (!add && dash))
        goto bad;
    *hport++ = 0;
    if (*p && inet_pton(AF_INET, p, &ha) != 1)
        goto bad;
    char *end;
    long hp = strtol(hport, &end, 10), gp = 0;
    if (end == hport || *end || hp < 0 || hp > 65535)
        goto bad;
    if (!add) {
        if (slirp_remove_hostfwd(u->slirp, udp, ha, (int)hp) < 0)
            return error_set(err, -ENOENT, "host forwarding rule for %s not found", spec);
        return 0;
    }
    if (!dash)
        goto bad;
    char *g = dash + 1, *gport = strrchr(g, ':');
    if (!gport)
        goto bad;
    *gport++ = 0;
    if (*g) {
        if (inet_pton(AF_INET, g, &ga) != 1)
            goto bad;
    } else {
        ga = u->dhcp;
    }
    gp = strtol(gport, &end, 10);
    if (end == gport || *end || gp < 1 || gp > 65535)
        goto bad;
    if (slirp_add_hostfwd(u->slirp, udp, ha, (int)hp, ga, (int)gp) < 0)
        return error_set(err, -EADDRINUSE, "could not set up host forwarding rule '%s'", spec);
    return 0;
bad:
    return error_set(err, -EINVAL, "invalid host forwarding rule '%s'", spec);
}

static int parse_net(const char *s, struct in_addr *net, struct in_addr *mask, struct error *err)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", s);
    char *slash = strchr(buf, '/');
    int bits = 24;
    if (slash) {
        *slash = 0;
        char *end;
        bits = (int)strtol(slash + 1, &end, 10);
        if (*end || bits < 1 || bits > 30) {
            if (inet_pton(AF_INET, slash + 1, mask) != 1)
                return error_set(err, -EINVAL, "invalid netmask in net=%s", s);
            bits = -1;
        }
    }
    if (inet_pton(AF_INET, buf, net) != 1)
        return error_set(err, -EINVAL, "invalid net=%s", s);
    if (bits > 0)
        mask->s_addr = htonl(~0u << (32 - bits));
    net->s_addr &= mask->s_addr;
    return 0;
}

static int get_addr(struct opts *o, const char *key, struct in_addr net, struct in_addr mask,
                    uint32_t host_part, struct in_addr *out, struct error *err)
{
    const char *s = opts_get(o, key);
    if (!s) {
        out->s_addr = net.s_addr | htonl(host_part);
        return 0;
    }
    if (inet_pton(AF_INET, s, out) != 1)
        return error_set(err, -EINVAL, "invalid %s=%s", key, s);
    if ((out->s_addr & mask.s_addr) != net.s_addr)
        return error_set(err, -EINVAL, "%s=%s is not in the guest network", key, s);
    return 0;
}

static int user_config(struct netuser *u, struct opts *o, SlirpConfig *cfg, struct error *err)
{
    struct in_addr net, mask;
    const char *ns = opts_get(o, "net");
    int r = parse_net(ns ? ns : "10.0.2.0/24", &net, &mask, err);
    bool restrict_ = false, ipv4 = true;
    if (!r) r = get_addr(o, "host", net, mask, 2, &cfg->vhost, err);
    if (!r) r = get_addr(o, "dhcpstart", net, mask, 15, &cfg->vdhcp_start, err);
    if (!r) r = get_addr(o, "dns", net, mask, 3, &cfg->vnameserver, err);
    if (!r) r = opts_get_bool(o, "restrict", false, &restrict_, err);
    if (!r) r = opts_get_bool(o, "ipv4", true, &ipv4, err);
    if (r)
        return r;
    cfg->version = 4;
    u->dhcp = cfg->vdhcp_start;
    cfg->restricted = restrict_;
    cfg->in_enabled = ipv4;
    cfg->vnetwork = net;
    cfg->vnetmask = mask;
    cfg->vhostname = opts_get(o, "hostname");
    cfg->vdomainname = opts_get(o, "domainname");
    cfg->tftp_path = opts_get(o, "tftp");
    cfg->bootfile = opts_get(o, "bootfile");
    /* No wire between slirp and the guest: a large MTU (as passt's) cuts
     * the frames, and so the guest's per-frame work, by forty. The NIC
     * suggests it to the guest (VIRTIO_NET_F_MTU); TCP still follows the
     * MSS each guest announces. */
    cfg->if_mtu = cfg->if_mru = USER_MTU;
    char a[16];
    inet_ntop(AF_INET, &net, a, sizeof(a));
    snprintf(u->desc, sizeof(u->desc), "net=%s%s", a, restrict_ ? ",restrict=on" : "");
    return 0;
}

int net_user_create(struct mainloop *ml, struct opts *o, const char *name,
                    struct net_client **out, struct error *err)
{
    struct netuser *u = calloc(1, sizeof(*u));
    if (!u)
        return error_set(err, -ENOMEM, "out of memory");
    u->ml = ml;
    SlirpConfig cfg = {0};
    int r = user_config(u, o, &cfg, err);
    if (r) {
        free(u);
        return r;
    }
    u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    u->slirp = slirp_new(&cfg, &user_cb, u);
    if (!u->slirp || u->wake_fd < 0) {
        free(u);
        return error_set(err, -ENOMEM, "could not start the user network stack");
    }
    for (int i = 0; i < o->n && !r; i++)
        if (!strcmp(o->v[i].key, "hostfwd")) {
            o->v[i].used = true;
            r = o->v[i].value ? user_hostfwd(u, o->v[i].value, true, err)
                              : error_set(err, -EINVAL, "hostfwd needs a rule");
        }
    if (!r)
        r = opts_check_unused(o, err);
    if (!r)
        r = net_client_add(&u->nc, &user_ops, name, u);
    u->nc.csum_valid = true;             /* slirp builds every frame it sends */
    u->nc.mtu = USER_MTU;
    if (!r && pthread_create(&u->thread, NULL, user_thread, u))
        r = error_set(err, -EAGAIN, "could not start the user network thread");
    if (r) {
        slirp_cleanup(u->slirp);
        close(u->wake_fd);
        free(u);
        return r;
    }
    pthread_setname_np(u->thread, "slirp");
    *out = &u->nc;
    return 0;
}

static struct netuser *find_user(const char *name, struct error *err)
{
    for (struct net_client *c = net_client_first(); c; c = c->next)
        if (c->ops == &user_ops && (!name || !strcmp(c->name, name)))
            return c->opaque;
    error_set(err, -ENOENT, name ? "no user netdev named '%s'" : "no user netdev%s",
              name ? name : "");
    return NULL;
}

int net_user_hostfwd(const char *netdev, const char *rule, bool add, struct error *err)
{
    struct netuser *u = find_user(netdev, err);
    return u ? user_hostfwd(u, rule, add, err) : -ENOENT;
}

int net_user_info(char *buf, int len)
{
    int off = 0;
    for (struct net_client *c = net_client_first(); c && off < len; c = c->next)
        if (c->ops == &user_ops) {
            struct netuser *u = c->opaque;
            char *s = slirp_connection_info(u->slirp);
            off += snprintf(buf + off, len - off, "Hub -1 (%s):\n%s", c->name, s ? s : "");
            free(s);
        }
    return off < len ? off : len - 1;
}
