/* virtio-balloon (virtio 1.x section 5.5). The host sets num_pages in the
 * config space; the guest driver allocates that many of its pages and
 * hands their 4 KiB frame numbers over on the inflate queue, takes them
 * back on the deflate queue, and writes how many it holds to `actual`.
 * Inflated pages go back to the host kernel with MADV_DONTNEED on guest
 * RAM (a private anonymous mapping: the next guest touch gets a fresh zero
 * page). No MUST_TELL_HOST, no DEFLATE_ON_OOM (so the guest's MemTotal
 * follows the balloon), no stats queue: the feature set QEMU offers by
 * default minus statistics. */
#include "hw/virtio/virtio-balloon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "hw/memory.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio.h"
#include "util/iov.h"

enum { VBAL_CONFIG_LEN = 8, VBAL_PFN_SHIFT = 12, VBAL_QUEUE_SIZE = 128, VBAL_MAX_RAM = 4 };
enum { Q_INFLATE, Q_DEFLATE };

/* A piece of guest RAM the balloon may discard: the board's RAM regions
 * ("pc.ram", "pc.ram-high"), never ROMs or RAM-backed BARs. */
struct vbal_ram {
    uint64_t base, size;
    uint8_t *host;
};

struct vbal {
    struct virtio_dev vd;
    struct vbal_ram ram[VBAL_MAX_RAM];
    int nram;
    uint64_t ram_size;            /* sum of ram[]: what the target is measured against */
    struct virtq_elem elem;
};

static struct vbal *the_balloon;  /* QEMU allows one per VM; so do we */

static uint32_t cfg_get(struct vbal *b, unsigned off)
{
    uint32_t v;
    memcpy(&v, b->vd.config + off, 4);
    return v;
}

static void cfg_set(struct vbal *b, unsigned off, uint32_t v)
{
    memcpy(b->vd.config + off, &v, 4);
}

/* Host memory of guest pages [pfn, pfn+n) if all in one RAM region. */
static uint8_t *ram_host(struct vbal *b, uint64_t pfn, uint64_t n)
{
    uint64_t gpa = pfn << VBAL_PFN_SHIFT, len = n << VBAL_PFN_SHIFT;
    if (pfn >> (64 - VBAL_PFN_SHIFT))
        return NULL;
    for (int i = 0; i < b->nram; i++) {
        struct vbal_ram *r = &b->ram[i];
        if (gpa >= r->base && gpa - r->base < r->size && len <= r->size - (gpa - r->base))
            return r->host + (gpa - r->base);
    }
    return NULL;
}

/* Give pages back to the host: one madvise per run of frames. A frame
 * outside RAM is the guest's mistake and is skipped (as QEMU does). */
static void discard_run(struct vbal *b, uint64_t pfn, uint64_t n)
{
    uint8_t *h = ram_host(b, pfn, n);
    if (!h) {
        for (uint64_t i = 0; i < n && n > 1; i++)
            discard_run(b, pfn + i, 1);
        return;
    }
    madvise(h, n << VBAL_PFN_SHIFT, MADV_DONTNEED);
    /* The bytes are zeroes now: the emulated CPU must not run old code. */
    as_ram_written(b->vd.mem, pfn << VBAL_PFN_SHIFT, n << VBAL_PFN_SHIFT);
}

static void inflate(struct vbal *b, const struct virtq_elem *e)
{
    uint32_t pfns[256];
    uint64_t run = 0, n = 0;
    size_t total = e->out_len / 4;
    for (size_t done = 0; done < total;) {
        size_t k = total - done < 256 ? total - done : 256;
        iov_to_buf(e->iov, e->out_num, done * 4, pfns, k * 4);
        for (size_t i = 0; i < k; i++) {
            if (n && pfns[i] == run + n) {
                n++;
                continue;
            }
            if (n)
                discard_run(b, run, n);
            run = pfns[i];
            n = 1;
        }
        done += k;
    }
    if (n)
        discard_run(b, run, n);
}

