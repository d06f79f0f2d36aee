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

#define VNET_F_MAC 5
#define VNET_F_STATUS 16
#define VNET_S_LINK_UP 1

struct vnet {
    struct virtio_dev vd;
    struct net_client nc;
    struct virtq_elem rx_elem, tx_elem;   /* tx may deliver to rx re-entrantly */
    uint8_t mac[6];
    uint64_t bad_tx;
    uint8_t buf[VIRTIO_NET_HDR_LEN + NET_MAX_FRAME];
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

static ssize_t vnet_receive(struct net_client *nc, const struct iovec *iov, int cnt)
{
    struct vnet *n = nc->opaque;
    struct virtq *vq = &n->vd.vq[0];
    size_t len = iov_size(iov, cnt);
    if (!vnet_rx_ready(n) || virtq_pop(vq, &n->rx_elem) <= 0)
        return -ENOBUFS;
    struct virtq_elem *e = &n->rx_elem;
    if (e->in_len < VIRTIO_NET_HDR_LEN + len) {
        virtq_push(vq, e, 0);              /* the guest counts a short buffer as an rx error */
        virtq_notify(vq);
        return -EMSGSIZE;
    }
    uint8_t hdr[VIRTIO_NET_HDR_LEN] = { [10] = 1 };   /* no flags, no GSO, num_buffers 1 */
    iov_from_buf(e->in, e->in_num, 0, hdr, sizeof(hdr));
    size_t off = VIRTIO_NET_HDR_LEN;
    for (int i = 0; i < cnt; i++) {
        iov_from_buf(e->in, e->in_num, off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    virtq_push(vq, e, (uint32_t)off);
    virtq_notify(vq);
    return (ssize_t)len;
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
                if (!n->bad_tx++)
                    warn_report("%s: dropping a malformed transmit buffer (%llu bytes)",
                                n->nc.name, (unsigned long long)e->out_len);
            } else {
                size_t len = iov_to_buf(e->iov, e->out_num, 0, n->buf, e->out_len);
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

static void vnet_driver_ok(struct virtio_dev *vd)
{
    struct vnet *n = vd->opaque;
    net_client_ready(&n->nc);
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
    .queue_notify = vnet_notify, .driver_ok = vnet_driver_ok,
};

static const struct net_client_ops vnet_nc_ops = {
    .type = "nic", .receive = vnet_receive, .can_receive = vnet_can_receive,
    .link_changed = vnet_link_changed, .info = vnet_info,
};

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
                              conf->queue_size ? conf->queue_size : 256, 10, &vnet_ops, n) < 0) {
        free(n);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(n->mac, conf->mac, 6);
    n->vd.host_features |= 1ULL << VNET_F_MAC | 1ULL << VNET_F_STATUS;
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
