/* virtio 1.x core: split virtqueues and the device status machine. */
#include "hw/virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hw/memory.h"
#include "util/error.h"

static uint16_t ld16(const volatile uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

bool virtio_has_feature(const struct virtio_dev *vd, int bit)
{
    return vd->guest_features >> bit & 1;
}

static void virtq_clear(struct virtq *vq)
{
    vq->ready = false;
    vq->num = vq->num_max;
    vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
    vq->desc = NULL;
    vq->avail = vq->used = NULL;
    vq->last_avail = vq->used_idx = vq->signalled_used = 0;
    vq->signalled_valid = false;
    vq->vector = VIRTIO_NO_VECTOR;
}

int virtio_dev_init(struct virtio_dev *vd, const char *name, uint16_t device_id,
                    struct address_space *mem, int nvq, uint16_t queue_size,
                    unsigned config_len, const struct virtio_dev_ops *ops, void *opaque)
{
    memset(vd, 0, sizeof(*vd));
    vd->name = name;
    vd->device_id = device_id;
    vd->mem = mem;
    vd->ops = ops;
    vd->opaque = opaque;
    vd->nvq = nvq;
    vd->vq = calloc(nvq, sizeof(*vd->vq));
    vd->config = calloc(1, config_len ? config_len : 1);
    vd->config_len = config_len;
    if (!vd->vq || !vd->config) {
        virtio_dev_cleanup(vd);
        return -ENOMEM;
    }
    vd->host_features = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
                        1ULL << VIRTIO_F_EVENT_IDX;
    for (int i = 0; i < nvq; i++) {
        vd->vq[i].vd = vd;
        vd->vq[i].index = i;
        vd->vq[i].num_max = queue_size;
        virtq_clear(&vd->vq[i]);
    }
    vd->config_vector = VIRTIO_NO_VECTOR;
    return 0;
}

void virtio_dev_cleanup(struct virtio_dev *vd)
{
    free(vd->vq);
    free(vd->config);
    vd->vq = NULL;
    vd->config = NULL;
}

void virtio_reset(struct virtio_dev *vd)
{
    if (vd->ops && vd->ops->reset)
        vd->ops->reset(vd);
    vd->status = 0;
    vd->guest_features = 0;
    vd->isr = 0;
    vd->config_vector = VIRTIO_NO_VECTOR;
    for (int i = 0; i < vd->nvq; i++)
        virtq_clear(&vd->vq[i]);
}

static void vd_raise(struct virtio_dev *vd, uint16_t vector, uint8_t bit)
{
    vd->isr |= bit;
    if (vd->transport && vd->transport->notify)
        vd->transport->notify(vd, vector, bit);
}

void virtio_config_changed(struct virtio_dev *vd)
{
    vd->config_generation++;
    if (vd->status & VIRTIO_STATUS_DRIVER_OK)
        vd_raise(vd, vd->config_vector, 2);
}

void virtio_set_broken(struct virtio_dev *vd, const char *why)
{
    if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    warn_report("%s: %s; the device needs a reset", vd->name, why);
    vd->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (vd->status & VIRTIO_STATUS_DRIVER_OK)
        vd_raise(vd, vd->config_vector, 2);
}

bool virtio_set_guest_features(struct virtio_dev *vd, uint64_t f)
{
    if (vd->status & VIRTIO_STATUS_FEATURES_OK)
        return false;
    vd->guest_features = f;
    return true;
}

void virtio_set_status(struct virtio_dev *vd, uint8_t s)
{
    if (s == 0) {
        virtio_reset(vd);
        return;
    }
    uint8_t old = vd->status;
    if ((s & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        /* Only what we offered, and only the 1.x interface. */
        if ((vd->guest_features & ~vd->host_features) ||
            !virtio_has_feature(vd, VIRTIO_F_VERSION_1))
            s &= ~VIRTIO_STATUS_FEATURES_OK;
    }
    if ((old & VIRTIO_STATUS_FEATURES_OK) && !(s & VIRTIO_STATUS_FEATURES_OK))
        s |= VIRTIO_STATUS_FEATURES_OK;          /* cannot be taken back short of a reset */
    vd->status = s | (old & VIRTIO_STATUS_NEEDS_RESET);
    if ((s & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
        if (vd->ops && vd->ops->driver_ok)
            vd->ops->driver_ok(vd);
        for (int i = 0; i < vd->nvq; i++)      /* buffers queued before DRIVER_OK */
            if (vd->vq[i].ready)
                virtio_queue_notify(vd, i);
    }
}

bool virtio_queue_enable(struct virtio_dev *vd, int q)
{
    if (q < 0 || q >= vd->nvq)
        return false;
    struct virtq *vq = &vd->vq[q];
    uint16_t n = vq->num;
    const char *why = NULL;
    if (!n || (n & (n - 1)) || n > vq->num_max)
        why = "queue size is not a power of two within the maximum";
    else if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
        why = "misaligned ring";
    if (!why) {
        vq->desc = as_ram_ptr(vd->mem, vq->desc_gpa, 16ULL * n);
        vq->avail = as_ram_ptr(vd->mem, vq->avail_gpa, 6 + 2ULL * n);
        vq->used = as_ram_ptr(vd->mem, vq->used_gpa, 6 + 8ULL * n);
        if (!vq->desc || !vq->avail || !vq->used)
            why = "ring outside guest RAM";
    }
    if (why) {
        vq->desc = NULL;
        vq->avail = vq->used = NULL;
        virtio_set_broken(vd, why);
        return false;
    }
    vq->ready = true;
    vq->last_avail = vq->used_idx = 0;
    vq->signalled_valid = false;
    return true;
}

void virtio_queue_notify(struct virtio_dev *vd, int q)
{
    if (q < 0 || q >= vd->nvq || !vd->vq[q].ready || !vd->vq[q].desc)
        return;
    if ((vd->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) !=
        VIRTIO_STATUS_DRIVER_OK)
        return;
    if (vd->ops && vd->ops->queue_notify)
        vd->ops->queue_notify(vd, q);
}

/* ---- rings ---- */

static int chain_error(struct virtq *vq, const char *why)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "queue %d: %s", vq->index, why);
    virtio_set_broken(vq->vd, msg);
    return -EINVAL;
}

static int add_buf(struct virtq *vq, struct virtq_elem *e, const struct virtq_desc *d)
{
    if (!d->len)
        return 0;
    bool in = d->flags & VIRTQ_DESC_F_WRITE;
    if (!in && e->in_num)
        return chain_error(vq, "device-readable buffer after a device-writable one");
    if (e->out_num + e->in_num >= VIRTQ_MAX_SG)
        return chain_error(vq, "chain has too many buffers");
    void *p = as_ram_ptr(vq->vd->mem, d->addr, d->len);
    if (!p)
        return chain_error(vq, "buffer outside guest RAM");
    int k = e->out_num + e->in_num;
    e->iov[k] = (struct iovec){ p, d->len };
    e->gpa[k] = d->addr;
    if (in) {
        e->in_num++;
        e->in_len += d->len;
    } else {
        e->out_num++;
        e->out_len += d->len;
    }
    return 0;
}

static int walk_chain(struct virtq *vq, struct virtq_elem *e, uint16_t head)
{
    const struct virtq_desc *table = vq->desc;
    unsigned max = vq->num, count = 0, i = head;
    bool indirect = false;
    for (;;) {
        struct virtq_desc d;
        memcpy(&d, &table[i], sizeof(d));        /* one snapshot: the guest may change it */
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!virtio_has_feature(vq->vd, VIRTIO_F_INDIRECT_DESC))
                return chain_error(vq, "indirect descriptor not negotiated");
            if (indirect)
                return chain_error(vq, "nested indirect table");
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return chain_error(vq, "indirect descriptor with NEXT");
            if (!d.len || d.len % 16 || d.len / 16 > VIRTQ_MAX_SG)
                return chain_error(vq, "bad indirect table size");
            table = as_ram_ptr(vq->vd->mem, d.addr, d.len);
            if (!table)
                return chain_error(vq, "indirect table outside guest RAM");
            max = d.len / 16;
            count = 0;
            i = 0;
            indirect = true;
            continue;
        }
        if (++count > max)
            return chain_error(vq, "descriptor chain loops");
        int r = add_buf(vq, e, &d);
        if (r < 0)
            return r;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        i = d.next;
        if (i >= max)
            return chain_error(vq, "next descriptor out of range");
    }
}