static void vbal_notify(struct virtio_dev *vd, int q)
{
    struct vbal *b = vd->opaque;
    struct virtq *vq = &vd->vq[q];
    do {
        int got;
        while ((got = virtq_pop(vq, &b->elem)) > 0) {
            /* Deflated pages need nothing: the guest's next touch faults
             * a zero page in, and it never relies on their contents. */
            if (q == Q_INFLATE)
                inflate(b, &b->elem);
            virtq_push(vq, &b->elem, 0);
            virtq_notify(vq);
        }
        if (got < 0)
            return;
    } while (virtq_enable_notify(vq));
}

static void vbal_reset(struct virtio_dev *vd)
{
    cfg_set(vd->opaque, 4, 0);    /* a new driver starts with an empty balloon */
}

static void vbal_config_write(struct virtio_dev *vd, unsigned off, uint64_t val, unsigned size)
{
    struct vbal *b = vd->opaque;
    if (off == 4 && size == 4)    /* `actual`; num_pages is the host's */
        cfg_set(b, 4, (uint32_t)val);
}

static const struct virtio_dev_ops vbal_ops = { vbal_notify, vbal_reset, vbal_config_write,
                                                NULL };

static void vbal_free(void *opaque)
{
    struct vbal *b = opaque;
    if (the_balloon == b)
        the_balloon = NULL;
    virtio_dev_cleanup(&b->vd);
    free(b);
}

static void find_ram(struct vbal *b, struct address_space *as)
{
    struct mem_region r[64];
    int n = as_regions(as, r, 64);
    for (int i = 0; i < n && b->nram < VBAL_MAX_RAM; i++) {
        if (!r[i].ram || !r[i].name || strncmp(r[i].name, "pc.ram", 6))
            continue;
        b->ram[b->nram++] = (struct vbal_ram){ r[i].base, r[i].size, r[i].ram };
        b->ram_size += r[i].size;
    }
}

struct pci_dev *virtio_balloon_pci_new(struct pci_bus *bus, int devfn, const char *id,
                                       struct error *err)
{
    if (the_balloon) {
        error_set(err, -EBUSY, "Only one balloon device is supported");
        return NULL;
    }
    struct vbal *b = calloc(1, sizeof(*b));
    if (!b || virtio_dev_init(&b->vd, "virtio-balloon", 5, pci_bus_mem(bus), 2,
                              VBAL_QUEUE_SIZE, VBAL_CONFIG_LEN, &vbal_ops, b) < 0) {
        free(b);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    find_ram(b, pci_bus_mem(bus));
    struct pci_dev *d = virtio_pci_new(bus, devfn, "virtio-balloon-pci", id, &b->vd, 0x00ff00,
                                       vbal_free, b, err);
    if (!d) {
        vbal_free(b);
        return NULL;
    }
    the_balloon = b;
    return d;
}

static int no_balloon(struct error *err)
{
    return error_set(err, -ENODEV, "No balloon device has been activated");
}

int virtio_balloon_set_target(uint64_t bytes, struct error *err)
{
    struct vbal *b = the_balloon;
    if (!b)
        return no_balloon(err);
    if (!bytes)
        return error_set(err, -EINVAL, "Parameter 'target' expects a size");
    if (bytes > b->ram_size)
        bytes = b->ram_size;
    cfg_set(b, 0, (uint32_t)((b->ram_size - bytes) >> VBAL_PFN_SHIFT));
    virtio_config_changed(&b->vd);
    return 0;
}

int virtio_balloon_actual(uint64_t *bytes, struct error *err)
{
    struct vbal *b = the_balloon;
    if (!b)
        return no_balloon(err);
    uint64_t held = (uint64_t)cfg_get(b, 4) << VBAL_PFN_SHIFT;
    *bytes = held < b->ram_size ? b->ram_size - held : 0;
    return 0;
}
