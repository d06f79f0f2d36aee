/* The client registry, peer delivery with bounded queues, and hubs. */
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/iov.h"

struct net_frame {
    struct net_frame *next;
    size_t len;
    uint8_t data[];
};

static struct net_client *clients;

int net_client_add(struct net_client *nc, const struct net_client_ops *ops, const char *name,
                   void *opaque)
{
    nc->ops = ops;
    nc->opaque = opaque;
    nc->name = strdup(name ? name : ops->type);
    if (!nc->name)
        return -ENOMEM;
    struct net_client **p = &clients;
    while (*p)
        p = &(*p)->next;
    *p = nc;
    return 0;
}

static void queue_purge(struct net_client *nc)
{
    while (nc->q_head) {
        struct net_frame *f = nc->q_head;
        nc->q_head = f->next;
        free(f);
    }
    nc->q_tail = NULL;
    nc->q_len = 0;
}

void net_client_remove(struct net_client *nc)
{
    for (struct net_client **p = &clients; *p; p = &(*p)->next)
        if (*p == nc) {
            *p = nc->next;
            break;
        }
    if (nc->peer && nc->peer->peer == nc)
        nc->peer->peer = NULL;
    queue_purge(nc);
    free(nc->name);
    nc->name = NULL;
}

struct net_client *net_client_find(const char *name)
{
    for (struct net_client *c = clients; c; c = c->next)
        if (!c->is_nic && !strcmp(c->name, name))
            return c;
    return NULL;
}

struct net_client *net_client_first(void) { return clients; }

void net_cleanup_all(void)
{
    for (struct net_client *c = clients; c; c = c->next)
        if (c->ops->cleanup)
            c->ops->cleanup(c);
}

int net_client_connect(struct net_client *nic, struct net_client *backend, struct error *err)
{
    if (backend->claimed || backend->peer)
        return error_set(err, -EBUSY, "netdev '%s' is already in use by another NIC",
                         backend->name);
    backend->claimed = true;
    nic->peer = backend;
    backend->peer = nic;
    return 0;
}

bool net_peer_can_receive(struct net_client *nc)
{
    struct net_client *p = nc->peer;
    if (!p)
        return true;           /* frames are dropped, never held */
    return !p->q_head && (!p->ops->can_receive || p->ops->can_receive(p));
}

static ssize_t queue_frame(struct net_client *to, const struct iovec *iov, int n, size_t len)
{
    if (to->q_len >= NET_QUEUE_MAX) {
        to->dropped++;
        return -ENOBUFS;
    }
    struct net_frame *f = malloc(sizeof(*f) + len);
    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->len = iov_to_buf(iov, n, 0, f->data, len);
    if (to->q_tail)
        to->q_tail->next = f;
    else
        to->q_head = f;
    to->q_tail = f;
    to->q_len++;
    return 0;
}

bool net_client_use_vnet_hdr(struct net_client *nc)
{
    struct net_client *p = nc->peer;
    if (!p || !p->vnet_hdr_capable)
        return false;
    nc->vnet_hdr = p->vnet_hdr = true;
    return true;
}

ssize_t net_send(struct net_client *nc, const struct iovec *iov, int n)
{
    struct net_client *to = nc->peer;
    size_t len = iov_size(iov, n), hdr = nc->vnet_hdr ? NET_VNET_HDR_LEN : 0;
    if (!to || nc->link_down || to->link_down || len > NET_MAX_FRAME + hdr || len < 14 + hdr) {
        nc->dropped++;
        return -EINVAL;
    }
    nc->tx_frames++;
    if (to->q_head || (to->ops->can_receive && !to->ops->can_receive(to)))
        return queue_frame(to, iov, n, len);
    ssize_t r = to->ops->receive(to, iov, n);
    if (r == -ENOBUFS)
        return queue_frame(to, iov, n, len);
    if (r < 0)
        to->dropped++;
    else
        to->rx_frames++;
    return r == 0 ? (ssize_t)len : r;
}

ssize_t net_send_buf(struct net_client *nc, const void *buf, size_t len)
{
    struct iovec v = { (void *)buf, len };
    return net_send(nc, &v, 1);
}

void net_client_ready(struct net_client *nc)
{
    while (nc->q_head && (!nc->ops->can_receive || nc->ops->can_receive(nc))) {
        struct net_frame *f = nc->q_head;
        struct iovec v = { f->data, f->len };
        ssize_t r = nc->ops->receive(nc, &v, 1);
        if (r == -ENOBUFS)
            return;                    /* not enough room yet: it stays first */
        nc->q_head = f->next;
        if (!nc->q_head)
            nc->q_tail = NULL;
        nc->q_len--;
        if (r < 0)
            nc->dropped++;
        else
            nc->rx_frames++;
        free(f);
    }
    if (!nc->q_head && nc->peer && nc->peer->ops->resume)
        nc->peer->ops->resume(nc->peer);
}

/* ---- hubs ---- */

#define NET_HUB_MAX_PORTS 16

struct net_hub {
    int id;
    struct net_client *port[NET_HUB_MAX_PORTS];
    int n;
    struct net_hub *next;
};

static struct net_hub *hubs;

static ssize_t hub_receive(struct net_client *nc, const struct iovec *iov, int n)
{
    struct net_hub *h = nc->hub;
    for (int i = 0; i < h->n; i++)
        if (h->port[i] != nc && h->port[i]->peer)
            net_send(h->port[i], iov, n);
    return (ssize_t)iov_size(iov, n);
}

