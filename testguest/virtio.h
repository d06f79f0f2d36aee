/* The test guest's virtio-pci core (modern transport, polled queues). */
#ifndef TESTGUEST_VIRTIO_H
#define TESTGUEST_VIRTIO_H

#include <stdint.h>
#include "guest.h"

#define VQ_SIZE 8

struct vdev {
    int dev;
    volatile uint8_t *common, *notify, *isr;
    uint32_t notify_mult;
};

struct vq_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

struct vq {
    struct vq_desc desc[VQ_SIZE];
    uint16_t avail[2 + VQ_SIZE + 1];
    struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[VQ_SIZE]; uint16_t ev; }
        used __attribute__((aligned(4096)));
    volatile uint16_t *notify;
    uint16_t index, last_used;
} __attribute__((aligned(4096)));

/* 1 found and mapped, 0 absent, -1 found without the modern capabilities. */
int virtio_find(struct vdev *d, uint16_t modern_id, uint16_t legacy_id);
int virtio_start(struct vdev *d);                /* reset, negotiate VERSION_1 */
int virtio_queue(struct vdev *d, int index, struct vq *q);
/* Queue index of size entries with its rings where the caller put them:
 * its doorbell, or 0 if the device's queue is smaller. */
volatile uint16_t *virtio_queue_at(struct vdev *d, int index, uint16_t size, const void *desc,
                                   const void *avail, const void *used);
void virtio_ready(struct vdev *d);               /* DRIVER_OK */
/* Queue index's completions as MSI-X vector 0 -> CPU 0, IDT vector
 * MSI_VECTOR (head.S counts them in msis); the local APIC is enabled.
 * Before DRIVER_OK. 0 on success. */
#define MSI_VECTOR 0x31
extern volatile uint64_t msis;
int virtio_msix(struct vdev *d, int index);
/* MSI-X off again: the device falls back to INTx (its ISR, intx_isr). */
void virtio_msix_off(struct vdev *d);
/* INTx through the I/O APIC: pin = the function's interrupt line, level,
 * active high, to CPU 0 at INTX_VECTOR; head.S reads the device's ISR
 * (intx_isr), counts in intxs and EOIs. Returns the pin, or -1. */
#define INTX_VECTOR 0x32
extern volatile uint64_t intxs;
extern volatile uint8_t *volatile intx_isr;
int ioapic_route(struct vdev *d, int on);
/* Offer the chain starting at q->desc[0] to the device. */
void vq_add(struct vq *q);
/* Wait for the device to use it: bytes written, or -1 on timeout. */
int vq_wait(struct vq *q);

#endif
