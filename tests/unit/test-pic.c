/* 8259 pair through its ports: initialisation, masking, priority,
 * EOI, cascade, level mode through the ELCR, poll. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "hw/memory.h"
#include "hw/pic.h"

static int intr;
static void notify(void *o, int level) { intr = level; }

struct rig {
    struct address_space *io;
    struct pic *pic;
};

static void outb(struct rig *r, uint16_t port, uint8_t v) { as_write(r->io, port, v, 1); }
static uint8_t inb(struct rig *r, uint16_t port) { return as_read(r->io, port, 1); }

/* Linux's init: master vectors 0x30, slave 0x38, cascade on IR2. */
static void setup(struct rig *r)
{
    r->io = as_new("io", NULL);
    r->pic = pic_new(r->io, notify, NULL);
    outb(r, 0x20, 0x11); outb(r, 0x21, 0x30); outb(r, 0x21, 0x04); outb(r, 0x21, 0x01);
    outb(r, 0xa0, 0x11); outb(r, 0xa1, 0x38); outb(r, 0xa1, 0x02); outb(r, 0xa1, 0x01);
    outb(r, 0x21, 0x00);
    outb(r, 0xa1, 0x00);
    intr = 0;
}

static void teardown(struct rig *r)
{
    pic_free(r->pic);
    as_free(r->io);
}

static void test_priority_and_eoi(void **state)
{
    struct rig r;
    setup(&r);
    pic_set_irq(r.pic, 4, 1);
    assert_true(intr);
    pic_set_irq(r.pic, 1, 1);
    assert_int_equal(pic_ack(r.pic), 0x31);      /* IRQ1 beats IRQ4 */
    /* IRQ4 is lower priority than in-service IRQ1: INT stays low. */
    assert_false(pic_pending(r.pic));
    outb(&r, 0x20, 0x0b);                        /* OCW3: read ISR */
    assert_int_equal(inb(&r, 0x20), 0x02);
    outb(&r, 0x20, 0x20);                        /* non-specific EOI */
    assert_true(pic_pending(r.pic));
    assert_int_equal(pic_ack(r.pic), 0x34);
    outb(&r, 0x20, 0x20);
    assert_false(pic_pending(r.pic));
    /* Edge: a held line does not re-trigger. */
    assert_false(pic_pending(r.pic));
    pic_set_irq(r.pic, 4, 0);
    pic_set_irq(r.pic, 4, 1);
    assert_true(pic_pending(r.pic));
    teardown(&r);
}

static void test_mask_and_cascade(void **state)
{
    struct rig r;
    setup(&r);
    outb(&r, 0xa1, 0xff & ~(1 << 6));            /* slave: only IRQ14 */
    pic_set_irq(r.pic, 12, 1);
    assert_false(pic_pending(r.pic));
    assert_int_equal(inb(&r, 0xa1), 0xbf);
    pic_set_irq(r.pic, 14, 1);
    assert_true(pic_pending(r.pic));
    assert_int_equal(pic_ack(r.pic), 0x3e);
    outb(&r, 0xa0, 0x20);
    outb(&r, 0x20, 0x20);
    /* Nothing pending: INTA gives the master's spurious IRQ7. */
    assert_int_equal(pic_ack(r.pic), 0x37);
    teardown(&r);
}

static void test_level_elcr_and_poll(void **state)
{
    struct rig r;
    setup(&r);
    outb(&r, 0x4d1, 0x02);                       /* IRQ9 level */
    assert_int_equal(inb(&r, 0x4d1), 0x02);
    pic_set_irq(r.pic, 9, 1);
    assert_int_equal(pic_ack(r.pic), 0x39);
    outb(&r, 0xa0, 0x20);
    outb(&r, 0x20, 0x20);
    assert_true(pic_pending(r.pic));             /* still asserted: requests again */
    pic_set_irq(r.pic, 9, 0);
    /* The master latched the cascade edge: the slave answers spurious IRQ15. */
    assert_int_equal(pic_ack(r.pic), 0x3f);
    outb(&r, 0x20, 0x20);
    assert_false(pic_pending(r.pic));
    pic_set_irq(r.pic, 3, 1);
    outb(&r, 0x20, 0x0c);                        /* OCW3 poll */
    assert_int_equal(inb(&r, 0x20), 0x83);
    teardown(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_and_eoi),
        cmocka_unit_test(test_mask_and_cascade),
        cmocka_unit_test(test_level_elcr_and_poll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