static void hub_resume(struct net_client *nc)
{
    struct net_hub *h = nc->hub;
    for (int i = 0; i < h->n; i++)
        if (h->port[i] != nc && h->port[i]->peer && h->port[i]->peer->ops->resume)
            h->port[i]->peer->ops->resume(h->port[i]->peer);
}

static void hub_info(struct net_client *nc, char *buf, int len)
{
    snprintf(buf, len, "hub %d port", nc->hub->id);
}

static const struct net_client_ops hub_ops = {
    .type = "hub", .receive = hub_receive, .resume = hub_resume, .info = hub_info,
};

struct net_client *net_hub_port_new(int hub_id, const char *name, struct error *err)
{
    struct net_hub *h = hubs;
    while (h && h->id != hub_id)
        h = h->next;
    if (!h) {
        if (!(h = calloc(1, sizeof(*h))))
            return NULL;
        h->id = hub_id;
        h->next = hubs;
        hubs = h;
    }
    if (h->n == NET_HUB_MAX_PORTS) {
        error_set(err, -ENOSPC, "hub %d has no free port", hub_id);
        return NULL;
    }
    struct net_client *p = calloc(1, sizeof(*p));
    char nm[48];
    snprintf(nm, sizeof(nm), "hub%dport%d", hub_id, h->n);
    if (!p || net_client_add(p, &hub_ops, name ? name : nm, h) < 0) {
        free(p);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    p->hub = h;
    h->port[h->n++] = p;
    return p;
}

int net_hub_id(struct net_client *port) { return port->hub ? port->hub->id : -1; }

/* ---- MAC addresses ---- */

void net_derive_mac(const char *vm_name, int pid, int index, uint8_t mac[6])
{
    /* FNV-1a over the VM's identity, so two VMs on one bridge differ. */
    uint32_t h = 2166136261u;
    char id[300];
    if (vm_name && *vm_name)
        snprintf(id, sizeof(id), "name:%s", vm_name);
    else
        snprintf(id, sizeof(id), "pid:%d", pid);
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    mac[0] = 0x52;                /* 0x52: locally administered, unicast, as QEMU's 52:54:00 */
    mac[1] = 0x54;
    mac[2] = (uint8_t)(h >> 24);
    mac[3] = (uint8_t)(h >> 16);
    mac[4] = (uint8_t)(h >> 8);
    mac[5] = (uint8_t)(h + index);
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char end;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &end) != 6 || strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    if (mac[0] & 1)
        return -EINVAL;          /* multicast can't be a NIC's address */
    return 0;
}

void net_format_mac(const uint8_t mac[6], char *buf, int len)
{
    snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
}

static int client_line(const struct net_client *c, char *buf, int len)
{
    char info[256] = "";
    if (c->ops->info)
        c->ops->info((struct net_client *)c, info, sizeof(info));
    return snprintf(buf, len, "%s: index=0,type=%s%s%s%s\n", c->name, c->ops->type,
                    *info ? "," : "", info, c->link_down ? " (link down)" : "");
}

/* As QEMU lays it out: each NIC with its backend under it, then each hub
 * with, per port, what is plugged into it. */
int net_format_info(char *buf, int len)
{
    int off = 0;
    for (struct net_client *c = clients; c && off < len; c = c->next) {
        if (!c->is_nic || (c->peer && c->peer->hub))
            continue;
        off += client_line(c, buf + off, len - off);
        if (c->peer && off < len) {
            off += snprintf(buf + off, len - off, " \\ ");
            if (off < len)
                off += client_line(c->peer, buf + off, len - off);
        }
    }
    for (struct net_hub *h = hubs; h && off < len; h = h->next) {
        off += snprintf(buf + off, len - off, "hub %d\n", h->id);
        for (int i = 0; i < h->n && off < len; i++) {
            off += snprintf(buf + off, len - off, " \\ %s: ", h->port[i]->name);
            if (off < len && h->port[i]->peer)
                off += client_line(h->port[i]->peer, buf + off, len - off);
            else if (off < len)
                off += snprintf(buf + off, len - off, "(unplugged)\n");
        }
    }
    for (struct net_client *c = clients; c && off < len; c = c->next)
        if (!c->is_nic && !c->hub && !c->peer)
            off += client_line(c, buf + off, len - off);
    return off < len ? off : len - 1;
}

/* ---- stream framing ---- */

int net_stream_feed(struct net_stream_rx *s, const uint8_t *data, size_t len, net_frame_cb *cb,
                    void *opaque)
{
    while (len) {
        if (s->have_len < 4) {
            s->len_buf[s->have_len++] = *data++;
            len--;
            if (s->have_len == 4) {
                s->frame_len = (uint32_t)s->len_buf[0] << 24 | s->len_buf[1] << 16 |
                               s->len_buf[2] << 8 | s->len_buf[3];
                s->got = 0;
                if (s->frame_len > NET_MAX_FRAME)
                    return -EMSGSIZE;
            }
        } else {
            size_t n = s->frame_len - s->got;
            if (n > len)
                n = len;
            memcpy(s->buf + s->got, data, n);
            s->got += n;
            data += n;
            len -= n;
        }
        if (s->have_len == 4 && s->got == s->frame_len) {
            if (s->frame_len)
                cb(opaque, s->buf, s->frame_len);
            s->have_len = 0;
        }
    }
    return 0;
}