int virtq_pop(struct virtq *vq, struct virtq_elem *e)
{
    if (!vq->ready || !vq->desc || (vq->vd->status & VIRTIO_STATUS_NEEDS_RESET))
        return 0;
    uint16_t avail_idx = ld16(&vq->avail[1]);
    uint16_t pending = avail_idx - vq->last_avail;
    if (!pending)
        return 0;
    if (pending > vq->num)
        return chain_error(vq, "available index moved past the queue size");
    uint16_t head = vq->avail[2 + vq->last_avail % vq->num];
    vq->last_avail++;
    if (virtio_has_feature(vq->vd, VIRTIO_F_EVENT_IDX))
        __atomic_store_n(&vq->used[2 + 4 * vq->num], vq->last_avail, __ATOMIC_RELEASE);
    if (head >= vq->num)
        return chain_error(vq, "head descriptor out of range");
    e->head = head;
    e->out_num = e->in_num = 0;
    e->out_len = e->in_len = 0;
    int r = walk_chain(vq, e, head);
    e->in = e->iov + e->out_num;
    return r < 0 ? r : 1;
}

void virtq_fill(struct virtq *vq, const struct virtq_elem *e, uint32_t len, unsigned k)
{
    if (!vq->ready || !vq->used)
        return;
    if (len > e->in_len)
        len = e->in_len;
    /* Tell the CPU's code cache which RAM the device wrote. */
    uint64_t left = len;
    for (int i = 0; i < e->in_num && left; i++) {
        uint64_t n = e->in[i].iov_len < left ? e->in[i].iov_len : left;
        as_ram_written(vq->vd->mem, e->gpa[e->out_num + i], n);
        left -= n;
    }
    volatile uint32_t *ring = (volatile uint32_t *)(vq->used + 2);
    unsigned slot = (uint16_t)(vq->used_idx + k) % vq->num;
    ring[2 * slot] = e->head;
    ring[2 * slot + 1] = len;
}

