/* The virtqueue core over a RAM buffer, driven like a guest driver would:
 * good chains (direct, indirect), every kind of malformed chain (loops,
 * buffers outside RAM, too long, wrong direction, nested indirect, bad
 * indices), event-index interrupt suppression, feature negotiation and
 * the status machine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hw/memory.h"
#include "hw/virtio/virtio.h"

#define RAM_BASE 0x100000ULL
#define RAM_SIZE 0x100000ULL
#define QN 16
#define DESC (RAM_BASE)
#define AVAIL (RAM_BASE + 0x1000)
#define USED (RAM_BASE + 0x2000)
#define DATA (RAM_BASE + 0x10000)

struct fixture {
    struct address_space *as;
    uint8_t *ram;
    struct virtio_dev vd;
    int notifies, config_irqs, resets, kicks;
    uint16_t avail_idx;
};

static struct fixture *F;

static void t_notify(struct virtio_dev *vd, uint16_t vector, uint8_t bit)
{
    if (bit == 1)
        F->notifies++;
    else
        F->config_irqs++;
}

static void d_notify(struct virtio_dev *vd, int q) { F->kicks++; }
static void d_reset(struct virtio_dev *vd) { F->resets++; }

static const struct virtio_transport transport = { t_notify };
static const struct virtio_dev_ops ops = { d_notify, d_reset, NULL, NULL };

static uint8_t *ram(uint64_t gpa) { return F->ram + (gpa - RAM_BASE); }

static void put_desc(uint64_t table, int i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    struct virtq_desc d = { addr, len, flags, next };
    memcpy(ram(table + 16 * i), &d, 16);
}

static void offer(uint16_t head)
{
    memcpy(ram(AVAIL + 4 + 2 * (F->avail_idx % QN)), &head, 2);
    F->avail_idx++;
    memcpy(ram(AVAIL + 2), &F->avail_idx, 2);
}

static uint16_t used_idx(void)
{
    uint16_t v;
    memcpy(&v, ram(USED + 2), 2);
    return v;
}

static void negotiate(uint64_t features)
{
    virtio_set_status(&F->vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    assert_true(virtio_set_guest_features(&F->vd, features));
    virtio_set_status(&F->vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                              VIRTIO_STATUS_FEATURES_OK);
    assert_true(F->vd.status & VIRTIO_STATUS_FEATURES_OK);
    struct virtq *vq = &F->vd.vq[0];
    vq->num = QN;
    vq->desc_gpa = DESC;
    vq->avail_gpa = AVAIL;
    vq->used_gpa = USED;
    assert_true(virtio_queue_enable(&F->vd, 0));
    virtio_set_status(&F->vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                              VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static const uint64_t BASE_F = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC;

static int setup(void **state)
{
    F = calloc(1, sizeof(*F));
    F->ram = calloc(1, RAM_SIZE);
    F->as = as_new("test", NULL);
    as_add_ram(F->as, RAM_BASE, RAM_SIZE, F->ram, "ram");
    assert_int_equal(virtio_dev_init(&F->vd, "test", 4, F->as, 2, 64, 8, &ops, NULL), 0);
    F->vd.transport = &transport;
    *state = F;
    return 0;
}

static int teardown(void **state)
{
    virtio_dev_cleanup(&F->vd);
    as_free(F->as);
    free(F->ram);
    free(F);
    return 0;
}

static struct virtq_elem *elem(void) { static struct virtq_elem e; return &e; }

static void test_simple_chain(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 5);
    put_desc(DESC, 5, DATA + 0x100, 100, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    put_desc(DESC, 2, DATA + 0x200, 1, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    struct virtq *vq = &F->vd.vq[0];
    struct virtq_elem *e = elem();
    assert_int_equal(virtq_pop(vq, e), 1);
    assert_int_equal(e->head, 0);
    assert_int_equal(e->out_num, 1);
    assert_int_equal(e->in_num, 2);
    assert_int_equal(e->out_len, 16);
    assert_int_equal(e->in_len, 101);
    assert_ptr_equal(e->iov[0].iov_base, ram(DATA));
    assert_ptr_equal(e->in[0].iov_base, ram(DATA + 0x100));
    assert_ptr_equal(e->in[1].iov_base, ram(DATA + 0x200));
    assert_int_equal(virtq_pop(vq, e), 0);     /* empty now */
    virtq_push(vq, e, 101);
    assert_int_equal(used_idx(), 1);
    uint32_t id, len;
    memcpy(&id, ram(USED + 4), 4);
    memcpy(&len, ram(USED + 8), 4);
    assert_int_equal(id, 0);
    assert_int_equal(len, 101);
    virtq_notify(vq);
    assert_int_equal(F->notifies, 1);
    assert_false(F->vd.status & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_indirect(void **state)
{
    negotiate(BASE_F);
    uint64_t table = DATA + 0x1000;
    put_desc(table, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
    put_desc(table, 1, DATA + 0x100, 512, VIRTQ_DESC_F_NEXT, 2);
    put_desc(table, 2, DATA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
    put_desc(DESC, 3, table, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    offer(3);
    struct virtq_elem *e = elem();
    assert_int_equal(virtq_pop(&F->vd.vq[0], e), 1);
    assert_int_equal(e->head, 3);
    assert_int_equal(e->out_num, 2);
    assert_int_equal(e->in_num, 1);
    assert_int_equal(e->out_len, 528);
}

/* Each malformed chain: pop fails and the device asks for a reset. */
static void expect_broken(void)
{
    struct virtq_elem *e = elem();
    assert_int_equal(virtq_pop(&F->vd.vq[0], e), -EINVAL);
    assert_true(F->vd.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(F->config_irqs, 1);
    assert_int_equal(virtq_pop(&F->vd.vq[0], e), 0);   /* nothing more until reset */
    virtio_set_status(&F->vd, 0);
    assert_int_equal(F->vd.status, 0);
    assert_false(F->vd.vq[0].ready);
}

static void test_loop(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
    put_desc(DESC, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
    offer(0);
    expect_broken();
}

static void test_self_loop_indirect(void **state)
{
    negotiate(BASE_F);
    uint64_t table = DATA + 0x1000;
    put_desc(table, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 0);
    put_desc(DESC, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken();
}

static void test_outside_ram(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, RAM_BASE + RAM_SIZE - 8, 16, 0, 0);   /* runs off the end */
    offer(0);
    expect_broken();
}

static void test_low_address(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, 0x1000, 16, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    expect_broken();
}

static void test_wrong_direction(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, DATA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    put_desc(DESC, 1, DATA + 16, 16, 0, 0);
    offer(0);
    expect_broken();
}

static void test_next_out_of_range(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, DATA, 16, VIRTQ_DESC_F_NEXT, QN);
    offer(0);
    expect_broken();
}

static void test_head_out_of_range(void **state)
{
    negotiate(BASE_F);
    offer(QN + 3);
    expect_broken();
}

static void test_avail_jump(void **state)
{
    negotiate(BASE_F);
    F->avail_idx = QN + 1;
    memcpy(ram(AVAIL + 2), &F->avail_idx, 2);
    expect_broken();
}

static void test_nested_indirect(void **state)
{
    negotiate(BASE_F);
    uint64_t t1 = DATA + 0x1000, t2 = DATA + 0x2000;
    put_desc(t2, 0, DATA, 16, 0, 0);
    put_desc(t1, 0, t2, 16, VIRTQ_DESC_F_INDIRECT, 0);
    put_desc(DESC, 0, t1, 16, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken();
}

static void test_indirect_bad_size(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, DATA + 0x1000, 15, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken();
}

static void test_indirect_not_negotiated(void **state)
{
    negotiate(1ULL << VIRTIO_F_VERSION_1);
    put_desc(DATA + 0x1000, 0, DATA, 16, 0, 0);
    put_desc(DESC, 0, DATA + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken();
}

/* An indirect table of the maximum size whose entries all chain: the
 * walk stops at the table's end instead of looping. */
static void test_long_chain(void **state)
{
    negotiate(BASE_F);
    uint64_t table = DATA + 0x4000;
    int n = 64;
    for (int i = 0; i < n; i++)
        put_desc(table, i, DATA, 8, VIRTQ_DESC_F_NEXT, (i + 1) % n);
    put_desc(DESC, 0, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
    offer(0);
    expect_broken();
}

static void test_event_idx(void **state)
{
    negotiate(BASE_F | 1ULL << VIRTIO_F_EVENT_IDX);
    struct virtq *vq = &F->vd.vq[0];
    struct virtq_elem *e = elem();
    for (int i = 0; i < 3; i++) {
        put_desc(DESC, i, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
        offer(i);
    }
    /* used_event = 2: interrupt only once the third buffer is used. */
    uint16_t ev = 2;
    memcpy(ram(AVAIL + 4 + 2 * QN), &ev, 2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(virtq_pop(vq, e), 1);
        virtq_push(vq, e, 8);
        virtq_notify(vq);
    }
    /* The first notify always goes (nothing signalled yet), then only the crossing one. */
    assert_int_equal(F->notifies, 2);
    uint16_t avail_event;
    memcpy(&avail_event, ram(USED + 4 + 8 * QN), 2);
    assert_int_equal(avail_event, 3);
    assert_false(virtq_enable_notify(vq));
    put_desc(DESC, 3, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(3);
    assert_true(virtq_enable_notify(vq));
}

static void test_no_interrupt_flag(void **state)
{
    negotiate(BASE_F);
    struct virtq *vq = &F->vd.vq[0];
    uint16_t flags = 1;
    memcpy(ram(AVAIL), &flags, 2);
    put_desc(DESC, 0, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    assert_int_equal(virtq_pop(vq, elem()), 1);
    virtq_push(vq, elem(), 8);
    virtq_notify(vq);
    assert_int_equal(F->notifies, 0);
}

static void test_features(void **state)
{
    struct virtio_dev *vd = &F->vd;
    /* Without VERSION_1: FEATURES_OK does not stick. */
    virtio_set_guest_features(vd, 1ULL << VIRTIO_F_INDIRECT_DESC);
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                          VIRTIO_STATUS_FEATURES_OK);
    assert_false(vd->status & VIRTIO_STATUS_FEATURES_OK);
    /* A bit we never offered: refused too. */
    virtio_set_guest_features(vd, 1ULL << VIRTIO_F_VERSION_1 | 1ULL << 40);
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                          VIRTIO_STATUS_FEATURES_OK);
    assert_false(vd->status & VIRTIO_STATUS_FEATURES_OK);
    virtio_set_guest_features(vd, 1ULL << VIRTIO_F_VERSION_1);
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                          VIRTIO_STATUS_FEATURES_OK);
    assert_true(vd->status & VIRTIO_STATUS_FEATURES_OK);
    /* Frozen after FEATURES_OK. */
    assert_false(virtio_set_guest_features(vd, 0));
    assert_true(virtio_has_feature(vd, VIRTIO_F_VERSION_1));
    virtio_set_status(vd, 0);
    assert_int_equal(F->resets, 1);
    assert_int_equal(vd->guest_features, 0);
    assert_true(virtio_set_guest_features(vd, 1ULL << VIRTIO_F_VERSION_1));
}

static void test_notify_gating(void **state)
{
    struct virtio_dev *vd = &F->vd;
    virtio_queue_notify(vd, 0);                  /* not ready, no DRIVER_OK */
    virtio_queue_notify(vd, 7);                  /* no such queue */
    assert_int_equal(F->kicks, 0);
    negotiate(BASE_F);
    assert_int_equal(F->kicks, 1);               /* DRIVER_OK kicks ready queues */
    virtio_queue_notify(vd, 1);                  /* queue 1 never enabled */
    assert_int_equal(F->kicks, 1);
    virtio_queue_notify(vd, 0);
    assert_int_equal(F->kicks, 2);
}

static void test_ring_outside_ram(void **state)
{
    struct virtio_dev *vd = &F->vd;
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    struct virtq *vq = &vd->vq[0];
    vq->num = QN;
    vq->desc_gpa = RAM_BASE + RAM_SIZE - 64;     /* 256 bytes needed */
    vq->avail_gpa = AVAIL;
    vq->used_gpa = USED;
    assert_false(virtio_queue_enable(vd, 0));
    assert_false(vq->ready);
    assert_true(vd->status & VIRTIO_STATUS_NEEDS_RESET);
    virtio_set_status(vd, 0);
    vq->num = 12;                                /* not a power of two */
    vq->desc_gpa = DESC;
    assert_false(virtio_queue_enable(vd, 0));
}

static void test_push_marks_written(void **state)
{
    negotiate(BASE_F);
    put_desc(DESC, 0, DATA, 4, VIRTQ_DESC_F_NEXT, 1);
    put_desc(DESC, 1, DATA + 0x100, 64, VIRTQ_DESC_F_WRITE, 0);
    offer(0);
    struct virtq_elem *e = elem();
    assert_int_equal(virtq_pop(&F->vd.vq[0], e), 1);
    virtq_push(&F->vd.vq[0], e, 1000);           /* clamped to what the chain holds */
    uint32_t len;
    memcpy(&len, ram(USED + 8), 4);
    assert_int_equal(len, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_simple_chain), T(test_indirect), T(test_loop), T(test_self_loop_indirect),
        T(test_outside_ram), T(test_low_address), T(test_wrong_direction),
        T(test_next_out_of_range), T(test_head_out_of_range), T(test_avail_jump),
        T(test_nested_indirect), T(test_indirect_bad_size), T(test_indirect_not_negotiated),
        T(test_long_chain), T(test_event_idx), T(test_no_interrupt_flag), T(test_features),
        T(test_notify_gating), T(test_ring_outside_ram), T(test_push_marks_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
