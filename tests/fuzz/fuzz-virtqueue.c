/* libFuzzer target: the input is guest RAM as a driver could leave it.
 * Byte 0 picks the features and queue size, the rest is copied over the
 * descriptor table, the avail ring and an indirect area; then the device
 * side pops, pushes and notifies until the ring is empty or broken. Every
 * buffer it hands out must lie inside RAM; nothing may crash or hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "hw/memory.h"
#include "hw/virtio/virtio.h"

#define RAM_BASE 0x10000ULL
#define RAM_SIZE 0x10000ULL

static struct address_space *as;
static uint8_t *ram;
static struct virtq_elem elem;

static void t_notify(struct virtio_dev *vd, uint16_t v, uint8_t bit) {}
static const struct virtio_transport transport = { t_notify };
static const struct virtio_dev_ops ops = { NULL, NULL, NULL, NULL };

static void check_inside(const struct virtq_elem *e)
{
    for (int i = 0; i < e->out_num + e->in_num; i++) {
        const uint8_t *p = e->iov[i].iov_base;
        if (p < ram || p + e->iov[i].iov_len > ram + RAM_SIZE || !e->iov[i].iov_len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!as) {
        ram = calloc(1, RAM_SIZE);
        as = as_new("fuzz", NULL);
        as_add_ram(as, RAM_BASE, RAM_SIZE, ram, "ram");
    }
    if (size < 1)
        return 0;
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, data + 1, size - 1 < RAM_SIZE ? size - 1 : RAM_SIZE);
    struct virtio_dev vd;
    if (virtio_dev_init(&vd, "fuzz", 4, as, 1, 256, 0, &ops, NULL) < 0)
        return 0;
    vd.transport = &transport;
    uint8_t sel = data[0];
    uint64_t f = 1ULL << VIRTIO_F_VERSION_1;
    if (sel & 1)
        f |= 1ULL << VIRTIO_F_INDIRECT_DESC;
    if (sel & 2)
        f |= 1ULL << VIRTIO_F_EVENT_IDX;
    virtio_set_status(&vd, 3);
    virtio_set_guest_features(&vd, f);
    virtio_set_status(&vd, 11);
    struct virtq *vq = &vd.vq[0];
    vq->num = 1u << (2 + (sel >> 2 & 7));        /* 4 .. 512 */
    vq->desc_gpa = RAM_BASE;                      /* 16 * num bytes */
    vq->avail_gpa = RAM_BASE + 0x2000;
    vq->used_gpa = RAM_BASE + 0x3000;
    if (sel & 0x20)
        vq->used_gpa = RAM_BASE + RAM_SIZE - 8;   /* a used ring that does not fit */
    if (virtio_queue_enable(&vd, 0)) {
        virtio_set_status(&vd, 15);
        for (int i = 0; i < 1024; i++) {
            int r = virtq_pop(vq, &elem);
            if (r <= 0)
                break;
            check_inside(&elem);
            virtq_push(vq, &elem, (uint32_t)elem.in_len / 2);
            virtq_notify(vq);
        }
        virtq_enable_notify(vq);
    }
    virtio_set_status(&vd, 0);
    virtio_dev_cleanup(&vd);
    return 0;
}
