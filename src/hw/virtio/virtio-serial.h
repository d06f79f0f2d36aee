/* virtio-serial (virtio-console with MULTIPORT): ports that carry a byte
 * stream between a guest device (hvcN for consoles, /dev/vportNpM and
 * /dev/virtio-ports/NAME for named ports such as org.qemu.guest_agent.0)
 * and a host chardev. */
#ifndef QUOKKA_HW_VIRTIO_VIRTIO_SERIAL_H
#define QUOKKA_HW_VIRTIO_VIRTIO_SERIAL_H

#include <stdbool.h>
#include "util/error.h"

struct pci_bus;
struct pci_dev;
struct mainloop;

struct pci_dev *virtio_serial_pci_new(struct pci_bus *bus, struct mainloop *ml, int devfn,
                                      const char *id, unsigned max_ports, struct error *err);
/* Add a port to the controller named by bus ("ID.0" or "ID"; NULL: the last
 * one created on the bus). nr < 0 picks one (0 is kept for a console). */
int virtio_serial_add_port(struct pci_bus *pbus, const char *bus, const char *id,
                           const char *chardev, const char *name, bool console, int nr,
                           struct error *err);

#endif
