/* Network clients: a NIC and its host backend (user, tap, bridge, socket)
 * are two `net_client`s joined as peers, or ports of a hub (-net form).
 * A NIC never touches a host fd: it hands frames to net_send() and takes
 * them in its ops->receive.
 *
 * Flow control: a receiver that has no room says so with can_receive(), or
 * by refusing a frame with -ENOBUFS (it has room, but not enough for this
 * one); net_send() then queues the frame (bounded) and returns 0, and the sender
 * should stop reading its host fd until its ops->resume runs. The receiver
 * calls net_client_ready() when room appears; queued frames go first.
 * Everything runs under the device lock (util/mainloop.h). */
#ifndef QUOKKA_NET_NET_H
#define QUOKKA_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "util/error.h"

struct mainloop;
struct net_client;

#define NET_MAX_FRAME 65536          /* bigger frames are refused everywhere */
#define NET_QUEUE_MAX 256            /* frames held for a peer without room */

struct net_client_ops {
    const char *type;                /* "user", "tap", "virtio-net-pci", "hub" ... */
    /* Take one frame. Returns its length, or < 0 if it was refused (dropped). */
    ssize_t (*receive)(struct net_client *nc, const struct iovec *iov, int n);
    /* May be NULL (always ready). */
    bool (*can_receive)(struct net_client *nc);
    /* The peer made room: read the host fd again. May be NULL. */
    void (*resume)(struct net_client *nc);
    /* Link state changed (set_link). May be NULL. */
    void (*link_changed)(struct net_client *nc);
    /* One line for `info network` after "name: " (may be NULL). */
    void (*info)(struct net_client *nc, char *buf, int len);
    void (*cleanup)(struct net_client *nc);
    /* Frames on this link carry a virtio_net_hdr (nc->vnet_hdr): which
     * offloads the NIC's driver accepts, NET_OFFLOAD_*. May be NULL. */
    void (*set_offload)(struct net_client *nc, unsigned offloads);
};

#define NET_VNET_HDR_LEN 12          /* virtio 1.x virtio_net_hdr, num_buffers included */
enum { NET_OFFLOAD_CSUM = 1, NET_OFFLOAD_TSO4 = 2, NET_OFFLOAD_TSO6 = 4, NET_OFFLOAD_ECN = 8 };

struct net_frame;

struct net_client {
    const struct net_client_ops *ops;
    char *name;                      /* id= */
    struct net_client *peer;
    struct net_hub *hub;             /* set for hub ports (peer is then the hub port) */
    bool link_down;
    bool is_nic;
    bool claimed;                    /* a NIC uses this backend */
    /* What a backend offers a NIC peered with it directly: */
    bool vnet_hdr_capable;           /* it can pass frames with a virtio_net_hdr first */
    bool csum_valid;                 /* the frames it sends have checksums made on this host */
    uint16_t mtu;                    /* the MTU it suggests to the guest (0: Ethernet's) */
    /* Frames between this client and its peer start with a virtio_net_hdr
     * (NET_VNET_HDR_LEN bytes); set on both ends by net_client_use_vnet_hdr. */
    bool vnet_hdr;
    struct net_frame *q_head, *q_tail;   /* frames waiting for this client */
    int q_len;
    uint64_t tx_frames, rx_frames, dropped;
    void *opaque;
    struct net_client *next;         /* registry */
};

/* Register a client under name (copied). */
int net_client_add(struct net_client *nc, const struct net_client_ops *ops, const char *name,
                   void *opaque);
void net_client_remove(struct net_client *nc);
struct net_client *net_client_find(const char *name);
/* Clients in creation order (for info network). */
struct net_client *net_client_first(void);

/* Run every client's cleanup (a tap's downscript): once, at exit. */
void net_cleanup_all(void);

/* Join a NIC and a backend. -EBUSY if the backend has a NIC already. */
int net_client_connect(struct net_client *nic, struct net_client *backend, struct error *err);

/* Agree with nc's peer on frames carrying a virtio_net_hdr: true if the
 * peer can (then both ends have vnet_hdr set). */
bool net_client_use_vnet_hdr(struct net_client *nc);

/* Send a frame from nc to its peer: > 0 delivered, 0 queued (stop until
 * resume), < 0 dropped (no peer, link down, too big, queue full). */
ssize_t net_send(struct net_client *nc, const struct iovec *iov, int n);
ssize_t net_send_buf(struct net_client *nc, const void *buf, size_t len);
/* nc has room again: deliver its queue, then tell its peer to resume. */
void net_client_ready(struct net_client *nc);
/* Is there room at nc's peer? (backends check before reading their fd) */
bool net_peer_can_receive(struct net_client *nc);

/* Hubs for -net: each id is one hub; ports repeat frames to every other port. */
struct net_client *net_hub_port_new(int hub_id, const char *name, struct error *err);
int net_hub_id(struct net_client *port);

/* A locally administered unicast MAC unique to (vm name or pid, NIC index). */
/* quokka-bridge-helper beside this program's binary, else on PATH: true
 * and its path in buf if found (else buf holds the bare name). */
bool net_find_bridge_helper(char *buf, size_t len);
void net_derive_mac(const char *vm_name, int pid, int index, uint8_t mac[6]);
int net_parse_mac(const char *s, uint8_t mac[6]);
void net_format_mac(const uint8_t mac[6], char *buf, int len);

/* `info network` text. */
int net_format_info(char *buf, int len);

/* -netdev TYPE,... (and -net TYPE via a hub port) backends. ml is the loop
 * that serves their fds and timers. */
int net_backend_create(struct mainloop *ml, const char *spec, int hub_id, struct error *err);

/* QEMU's stream framing (socket netdev, stream): 4-byte big-endian length,
 * then the frame. The parser is fed arbitrary chunks; each complete frame
 * goes to cb. Returns 0, or -EMSGSIZE for a length over NET_MAX_FRAME (the
 * connection is then unusable). */
struct net_stream_rx {
    uint8_t len_buf[4];
    uint32_t have_len, frame_len, got;
    uint8_t buf[NET_MAX_FRAME];
};
typedef void net_frame_cb(void *opaque, const uint8_t *frame, size_t len);
int net_stream_feed(struct net_stream_rx *s, const uint8_t *data, size_t len, net_frame_cb *cb,
                    void *opaque);

#endif
