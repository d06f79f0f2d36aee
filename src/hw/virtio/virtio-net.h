/* virtio-net (virtio 1.x section 5.1): one receive and one transmit queue,
 * MAC, link status and MTU in config space; frames go to and from a netdev
 * backend through net/net.h. Offered to every guest: mergeable receive
 * buffers, and checksum offload both ways (partial checksums from the
 * guest are completed here; frames from a backend that builds them itself,
 * as user networking, are marked checksum-valid). Segmentation offloads
 * (TSO4/6, ECN) only with a tap that passes virtio headers (vnet_hdr),
 * whose kernel does the work; the backend may suggest an MTU. */
#ifndef QUOKKA_HW_VIRTIO_VIRTIO_NET_H
#define QUOKKA_HW_VIRTIO_VIRTIO_NET_H

#include <stdint.h>
#include "util/error.h"

struct pci_bus;
struct pci_dev;
struct net_client;

#define VIRTIO_NET_HDR_LEN 12        /* virtio_net_hdr with num_buffers (VERSION_1) */

struct virtio_net_conf {
    uint8_t mac[6];
    struct net_client *backend;      /* a netdev or hub port; NULL: not connected */
    uint16_t queue_size;
    const char *name;                /* client name (id= or "virtio-net-pci.N") */
};

struct pci_dev *virtio_net_pci_new(struct pci_bus *bus, int devfn, const char *id,
                                   const struct virtio_net_conf *conf, struct error *err);

/* -device virtio-net-pci,netdev=ID,mac=MAC: opens the netdevs (once),
 * picks the default MAC and connects the NIC. */
struct mainloop;
struct opts;
int virtio_net_board_create(struct pci_bus *bus, struct mainloop *ml, int devfn, const char *id,
                            struct opts *o, struct error *err);

#endif
