/* virtio-rng (virtio 1.x section 5.4): one queue the guest fills with
 * writable buffers; each comes back full of bytes from getrandom(). */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio-rng.h"
#include "hw/virtio/virtio.h"

struct vrng {
    struct virtio_dev vd;
    struct virtq_elem elem;
};

static uint32_t fill(struct virtq_elem *e)
{
    uint32_t done = 0;
    for (int i = 0; i < e->in_num; i++) {
        size_t off = 0;
        while (off < e->in[i].iov_len) {
            ssize_t n = getrandom((char *)e->in[i].iov_base + off, e->in[i].iov_len - off,
                                  GRND_NONBLOCK);
            if (n <= 0)
                return done;                     /* pool not ready: hand back what we have */
            off += n;
            done += n;
        }
    }
    return done;
}

static void vrng_notify(struct virtio_dev *vd, int q)
{
    struct vrng *r = vd->opaque;
    struct virtq *vq = &vd->vq[q];
    do {
        while (virtq_pop(vq, &r->elem) > 0) {
            virtq_push(vq, &r->elem, fill(&r->elem));
            virtq_notify(vq);
        }
    } while (!(vd->status & VIRTIO_STATUS_NEEDS_RESET) && virtq_enable_notify(vq));
}

static const struct virtio_dev_ops vrng_ops = { vrng_notify, NULL, NULL, NULL };

static void vrng_free(void *opaque)
{
    struct vrng *r = opaque;
    virtio_dev_cleanup(&r->vd);
    free(r);
}

struct pci_dev *virtio_rng_pci_new(struct pci_bus *bus, int devfn, const char *id,
                                   struct error *err)
{
    struct vrng *r = calloc(1, sizeof(*r));
    if (!r || virtio_dev_init(&r->vd, "virtio-rng", 4, pci_bus_mem(bus), 1, 256, 0,
                              &vrng_ops, r) < 0) {
        free(r);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    struct pci_dev *d = virtio_pci_new(bus, devfn, "virtio-rng-pci", id, &r->vd, 0x00ff00,
                                       vrng_free, r, err);
    if (!d)
        vrng_free(r);
    return d;
}
