/* virtio-balloon: the host asks the guest for some of its RAM back; pages
 * the guest hands over are returned to the host kernel. One per VM, as in
 * QEMU: the monitor's `balloon N` and `info balloon` find it here. */
#ifndef QUOKKA_HW_VIRTIO_VIRTIO_BALLOON_H
#define QUOKKA_HW_VIRTIO_VIRTIO_BALLOON_H

#include <stdint.h>
#include "util/error.h"

struct pci_bus;
struct pci_dev;

/* Create the device as PCI function devfn (< 0: first free slot). Its
 * reference size is the guest RAM of the bus's address space. */
struct pci_dev *virtio_balloon_pci_new(struct pci_bus *bus, int devfn, const char *id,
                                       struct error *err);

/* Ask the guest to shrink (or grow back) to `bytes` of RAM; the answer
 * comes later, as the guest inflates or deflates. Device lock held.
 * -ENODEV (with QEMU's message) if there is no balloon. */
int virtio_balloon_set_target(uint64_t bytes, struct error *err);
/* RAM the guest has now: its size minus the pages in the balloon. */
int virtio_balloon_actual(uint64_t *bytes, struct error *err);

#endif
