/* virtio-net: queue 0 receives (the guest posts writable buffers), queue 1
 * transmits (header + frame). A frame the guest cannot take waits in the
 * net layer's queue until the guest posts buffers and kicks queue 0. */
#include "hw/virtio/virtio-net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio.h"
#include "net/net.h"
#include "net/netdev.h"
#include "util/opts.h"
#include "util/iov.h"

#define VNET_F_CSUM 0
#define VNET_F_GUEST_CSUM 1
#define VNET_F_MTU 3
#define VNET_F_MAC 5
#define VNET_F_GUEST_TSO4 7
#define VNET_F_GUEST_TSO6 8
#define VNET_F_GUEST_ECN 9
#define VNET_F_HOST_TSO4 11
#define VNET_F_HOST_TSO6 12
#define VNET_F_HOST_ECN 13
#define VNET_F_MRG_RXBUF 15
#define VNET_F_STATUS 16
#define VNET_S_LINK_UP 1
#define VNET_HDR_F_NEEDS_CSUM 1
#define VNET_HDR_F_DATA_VALID 2
#define VNET_MAX_RX_BUFS 256          /* mergeable buffers one frame may take */

/* Offloads a backend that exchanges virtio_net_hdr with us passes through
 * (the kernel segments and checksums); without one we complete partial
 * checksums ourselves and offer no segmentation. */
#define VNET_PASSTHROUGH_FEATURES (1ULL << VNET_F_GUEST_TSO4 | 1ULL << VNET_F_GUEST_TSO6 | \
    1ULL << VNET_F_GUEST_ECN | 1ULL << VNET_F_HOST_TSO4 | 1ULL << VNET_F_HOST_TSO6 | \
    1ULL << VNET_F_HOST_ECN)

struct vnet_hdr {
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};

struct vnet {
    struct virtio_dev vd;
    struct net_client nc;
    struct virtq_elem rx_elem, tx_elem;   /* tx may deliver to rx re-entrantly */
    struct virtq_elem rx_first;           /* holds the header of a merged frame */
    uint8_t mac[6];
    uint64_t bad_tx, bad_rx;
    uint8_t buf[VIRTIO_NET_HDR_LEN + NET_MAX_FRAME];
    uint8_t rxbuf[VIRTIO_NET_HDR_LEN + NET_MAX_FRAME];
};

static bool vnet_rx_ready(struct vnet *n)
{
    struct virtq *vq = &n->vd.vq[0];
    if (!(n->vd.status & VIRTIO_STATUS_DRIVER_OK) || (n->vd.status & VIRTIO_STATUS_NEEDS_RESET) ||
        !vq->ready || !vq->avail)
        return false;
    if (__atomic_load_n(&vq->avail[1], __ATOMIC_ACQUIRE) != vq->last_avail)
        return true;
    return virtq_enable_notify(vq);        /* empty: ask for a kick when buffers come */
}

static bool vnet_can_receive(struct net_client *nc) { return vnet_rx_ready(nc->opaque); }

/* The header the guest sees for a frame from the backend. */
static int vnet_rx_header(struct vnet *n, const uint8_t **data, size_t *len, struct vnet_hdr *h)
{
    memset(h, 0, sizeof(*h));
    if (n->nc.vnet_hdr) {
        if (*len < VIRTIO_NET_HDR_LEN + 14)
            return -EINVAL;
        memcpy(h, *data, VIRTIO_NET_HDR_LEN);
        *data += VIRTIO_NET_HDR_LEN;
        *len -= VIRTIO_NET_HDR_LEN;
        if (!virtio_has_feature(&n->vd, VNET_F_GUEST_CSUM))
            h->flags = 0;
        if (h->gso_type && !(n->vd.guest_features & VNET_PASSTHROUGH_FEATURES))
            return -EINVAL;                /* offloads are set from the guest's features */
    } else if (n->nc.peer && n->nc.peer->csum_valid &&
               virtio_has_feature(&n->vd, VNET_F_GUEST_CSUM)) {
        h->flags = VNET_HDR_F_DATA_VALID;
    }
    h->num_buffers = 1;
    return 0;
}

