/* 8254: counting down at 1.193182 MHz, latches, read-back, channel 0
 * periodic interrupts, channel 2 mode 0 seen through port 0x61 the way
 * Linux calibrates the TSC. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <time.h>
#include "hw/memory.h"
#include "hw/pit.h"
#include "util/mainloop.h"

static int rises;
static int level;
static void irq_handler(void *o, int n, int l)
{
    if (l && !level)
        rises++;
    level = l;
}

static struct mainloop *ml;
static struct address_space *io;
static struct pit *pit;

static void outb(uint16_t p, uint8_t v) { as_write(io, p, v, 1); }
static uint8_t inb(uint16_t p) { return as_read(io, p, 1); }

static int setup(void **state)
{
    ml = ml_new();
    io = as_new("io", ml);
    pit = pit_new(io, ml, (struct irq){ irq_handler, NULL, 0 });
    rises = level = 0;
    return 0;
}

static int teardown(void **state)
{
    pit_free(pit);
    as_free(io);
    ml_free(ml);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

static uint16_t latch0(void)
{
    outb(0x43, 0x00);                            /* counter latch, channel 0 */
    uint16_t lo = inb(0x40);
    return lo | inb(0x40) << 8;
}

static int64_t ticks(int64_t ns) { return ns * PIT_FREQ / 1000000000LL; }

static void test_counts_down(void **state)
{
    outb(0x43, 0x30);                            /* ch0, lo/hi, mode 0: wraps mod 2^16 */
    outb(0x40, 0xff);
    outb(0x40, 0xff);
    int64_t t0 = clock_ns();
    uint16_t a = latch0();
    int64_t t1 = clock_ns();
    sleep_ms(10);
    int64_t t2 = clock_ns();
    uint16_t b = latch0();
    int64_t t3 = clock_ns();
    /* The counts moved by the ticks elapsed between the two latches,
     * whatever the host scheduler did to us. */
    bool found = false;
    for (int64_t d = ticks(t2 - t1) - 2; d <= ticks(t3 - t0) + 2 && !found; d++)
        found = ((a - d) & 0xffff) == b;
    assert_true(found);
    assert_true(ticks(t3 - t0) >= 11000);
    /* Read-back status: lo/hi access, mode 0. */
    outb(0x43, 0xe2);                            /* status only, channel 0 */
    assert_int_equal(inb(0x40) & 0x3f, 0x30);
}

static void stop_loop(void *o) { ml_quit(ml); }

static void test_periodic_irq(void **state)
{
    outb(0x43, 0x34);
    outb(0x40, 1193 & 0xff);                     /* 1 kHz */
    outb(0x40, 1193 >> 8);
    struct timer *t = timer_new(ml, stop_loop, NULL);
    int64_t t0 = clock_ns();
    timer_mod(t, t0 + 50000000);
    ml_run(ml);
    int64_t ms = (clock_ns() - t0) / 1000000;
    timer_free(t);
    /* One per ms, never more; a stalled host may drop some. */
    assert_true(rises >= 10 && rises <= ms + 2);
}

static void test_fast_rate_throttled(void **state)
{
    outb(0x43, 0x34);
    outb(0x40, 2);                               /* 600 kHz asked for */
    outb(0x40, 0);
    struct timer *t = timer_new(ml, stop_loop, NULL);
    int64_t t0 = clock_ns();
    timer_mod(t, t0 + 10000000);
    ml_run(ml);
    int64_t us = (clock_ns() - t0) / 1000;
    timer_free(t);
    assert_true(rises >= 1 && rises <= us / 100 + 2);
}

static void test_channel2_gate_and_out(void **state)
{
    outb(0x61, (inb(0x61) & ~0x02) | 0x01);     /* gate on, speaker off */
    outb(0x43, 0xb0);                            /* ch2, lo/hi, mode 0 */
    outb(0x42, 0x00);
    int64_t t0 = clock_ns();
    outb(0x42, 0x10);                            /* 4096 ticks, ~3.4 ms */
    uint8_t v = inb(0x61);
    if (clock_ns() - t0 < 3000000)               /* unless the host stalled us */
        assert_int_equal(v & 0x20, 0);           /* OUT low while counting */
    sleep_ms(8);
    assert_int_equal(inb(0x61) & 0x20, 0x20);    /* terminal count reached */
    assert_int_equal(inb(0x61) & 0x03, 0x01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_rate_throttled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel2_gate_and_out, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
