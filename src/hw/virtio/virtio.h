/* virtio 1.x core: split virtqueues (indirect descriptors, event index),
 * feature negotiation and the device status machine. Transport-neutral:
 * a transport (virtio-pci.c) fills `struct virtio_transport` to learn when
 * to interrupt; a device model (virtio-blk.c, ...) fills `struct
 * virtio_dev_ops` and pops/pushes elements.
 *
 * Guest-controlled input is never trusted: a chain that loops, points
 * outside RAM, is too long, puts a device-readable buffer after a
 * device-writable one or nests indirect tables makes virtq_pop() fail,
 * and the device then goes to DEVICE_NEEDS_RESET (virtio_set_broken). */
#ifndef QUOKKA_HW_VIRTIO_VIRTIO_H
#define QUOKKA_HW_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct address_space;
struct virtio_dev;

enum {
    VIRTIO_STATUS_ACKNOWLEDGE = 1, VIRTIO_STATUS_DRIVER = 2, VIRTIO_STATUS_DRIVER_OK = 4,
    VIRTIO_STATUS_FEATURES_OK = 8, VIRTIO_STATUS_NEEDS_RESET = 64, VIRTIO_STATUS_FAILED = 128,
};
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_NO_VECTOR 0xffff
#define VIRTQ_MAX_SIZE 1024
#define VIRTQ_MAX_SG 1024          /* buffers in one chain, indirect included */

enum { VIRTQ_DESC_F_NEXT = 1, VIRTQ_DESC_F_WRITE = 2, VIRTQ_DESC_F_INDIRECT = 4 };

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

/* One request: device-readable buffers first (out), then writable (in). */
struct virtq_elem {
    uint16_t head;
    int out_num, in_num;
    uint64_t out_len, in_len;
    struct iovec *in;              /* = iov + out_num */
    struct iovec iov[VIRTQ_MAX_SG];
    uint64_t gpa[VIRTQ_MAX_SG];    /* guest address of each buffer */
};

struct virtq {
    struct virtio_dev *vd;
    int index;
    uint16_t num, num_max;
    bool ready;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    struct virtq_desc *desc;       /* host views, checked when the queue is enabled */
    volatile uint16_t *avail;      /* flags, idx, ring[num], used_event */
    volatile uint16_t *used;       /* flags, idx, {u32 id, u32 len}[num], avail_event */
    uint16_t last_avail, used_idx;
    uint16_t signalled_used;
    bool signalled_valid;
    uint16_t vector;
};

struct virtio_dev_ops {
    /* The driver notified queue q (device lock held, DRIVER_OK set). */
    void (*queue_notify)(struct virtio_dev *vd, int q);
    /* Device reset: drop in-flight state. May be NULL. */
    void (*reset)(struct virtio_dev *vd);
    /* Config space writes (reads come from vd->config). May be NULL. */
    void (*config_write)(struct virtio_dev *vd, unsigned off, uint64_t val, unsigned size);
    /* DRIVER_OK was just set. May be NULL. */
    void (*driver_ok)(struct virtio_dev *vd);
};

/* What the core asks of its transport. */
struct virtio_transport {
    /* Raise the interrupt for queue vector (or config vector) v; isr_bit
     * is 1 for a used buffer, 2 for a config change. */
    void (*notify)(struct virtio_dev *vd, uint16_t vector, uint8_t isr_bit);
};

struct virtio_dev {
    const char *name;
    uint16_t device_id;            /* 2 blk, 3 console, 4 rng, 5 balloon */
    uint64_t host_features, guest_features;
    uint8_t status;
    uint8_t isr;
    uint8_t config_generation;
    uint16_t config_vector;
    int nvq;
    struct virtq *vq;
    uint8_t *config;
    unsigned config_len;
    struct address_space *mem;
    const struct virtio_dev_ops *ops;
    const struct virtio_transport *transport;
    void *transport_opaque;
    void *opaque;                  /* the device model */
};

int virtio_dev_init(struct virtio_dev *vd, const char *name, uint16_t device_id,
                    struct address_space *mem, int nvq, uint16_t queue_size,
                    unsigned config_len, const struct virtio_dev_ops *ops, void *opaque);
void virtio_dev_cleanup(struct virtio_dev *vd);

/* Driver side of the status machine (the transport forwards writes). */
void virtio_set_status(struct virtio_dev *vd, uint8_t status);
void virtio_reset(struct virtio_dev *vd);
/* Driver feature bits: refused (false) once FEATURES_OK is set. */
bool virtio_set_guest_features(struct virtio_dev *vd, uint64_t f);
bool virtio_has_feature(const struct virtio_dev *vd, int bit);
/* A notification arrived for queue q: ignored unless DRIVER_OK, the queue
 * is ready and valid. */
void virtio_queue_notify(struct virtio_dev *vd, int q);
/* queue_enable = 1: check the rings lie in RAM. Returns false (and marks
 * the device broken) if not. */
bool virtio_queue_enable(struct virtio_dev *vd, int q);
/* Device-side fault: DEVICE_NEEDS_RESET and a config interrupt. */
void virtio_set_broken(struct virtio_dev *vd, const char *why);
void virtio_config_changed(struct virtio_dev *vd);

/* Take the next available chain. 1: got one in *e; 0: ring empty;
 * -EINVAL: malformed (the device is marked broken). */
int virtq_pop(struct virtq *vq, struct virtq_elem *e);
/* Return a chain with len bytes written into its in buffers. */
void virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len);
/* The same in two steps, for several chains the driver must see at once
 * (one received frame across mergeable buffers): fill used entry k after
 * the last published one, then publish count entries. */
void virtq_fill(struct virtq *vq, const struct virtq_elem *e, uint32_t len, unsigned k);
void virtq_flush(struct virtq *vq, unsigned count);
/* Give back the last n popped chains, not yet filled: the device could not
 * use them now and will pop them again. */
void virtq_unpop(struct virtq *vq, unsigned n);
/* Chains posted and not popped yet. */
unsigned virtq_avail_count(const struct virtq *vq);
/* Ask for a notification on the driver's next added chain even though
 * some are pending (they were too few); true if more came meanwhile. */
bool virtq_kick_on_add(struct virtq *vq);
/* Interrupt the driver if it wants to know (event index / NO_INTERRUPT). */
void virtq_notify(struct virtq *vq);
/* Re-arm notifications after draining the ring; returns true if more
 * buffers arrived meanwhile (pop again). */
bool virtq_enable_notify(struct virtq *vq);

#endif