/* One frame into one chain (no mergeable buffers). */
static ssize_t vnet_rx_one(struct vnet *n, struct vnet_hdr *h, const uint8_t *data, size_t len)
{
    struct virtq *vq = &n->vd.vq[0];
    struct virtq_elem *e = &n->rx_elem;
    if (virtq_pop(vq, e) <= 0)
        return -ENOBUFS;
    if (e->in_len < VIRTIO_NET_HDR_LEN + len) {
        virtq_push(vq, e, 0);              /* the guest counts a short buffer as an rx error */
        virtq_notify(vq);
        return -EMSGSIZE;
    }
    iov_from_buf(e->in, e->in_num, 0, h, VIRTIO_NET_HDR_LEN);
    iov_from_buf(e->in, e->in_num, VIRTIO_NET_HDR_LEN, data, len);
    virtq_push(vq, e, (uint32_t)(VIRTIO_NET_HDR_LEN + len));
    virtq_notify(vq);
    return (ssize_t)len;
}

/* One frame across as many posted buffers as it needs; all published at
 * once, or none (given back to wait for more). */
static ssize_t vnet_rx_merged(struct vnet *n, struct vnet_hdr *h, const uint8_t *data,
                              size_t len)
{
    struct virtq *vq = &n->vd.vq[0];
    size_t total = VIRTIO_NET_HDR_LEN + len, off = 0;
    unsigned k = 0;
    while (off < total) {
        struct virtq_elem *e = k ? &n->rx_elem : &n->rx_first;
        int r = k < VNET_MAX_RX_BUFS ? virtq_pop(vq, e) : 0;
        if (r < 0)
            return r;
        if (r == 0) {
            virtq_unpop(vq, k);
            if (k >= vq->num || k >= VNET_MAX_RX_BUFS)
                return -EMSGSIZE;          /* would never fit: drop it */
            return -ENOBUFS;               /* wait for the guest to post more */
        }
        if (!k && e->in_len < VIRTIO_NET_HDR_LEN + 14) {
            virtq_push(vq, e, 0);          /* no room for a header: an rx error for the guest */
            virtq_notify(vq);
            return -EMSGSIZE;
        }
        size_t take = total - off < e->in_len ? total - off : e->in_len;
        if (!k)
            iov_from_buf(e->in, e->in_num, VIRTIO_NET_HDR_LEN, data, take - VIRTIO_NET_HDR_LEN);
        else
            iov_from_buf(e->in, e->in_num, 0, data + off - VIRTIO_NET_HDR_LEN, take);
        virtq_fill(vq, e, (uint32_t)take, k);
        off += take;
        k++;
    }
    h->num_buffers = (uint16_t)k;
    iov_from_buf(n->rx_first.in, n->rx_first.in_num, 0, h, VIRTIO_NET_HDR_LEN);
    virtq_flush(vq, k);
    virtq_notify(vq);
    return (ssize_t)len;
}

static ssize_t vnet_receive(struct net_client *nc, const struct iovec *iov, int cnt)
{
    struct vnet *n = nc->opaque;
    const uint8_t *data = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    if (!vnet_rx_ready(n))
        return -ENOBUFS;
    if (cnt != 1) {
        len = iov_to_buf(iov, cnt, 0, n->rxbuf, sizeof(n->rxbuf));
        data = n->rxbuf;
    }
    struct vnet_hdr h;
    if (vnet_rx_header(n, &data, &len, &h) < 0) {
        if (!n->bad_rx++)
            warn_report("%s: dropping a frame with offloads the guest did not accept",
                        n->nc.name);
        return -EINVAL;
    }
    if (!virtio_has_feature(&n->vd, VNET_F_MRG_RXBUF))
        return vnet_rx_one(n, &h, data, len);
    ssize_t r = vnet_rx_merged(n, &h, data, len);
    if (r == -ENOBUFS && virtq_kick_on_add(&n->vd.vq[0]))
        r = vnet_rx_merged(n, &h, data, len);
    return r;
}

/* RFC 1071 sum of p[0..len) in host order: stored with memcpy it is the
 * right big-endian field. */
