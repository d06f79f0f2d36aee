/* virtio-blk (virtio 1.x section 5.2). */
#include "hw/virtio/virtio-blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "block/block.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio.h"
#include "util/iov.h"
#include "util/mainloop.h"

enum {
    VBLK_F_SEG_MAX = 2, VBLK_F_RO = 5, VBLK_F_BLK_SIZE = 6, VBLK_F_FLUSH = 9,
    VBLK_F_TOPOLOGY = 10, VBLK_F_MQ = 12, VBLK_F_DISCARD = 13, VBLK_F_WRITE_ZEROES = 14,
};
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };
#define VBLK_CONFIG_LEN 60
#define VBLK_MAX_SECTORS 0x3fffffu        /* per discard / write-zeroes segment */

struct vblk {
    struct virtio_dev vd;
    struct virtio_blk_conf conf;
    char serial[21];
    struct mainloop *ml;
    uint64_t size;                       /* bytes */
    int inflight;                        /* submitted to the backend, not completed */
    unsigned generation;                 /* bumped by reset: stale completions are dropped */
};

struct vblk_req {
    struct vblk *b;
    int q;
    unsigned generation;
    uint8_t *status;
    uint32_t used_len;
    int ndata;
    struct iovec data[VIRTQ_MAX_SG];
    struct virtq_elem elem;
};

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Hand a request back to the guest. Device lock held. */
static void req_done(struct vblk_req *r, uint8_t status)
{
    struct vblk *b = r->b;
    if (r->generation == b->generation) {
        struct virtq *vq = &b->vd.vq[r->q];
        *r->status = status;
        virtq_push(vq, &r->elem, r->used_len);
        virtq_notify(vq);
    }
    free(r);
}

/* Backend completion: a block-layer thread. */
static void req_cb(void *opaque, int ret)
{
    struct vblk_req *r = opaque;
    struct vblk *b = r->b;
    if (b->ml)
        ml_lock(b->ml);
    req_done(r, ret < 0 ? S_IOERR : S_OK);
    __atomic_sub_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
    if (b->ml)
        ml_unlock(b->ml);
}

static void submitted(struct vblk_req *r, int ret)
{
    if (ret < 0) {
        __atomic_sub_fetch(&r->b->inflight, 1, __ATOMIC_SEQ_CST);
        req_done(r, S_IOERR);
    }
}

static bool range_ok(struct vblk *b, uint64_t sector, uint64_t bytes)
{
    return sector <= b->size / 512 && bytes <= b->size - sector * 512;
}

static void do_rw(struct vblk *b, struct vblk_req *r, uint64_t sector, bool write)
{
    struct virtq_elem *e = &r->elem;
    uint64_t len = write ? e->out_len - 16 : e->in_len - 1;
    if (write && b->conf.read_only)
        return req_done(r, S_IOERR);
    if (len % 512 || !range_ok(b, sector, len))
        return req_done(r, S_IOERR);
    r->ndata = write ? iov_slice(e->iov, e->out_num, 16, len, r->data, VIRTQ_MAX_SG)
                     : iov_slice(e->in, e->in_num, 0, len, r->data, VIRTQ_MAX_SG);
    if (r->ndata < 0)
        return req_done(r, S_IOERR);
    r->used_len = write ? 1 : len + 1;
    if (!len)
        return req_done(r, S_OK);
    __atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
    uint64_t off = sector * 512;
    if (!write)
        return submitted(r, bdev_aio_preadv(b->conf.bs, off, r->data, r->ndata, req_cb, r));
    if (b->conf.detect_zeroes != VBLK_DZ_OFF) {
        bool zero = true;
        for (int i = 0; i < r->ndata && zero; i++)
            zero = buffer_is_zero(r->data[i].iov_base, r->data[i].iov_len);
        if (zero) {
            int fl = b->conf.detect_zeroes == VBLK_DZ_UNMAP ? BDEV_REQ_MAY_UNMAP : 0;
            return submitted(r, bdev_aio_pwrite_zeroes(b->conf.bs, off, len, fl, req_cb, r));
        }
    }
    submitted(r, bdev_aio_pwritev(b->conf.bs, off, r->data, r->ndata, 0, req_cb, r));
}

/* Discard and write-zeroes carry one {sector, num_sectors, flags} segment. */
static void do_range(struct vblk *b, struct vblk_req *r, int type)
{
    struct virtq_elem *e = &r->elem;
    uint8_t seg[16];
    r->used_len = 1;
    if (e->out_len - 16 != 16)
        return req_done(r, S_UNSUPP);
    iov_to_buf(e->iov, e->out_num, 16, seg, 16);
    uint64_t sector;
    uint32_t n, flags;
    memcpy(&sector, seg, 8);
    memcpy(&n, seg + 8, 4);
    memcpy(&flags, seg + 12, 4);
    if (b->conf.read_only)
        return req_done(r, S_IOERR);
    if ((flags & ~1u) || (type == T_DISCARD && flags) || n > VBLK_MAX_SECTORS)
        return req_done(r, S_UNSUPP);
    if (!range_ok(b, sector, (uint64_t)n * 512))
        return req_done(r, S_IOERR);
    if (!n || (type == T_DISCARD && !b->conf.discard_unmap))
        return req_done(r, S_OK);                 /* discards are hints; ignored unless asked */
    __atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
    if (type == T_DISCARD)
        return submitted(r, bdev_aio_pdiscard(b->conf.bs, sector * 512, (uint64_t)n * 512,
                                              req_cb, r));
    int fl = (flags & 1) && b->conf.discard_unmap ? BDEV_REQ_MAY_UNMAP : 0;
    submitted(r, bdev_aio_pwrite_zeroes(b->conf.bs, sector * 512, (uint64_t)n * 512, fl,
                                        req_cb, r));
}

