/* i8042 through ports 0x60/0x64: controller self test and command byte,
 * keyboard reset and identify, the aux port's mouse, IRQ1 following the
 * output buffer, and both ways Linux resets the machine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include "hw/i8042.h"
#include "hw/memory.h"
#include "util/mainloop.h"

struct fixture {
    struct mainloop *ml;
    struct address_space *io;
    struct i8042 *k;
    int kbd_level, aux_level, resets;
};

static void irq_handler(void *opaque, int n, int level)
{
    struct fixture *f = opaque;
    if (n == 1)
        f->kbd_level = level;
    else
        f->aux_level = level;
}

static void reset_cb(void *opaque)
{
    ((struct fixture *)opaque)->resets++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->ml = ml_new();
    f->io = as_new("io", f->ml);
    f->k = i8042_new(f->io, (struct irq){ irq_handler, f, 1 }, (struct irq){ irq_handler, f, 12 },
                     reset_cb, f);
    assert_non_null(f->k);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    i8042_free(f->k);
    as_free(f->io);
    ml_free(f->ml);
    free(f);
    return 0;
}

static uint8_t status(struct fixture *f) { return as_read(f->io, 0x64, 1); }
static uint8_t data(struct fixture *f) { return as_read(f->io, 0x60, 1); }
static void cmd(struct fixture *f, uint8_t v) { as_write(f->io, 0x64, v, 1); }
static void put(struct fixture *f, uint8_t v) { as_write(f->io, 0x60, v, 1); }

static void test_self_test_and_command_byte(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(status(f) & 0x01, 0);
    cmd(f, 0xAA);
    assert_int_equal(status(f) & 0x01, 1);
    assert_int_equal(f->kbd_level, 1);
    assert_int_equal(data(f), 0x55);
    assert_int_equal(status(f) & 0x01, 0);
    assert_int_equal(f->kbd_level, 0);
    cmd(f, 0x60);
    put(f, 0x44);                               /* translate + sys, no interrupts */
    cmd(f, 0x20);
    assert_int_equal(f->kbd_level, 0);          /* KBD_INT off now */
    assert_int_equal(data(f), 0x44);
    cmd(f, 0xAB);
    assert_int_equal(data(f), 0x00);            /* keyboard port test passes */
}

static void test_keyboard(void **state)
{
    struct fixture *f = *state;
    put(f, 0xFF);
    assert_int_equal(data(f), 0xFA);
    assert_int_equal(data(f), 0xAA);
    put(f, 0xF2);
    assert_int_equal(data(f), 0xFA);
    assert_int_equal(data(f), 0xAB);
    assert_int_equal(data(f), 0x41);            /* translated MF2 id */
    put(f, 0xED);
    assert_int_equal(data(f), 0xFA);
    put(f, 0x07);                               /* LED argument */
    assert_int_equal(data(f), 0xFA);
    assert_int_equal(status(f) & 0x01, 0);
}

static void test_aux(void **state)
{
    struct fixture *f = *state;
    cmd(f, 0xD3);
    put(f, 0x5A);                               /* aux loopback, as Linux probes */
    assert_int_equal(status(f) & 0x21, 0x21);
    assert_int_equal(f->aux_level, 1);
    assert_int_equal(data(f), 0x5A);
    cmd(f, 0xD4);
    put(f, 0xF2);                               /* mouse: identify */
    assert_int_equal(data(f), 0xFA);
    assert_int_equal(data(f), 0x00);
}

static void test_reset(void **state)
{
    struct fixture *f = *state;
    cmd(f, 0xFE);                               /* pulse the reset line */
    assert_int_equal(f->resets, 1);
    cmd(f, 0xD1);
    put(f, 0x02);                               /* output port with bit 0 low */
    assert_int_equal(f->resets, 2);
    cmd(f, 0xD1);
    put(f, 0x03);
    assert_int_equal(f->resets, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_self_test_and_command_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aux, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
