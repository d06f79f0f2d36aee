/* The virtio 1.x PCI transport (modern only): vendor capabilities naming
 * the common, notify, ISR and device-config windows in a 64-bit BAR 4,
 * and an MSI-X table in BAR 1 (one vector per queue plus config). */
#ifndef QUOKKA_HW_VIRTIO_VIRTIO_PCI_H
#define QUOKKA_HW_VIRTIO_VIRTIO_PCI_H

#include <stdint.h>
#include "util/error.h"

struct pci_bus;
struct pci_dev;
struct virtio_dev;

/* Window offsets inside BAR 4. */
enum {
    VIRTIO_PCI_COMMON = 0x0000, VIRTIO_PCI_ISR = 0x1000, VIRTIO_PCI_DEVICE = 0x2000,
    VIRTIO_PCI_NOTIFY = 0x3000, VIRTIO_PCI_BAR_SIZE = 0x4000, VIRTIO_PCI_NOTIFY_MULT = 4,
};

/* Put vd on the bus as PCI function devfn (< 0: first free slot). The
 * virtio device stays owned by the caller; `free` (may be NULL) runs
 * when the bus is torn down. */
struct pci_dev *virtio_pci_new(struct pci_bus *bus, int devfn, const char *model,
                               const char *id, struct virtio_dev *vd, uint32_t class_code,
                               void (*free_fn)(void *opaque), void *free_opaque,
                               struct error *err);

/* The virtio device behind a function virtio_pci_new made (else NULL). */
struct virtio_dev *virtio_pci_vdev(struct pci_dev *d);

#endif
