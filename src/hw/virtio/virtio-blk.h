/* virtio-blk: a disk over a block-layer node. Requests go to the backend
 * with bdev_aio_* as they are popped, so the guest's queue depth keeps the
 * backend busy; completions come back on the block layer's threads and are
 * handed to the guest under the device lock. */
#ifndef QUOKKA_HW_VIRTIO_VIRTIO_BLK_H
#define QUOKKA_HW_VIRTIO_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include "util/error.h"

struct bdev;
struct pci_bus;
struct pci_dev;
struct mainloop;

enum { VBLK_DZ_OFF, VBLK_DZ_ON, VBLK_DZ_UNMAP };

struct virtio_blk_conf {
    struct bdev *bs;              /* taken over on success: closed with the device */
    bool read_only;
    bool discard_unmap;           /* -drive discard=unmap: pass discards down */
    int detect_zeroes;            /* VBLK_DZ_* */
    const char *serial;           /* up to 20 bytes reach the guest */
    unsigned num_queues;          /* >= 1 */
    unsigned queue_size;          /* power of two, <= 1024 */
    unsigned logical_block_size, physical_block_size;
};

/* Create the device as PCI function devfn (< 0: first free slot). */
struct pci_dev *virtio_blk_pci_new(struct pci_bus *bus, struct mainloop *ml, int devfn,
                                   const char *id, const struct virtio_blk_conf *conf,
                                   struct error *err);

#endif