static uint16_t vnet_csum(const uint8_t *p, size_t len)
{
    uint64_t s = 0;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        s += (w & 0xffffffff) + (w >> 32);
    }
    for (; len >= 2; p += 2, len -= 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        s += w;
    }
    if (len)
        s += *p;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* A frame from the guest for a backend without virtio_net_hdr: complete a
 * partial checksum; refuse segmentation we never offered. */
static int vnet_tx_finish(const struct vnet_hdr *h, uint8_t *frame, size_t len)
{
    if (h->gso_type)
        return -EINVAL;
    if (!(h->flags & VNET_HDR_F_NEEDS_CSUM))
        return 0;
    size_t start = h->csum_start, at = start + h->csum_offset;
    if (start >= len || at + 2 > len)
        return -EINVAL;
    uint16_t c = (uint16_t)~vnet_csum(frame + start, len - start);
    if (!c)
        c = 0xffff;                        /* the same in ones' complement; 0 means none for UDP */
    memcpy(frame + at, &c, 2);
    return 0;
}

static void vnet_tx_bad(struct vnet *n, const struct virtq_elem *e)
{
    if (!n->bad_tx++)
        warn_report("%s: dropping a malformed transmit buffer (%llu bytes)", n->nc.name,
                    (unsigned long long)e->out_len);
}

static void vnet_tx(struct vnet *n)
{
    struct virtq *vq = &n->vd.vq[1];
    int r;
    do {
        while ((r = virtq_pop(vq, &n->tx_elem)) > 0) {
            struct virtq_elem *e = &n->tx_elem;
            if (e->in_num || e->out_len < VIRTIO_NET_HDR_LEN + 14 ||
                e->out_len > sizeof(n->buf)) {
                vnet_tx_bad(n, e);
            } else {
                size_t len = iov_to_buf(e->iov, e->out_num, 0, n->buf, e->out_len);
                struct vnet_hdr h;
                memcpy(&h, n->buf, VIRTIO_NET_HDR_LEN);
                if (n->nc.vnet_hdr)
                    net_send_buf(&n->nc, n->buf, len);
                else if (vnet_tx_finish(&h, n->buf + VIRTIO_NET_HDR_LEN,
                                        len - VIRTIO_NET_HDR_LEN) < 0)
                    vnet_tx_bad(n, e);
                else
                    net_send_buf(&n->nc, n->buf + VIRTIO_NET_HDR_LEN, len - VIRTIO_NET_HDR_LEN);
            }
            virtq_push(vq, e, 0);
            virtq_notify(vq);
        }
    } while (r >= 0 && virtq_enable_notify(vq));
}

static void vnet_notify(struct virtio_dev *vd, int q)
{
    struct vnet *n = vd->opaque;
    if (q == 1)
        vnet_tx(n);
    else if (q == 0)
        net_client_ready(&n->nc);
}

/* Tell a header-passing backend what the driver accepts, so it never
 * hands us a frame the guest can't take. */
static void vnet_set_offload(struct vnet *n, unsigned off)
{
    struct net_client *p = n->nc.peer;
    if (n->nc.vnet_hdr && p && p->ops->set_offload)
        p->ops->set_offload(p, off);
}

static void vnet_driver_ok(struct virtio_dev *vd)
{
    struct vnet *n = vd->opaque;
    unsigned off = 0;
    if (virtio_has_feature(vd, VNET_F_GUEST_CSUM)) {
        off |= NET_OFFLOAD_CSUM;
        off |= virtio_has_feature(vd, VNET_F_GUEST_TSO4) ? NET_OFFLOAD_TSO4 : 0;
        off |= virtio_has_feature(vd, VNET_F_GUEST_TSO6) ? NET_OFFLOAD_TSO6 : 0;
        off |= virtio_has_feature(vd, VNET_F_GUEST_ECN) ? NET_OFFLOAD_ECN : 0;
    }
    vnet_set_offload(n, off);
    net_client_ready(&n->nc);
}

static void vnet_reset(struct virtio_dev *vd)
{
    vnet_set_offload(vd->opaque, 0);
}

static void vnet_update_status(struct vnet *n)
{
    uint16_t st = n->nc.link_down ? 0 : VNET_S_LINK_UP;
    memcpy(n->vd.config + 6, &st, 2);
}