void virtq_flush(struct virtq *vq, unsigned count)
{
    if (!vq->ready || !vq->used)
        return;
    vq->used_idx += count;
    __atomic_store_n(&vq->used[1], vq->used_idx, __ATOMIC_RELEASE);
}

void virtq_push(struct virtq *vq, const struct virtq_elem *e, uint32_t len)
{
    virtq_fill(vq, e, len, 0);
    virtq_flush(vq, 1);
}

void virtq_unpop(struct virtq *vq, unsigned n)
{
    vq->last_avail -= n;
}

unsigned virtq_avail_count(const struct virtq *vq)
{
    if (!vq->ready || !vq->avail)
        return 0;
    uint16_t n = ld16(&vq->avail[1]) - vq->last_avail;
    return n <= vq->num ? n : 0;
}

bool virtq_kick_on_add(struct virtq *vq)
{
    if (!vq->ready || !vq->avail)
        return false;
    uint16_t idx = ld16(&vq->avail[1]);
    if (virtio_has_feature(vq->vd, VIRTIO_F_EVENT_IDX))
        __atomic_store_n(&vq->used[2 + 4 * vq->num], idx, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return ld16(&vq->avail[1]) != idx;
}

void virtq_notify(struct virtq *vq)
{
    if (!vq->ready || !vq->avail)
        return;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (virtio_has_feature(vq->vd, VIRTIO_F_EVENT_IDX)) {
        uint16_t old = vq->signalled_used, now = vq->used_idx;
        bool valid = vq->signalled_valid;
        vq->signalled_used = now;
        vq->signalled_valid = true;
        uint16_t event = ld16(&vq->avail[2 + vq->num]);
        if (valid && (uint16_t)(now - event - 1) >= (uint16_t)(now - old))
            return;
    } else if (ld16(&vq->avail[0]) & 1) {       /* VIRTQ_AVAIL_F_NO_INTERRUPT */
        return;
    }
    vd_raise(vq->vd, vq->vector, 1);
}

bool virtq_enable_notify(struct virtq *vq)
{
    if (!vq->ready || !vq->avail)
        return false;
    if (virtio_has_feature(vq->vd, VIRTIO_F_EVENT_IDX))
        __atomic_store_n(&vq->used[2 + 4 * vq->num], vq->last_avail, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return ld16(&vq->avail[1]) != vq->last_avail;
}