static void handle(struct vblk *b, struct vblk_req *r)
{
    struct virtq_elem *e = &r->elem;
    uint8_t hdr[16];
    iov_to_buf(e->iov, e->out_num, 0, hdr, 16);
    uint32_t type;
    uint64_t sector;
    memcpy(&type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    struct iovec *last = &e->in[e->in_num - 1];
    r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
    r->used_len = 1;
    switch (type) {
    case T_IN:
    case T_OUT:
        return do_rw(b, r, sector, type == T_OUT);
    case T_FLUSH:
        __atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
        return submitted(r, bdev_aio_flush(b->conf.bs, req_cb, r));
    case T_GET_ID: {
        size_t n = e->in_len - 1 < 20 ? e->in_len - 1 : 20;
        char id[20] = {0};
        memcpy(id, b->serial, strnlen(b->serial, 20));
        iov_from_buf(e->in, e->in_num, 0, id, n);
        r->used_len = n + 1;
        return req_done(r, S_OK);
    }
    case T_DISCARD:
    case T_WRITE_ZEROES:
        return do_range(b, r, type);
    default:
        return req_done(r, S_UNSUPP);
    }
}

static void vblk_notify(struct virtio_dev *vd, int q)
{
    struct vblk *b = vd->opaque;
    struct virtq *vq = &vd->vq[q];
    do {
        for (;;) {
            struct vblk_req *r = malloc(sizeof(*r));
            if (!r)
                return;
            int got = virtq_pop(vq, &r->elem);
            if (got <= 0) {
                free(r);
                if (got < 0)
                    return;
                break;
            }
            if (r->elem.out_len < 16 || r->elem.in_len < 1) {
                free(r);
                virtio_set_broken(vd, "request without header or status byte");
                return;
            }
            r->b = b;
            r->q = q;
            r->generation = b->generation;
            handle(b, r);
        }
    } while (virtq_enable_notify(vq));
}

/* Wait for the backend to finish what the guest submitted: reads still in
 * flight would write guest memory after the reset. */
static void vblk_drain(struct vblk *b, bool locked)
{
    while (__atomic_load_n(&b->inflight, __ATOMIC_SEQ_CST) > 0) {
        if (locked && b->ml)
            ml_unlock(b->ml);
        usleep(200);
        if (locked && b->ml)
            ml_lock(b->ml);
    }
}

static void vblk_reset(struct virtio_dev *vd)
{
    struct vblk *b = vd->opaque;
    b->generation++;
    vblk_drain(b, true);
}

static const struct virtio_dev_ops vblk_ops = { vblk_notify, vblk_reset, NULL, NULL };

static void vblk_free(void *opaque)
{
    struct vblk *b = opaque;
    b->generation++;
    vblk_drain(b, false);
    bdev_close(b->conf.bs);
    virtio_dev_cleanup(&b->vd);
    free(b);
}

static void vblk_config(struct vblk *b)
{
    uint8_t *c = b->vd.config;
    uint64_t cap = b->size / 512;
    unsigned lbs = b->conf.logical_block_size, pbs = b->conf.physical_block_size;
    memcpy(c, &cap, 8);
    put32(c + 12, b->conf.queue_size - 2);      /* seg_max */
    put32(c + 20, lbs);
    int exp = 0;
    while ((lbs << exp) < pbs)
        exp++;
    c[24] = exp;
    uint16_t min_io = 1, nq = b->conf.num_queues;
    memcpy(c + 26, &min_io, 2);
    c[32] = 1;                                   /* writeback */
    memcpy(c + 34, &nq, 2);
    put32(c + 36, VBLK_MAX_SECTORS);
    put32(c + 40, 1);
    put32(c + 44, lbs / 512);
    put32(c + 48, VBLK_MAX_SECTORS);
    put32(c + 52, 1);
    c[56] = b->conf.discard_unmap;
}

struct pci_dev *virtio_blk_pci_new(struct pci_bus *bus, struct mainloop *ml, int devfn,
                                   const char *id, const struct virtio_blk_conf *conf,
                                   struct error *err)
{
    struct vblk *b = calloc(1, sizeof(*b));
    int64_t size = bdev_getlength(conf->bs);
    if (!b || size < 0) {
        free(b);
        error_set(err, size < 0 ? (int)size : -ENOMEM, "virtio-blk: cannot get the disk size");
        return NULL;
    }
    b->conf = *conf;
    b->ml = ml;
    b->size = size;
    if (conf->serial)
        snprintf(b->serial, sizeof(b->serial), "%s", conf->serial);
    if (virtio_dev_init(&b->vd, "virtio-blk", 2, pci_bus_mem(bus), conf->num_queues,
                        conf->queue_size, VBLK_CONFIG_LEN, &vblk_ops, b) < 0) {
        free(b);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    b->vd.host_features |= 1ULL << VBLK_F_SEG_MAX | 1ULL << VBLK_F_BLK_SIZE |
                           1ULL << VBLK_F_FLUSH | 1ULL << VBLK_F_TOPOLOGY |
                           1ULL << VBLK_F_DISCARD | 1ULL << VBLK_F_WRITE_ZEROES;
    if (conf->num_queues > 1)
        b->vd.host_features |= 1ULL << VBLK_F_MQ;
    if (conf->read_only)
        b->vd.host_features |= 1ULL << VBLK_F_RO;
    vblk_config(b);
    struct pci_dev *d = virtio_pci_new(bus, devfn, "virtio-blk-pci", id, &b->vd, 0x010000,
                                       vblk_free, b, err);
    if (!d) {
        /* The bus did not take it: nothing else owns the node yet. */
        virtio_dev_cleanup(&b->vd);
        free(b);
    }
    return d;
}