static void vnet_link_changed(struct net_client *nc)
{
    struct vnet *n = nc->opaque;
    vnet_update_status(n);
    virtio_config_changed(&n->vd);
}

static void vnet_info(struct net_client *nc, char *buf, int len)
{
    struct vnet *n = nc->opaque;
    char mac[18];
    net_format_mac(n->mac, mac, sizeof(mac));
    snprintf(buf, len, "model=virtio-net-pci,macaddr=%s", mac);
}

static const struct virtio_dev_ops vnet_ops = {
    .queue_notify = vnet_notify, .driver_ok = vnet_driver_ok, .reset = vnet_reset,
};

static const struct net_client_ops vnet_nc_ops = {
    .type = "nic", .receive = vnet_receive, .can_receive = vnet_can_receive,
    .link_changed = vnet_link_changed, .info = vnet_info,
};

/* What the backend adds: segmentation passed through a header-passing
 * tap, and the MTU it suggests (user networking's is large: no wire). */
static void vnet_features(struct vnet *n, struct net_client *backend)
{
    if (!backend)
        return;
    if (net_client_use_vnet_hdr(&n->nc))
        n->vd.host_features |= VNET_PASSTHROUGH_FEATURES;
    if (backend->mtu) {
        n->vd.host_features |= 1ULL << VNET_F_MTU;
        memcpy(n->vd.config + 10, &backend->mtu, 2);
    }
}

static void vnet_free(void *opaque)
{
    struct vnet *n = opaque;
    net_client_remove(&n->nc);
    virtio_dev_cleanup(&n->vd);
    free(n);
}

struct pci_dev *virtio_net_pci_new(struct pci_bus *bus, int devfn, const char *id,
                                   const struct virtio_net_conf *conf, struct error *err)
{
    struct vnet *n = calloc(1, sizeof(*n));
    if (!n || virtio_dev_init(&n->vd, "virtio-net", 1, pci_bus_mem(bus), 2,
                              conf->queue_size ? conf->queue_size : 256, 12, &vnet_ops, n) < 0) {
        free(n);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(n->mac, conf->mac, 6);
    n->vd.host_features |= 1ULL << VNET_F_MAC | 1ULL << VNET_F_STATUS |
                           1ULL << VNET_F_MRG_RXBUF | 1ULL << VNET_F_CSUM |
                           1ULL << VNET_F_GUEST_CSUM;
    memcpy(n->vd.config, n->mac, 6);
    n->nc.is_nic = true;
    if (net_client_add(&n->nc, &vnet_nc_ops, conf->name ? conf->name : id, n) < 0) {
        virtio_dev_cleanup(&n->vd);
        free(n);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    if (conf->backend && net_client_connect(&n->nc, conf->backend, err) < 0) {
        vnet_free(n);
        return NULL;
    }
    vnet_features(n, conf->backend);
    vnet_update_status(n);
    struct pci_dev *d = virtio_pci_new(bus, devfn, "virtio-net-pci", id, &n->vd, 0x020000,
                                       vnet_free, n, err);
    if (!d)
        vnet_free(n);
    return d;
}

int virtio_net_board_create(struct pci_bus *bus, struct mainloop *ml, int devfn, const char *id,
                            struct opts *o, struct error *err)
{
    int r = net_open_all(ml, err);
    if (r)
        return r;
    const char *netdev = opts_get(o, "netdev"), *mac = opts_get(o, "mac");
    if ((r = opts_check_unused(o, err)))
        return r;
    struct virtio_net_conf conf = { .queue_size = 256 };
    char name[32];
    int idx = net_nic_next(conf.mac);
    if (mac && net_parse_mac(mac, conf.mac) < 0)
        return error_set(err, -EINVAL, "Property 'virtio-net-pci.mac' doesn't take value '%s'",
                         mac);
    snprintf(name, sizeof(name), "virtio-net-pci.%d", idx);
    conf.name = id ? id : name;
    if (netdev && !(conf.backend = net_client_find(netdev)))
        return error_set(err, -ENOENT, "Property 'virtio-net-pci.netdev' can't find value '%s'",
                         netdev);
    return virtio_net_pci_new(bus, devfn, id, &conf, err) ? 0 : (err->code ? err->code : -EINVAL);
}
