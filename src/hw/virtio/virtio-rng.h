/* virtio-rng: entropy for the guest (/dev/hwrng) from the host's getrandom(). */
#ifndef QUOKKA_HW_VIRTIO_VIRTIO_RNG_H
#define QUOKKA_HW_VIRTIO_VIRTIO_RNG_H

#include "util/error.h"

struct pci_bus;
struct pci_dev;

struct pci_dev *virtio_rng_pci_new(struct pci_bus *bus, int devfn, const char *id,
                                   struct error *err);

#endif
