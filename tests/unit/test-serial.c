/* 16550A UART through its port window: transmit to a chardev, THRE and
 * RX interrupts and IIR priority, divisor latch, loopback (the checks
 * Linux's 8250 autoconfig makes), FIFO, overrun, break. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "chardev/chardev.h"
#include "hw/memory.h"
#include "hw/serial.h"
#include "util/mainloop.h"

#define COM1 0x3F8

struct fixture {
    struct mainloop *ml;
    struct address_space *io;
    struct chardev *chr;
    struct serial *s;
    char path[64];
    int level;
};

static void irq_handler(void *opaque, int n, int level)
{
    ((struct fixture *)opaque)->level = level;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct error err = {0};
    f->ml = ml_new();
    f->io = as_new("io", f->ml);
    snprintf(f->path, sizeof(f->path), "/tmp/quokka-serial-%d", (int)getpid());
    char spec[80];
    snprintf(spec, sizeof(spec), "file:%s", f->path);
    f->chr = chardev_new_spec(f->ml, spec, "serial0", &err);
    assert_non_null(f->chr);
    f->s = serial_new(f->io, COM1, (struct irq){ irq_handler, f, 4 }, f->chr);
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    serial_free(f->s);
    chardev_free(f->chr);
    unlink(f->path);
    as_free(f->io);
    ml_free(f->ml);
    free(f);
    return 0;
}

static uint8_t in(struct fixture *f, int reg) { return as_read(f->io, COM1 + reg, 1); }
static void out(struct fixture *f, int reg, uint8_t v) { as_write(f->io, COM1 + reg, v, 1); }

static void test_transmit(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(in(f, 5) & 0x60, 0x60);        /* THRE and TEMT */
    out(f, 0, 'o');
    out(f, 0, 'k');
    char buf[8] = {0};
    FILE *fp = fopen(f->path, "r");
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, sizeof(buf), fp), 2);
    fclose(fp);
    assert_string_equal(buf, "ok");
}

static void test_thre_interrupt(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(in(f, 2), 0x01);               /* nothing pending */
    out(f, 1, 0x02);                                /* IER: THRE */
    assert_int_equal(f->level, 1);
    assert_int_equal(in(f, 2), 0x02);               /* THRE; reading acknowledges */
    assert_int_equal(in(f, 2), 0x01);
    assert_int_equal(f->level, 0);
    out(f, 1, 0x00);
    out(f, 1, 0x02);                                /* re-enabling raises it again */
    assert_int_equal(in(f, 2), 0x02);
    out(f, 0, 'x');                                 /* sent at once: THR empty again */
    assert_int_equal(f->level, 1);
}

static void test_divisor_and_scratch(void **state)
{
    struct fixture *f = *state;
    out(f, 3, 0x80);                                /* DLAB */
    out(f, 0, 0x01);
    out(f, 1, 0x02);
    assert_int_equal(in(f, 0), 0x01);
    assert_int_equal(in(f, 1), 0x02);
    out(f, 3, 0x03);                                /* 8N1 */
    assert_int_equal(in(f, 1), 0x00);               /* IER again */
    out(f, 7, 0xA5);
    assert_int_equal(in(f, 7), 0xA5);
}

static void test_loopback(void **state)
{
    struct fixture *f = *state;
    out(f, 4, 0x10 | 0x0A);                         /* LOOP, RTS, OUT2 */
    assert_int_equal(in(f, 6) & 0xF0, 0x90);        /* CTS and DCD */
    out(f, 4, 0x1F);
    assert_int_equal(in(f, 6) & 0xF0, 0xF0);
    out(f, 2, 0x07);                                /* FIFO on, trigger 1 */
    out(f, 1, 0x01);                                /* IER: received data */
    out(f, 0, 'a');
    out(f, 0, 'b');
    assert_int_equal(f->level, 1);
    assert_int_equal(in(f, 2), 0xC4);               /* FIFO bits + data available */
    assert_int_equal(in(f, 5) & 0x01, 0x01);
    assert_int_equal(in(f, 0), 'a');
    assert_int_equal(in(f, 0), 'b');
    assert_int_equal(in(f, 5) & 0x01, 0x00);
    assert_int_equal(f->level, 0);
    FILE *fp = fopen(f->path, "r");                 /* loopback sends nothing out */
    fseek(fp, 0, SEEK_END);
    assert_int_equal(ftell(fp), 0);
    fclose(fp);
}

static void test_overrun_and_priority(void **state)
{
    struct fixture *f = *state;
    out(f, 4, 0x10);                                /* loopback, no FIFO: 1 byte */
    out(f, 1, 0x07);                                /* RLS, RDA, THRE */
    out(f, 0, '1');
    out(f, 0, '2');                                 /* overrun */
    assert_int_equal(in(f, 2), 0x06);               /* line status first */
    uint8_t lsr = in(f, 5);
    assert_int_equal(lsr & 0x03, 0x03);             /* OE and DR */
    assert_int_equal(in(f, 5) & 0x02, 0);           /* reading LSR cleared OE */
    assert_int_equal(in(f, 2), 0x04);               /* then received data */
    assert_int_equal(in(f, 0), '1');
    assert_int_equal(in(f, 2), 0x02);               /* then THRE */
}

static void test_fifo_trigger(void **state)
{
    struct fixture *f = *state;
    out(f, 4, 0x10);
    out(f, 2, 0x81);                                /* FIFO, trigger level 8 */
    out(f, 1, 0x01);
    for (int i = 0; i < 3; i++)
        out(f, 0, 'a' + i);
    assert_int_equal(in(f, 2), 0xCC);               /* below trigger: timeout */
    for (int i = 3; i < 20; i++)
        out(f, 0, 'a' + i);                         /* 16 fit, then overrun */
    assert_int_equal(in(f, 2) & 0x0F, 0x04);
    for (int i = 0; i < 16; i++)
        assert_int_equal(in(f, 0), 'a' + i);
    assert_int_equal(in(f, 5) & 0x03, 0x02);        /* empty; overrun seen */
    out(f, 0, 'z');
    out(f, 2, 0x83);                                /* clear RX FIFO */
    assert_int_equal(in(f, 5) & 0x01, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divisor_and_scratch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overrun_and_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_trigger, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
