/* MC146818: host time in BCD and binary, 12-hour mode, setting the
 * clock, NVRAM, memory-size bytes, periodic interrupt. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>
#include "hw/memory.h"
#include "hw/rtc.h"
#include "util/mainloop.h"

static struct mainloop *ml;
static struct address_space *io;
static struct rtc *rtc;
static int irqs, level;

static void irq_handler(void *o, int n, int l)
{
    if (l && !level)
        irqs++;
    level = l;
}

static int setup(void **state)
{
    ml = ml_new();
    io = as_new("io", ml);
    rtc = rtc_new(io, ml, (struct irq){ irq_handler, NULL, 8 });
    irqs = level = 0;
    return 0;
}

static int teardown(void **state)
{
    rtc_free(rtc);
    as_free(io);
    ml_free(ml);
    return 0;
}

static uint8_t cmos(uint8_t i) { as_write(io, 0x70, i, 1); return as_read(io, 0x71, 1); }
static void cmos_w(uint8_t i, uint8_t v) { as_write(io, 0x70, i, 1); as_write(io, 0x71, v, 1); }
static int bcd(uint8_t v) { return (v >> 4) * 10 + (v & 15); }

/* Seconds since midnight per the RTC (BCD) vs. the host, tolerating a
 * second boundary between the reads. */
static void test_time_is_host_time_bcd(void **state)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    int s = bcd(cmos(0)), m = bcd(cmos(2)), h = bcd(cmos(4));
    int rtc_sod = h * 3600 + m * 60 + s, host_sod = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    int d = rtc_sod - host_sod;
    assert_true(d >= 0 && d <= 2);
    assert_int_equal(bcd(cmos(7)), tm.tm_mday);
    assert_int_equal(bcd(cmos(8)), tm.tm_mon + 1);
    assert_int_equal(bcd(cmos(9)), tm.tm_year % 100);
    assert_int_equal(bcd(cmos(0x32)), (tm.tm_year + 1900) / 100);
    assert_int_equal(cmos(0x0d), 0x80);
    assert_int_equal(cmos(0x0a) & 0x7f, 0x26);
}

static void test_binary_and_set(void **state)
{
    cmos_w(0x0b, 0x80 | 0x04 | 0x02);            /* SET, binary, 24h */
    cmos_w(0x00, 30);
    cmos_w(0x02, 15);
    cmos_w(0x04, 13);
    cmos_w(0x07, 2);
    cmos_w(0x08, 3);
    cmos_w(0x09, 21);
    cmos_w(0x32, 20);
    cmos_w(0x0b, 0x04 | 0x02);                   /* run */
    assert_int_equal(cmos(0x04), 13);
    assert_int_equal(cmos(0x02), 15);
    int s = cmos(0x00);
    assert_true(s >= 30 && s <= 32);
    assert_int_equal(cmos(0x09), 21);
    cmos_w(0x0b, 0x04);                          /* 12-hour: 13h is 1 PM */
    assert_int_equal(cmos(0x04), 0x81);
}

static void test_nvram_and_memsize(void **state)
{
    cmos_w(0x40, 0x5a);
    assert_int_equal(cmos(0x40), 0x5a);
    rtc_set_mem_size(rtc, 0xe0000000ULL, 1ULL << 30);
    assert_int_equal(cmos(0x15) | cmos(0x16) << 8, 640);
    assert_int_equal(cmos(0x34) | cmos(0x35) << 8, (0xe0000000 - (16 << 20)) >> 16);
    assert_int_equal(cmos(0x5b) | cmos(0x5c) << 8 | cmos(0x5d) << 16, (1 << 30) >> 16);
}

static void stop(void *o) { ml_quit(ml); }

static void test_periodic_irq(void **state)
{
    cmos_w(0x0a, 0x26);                          /* 1024 Hz */
    cmos_w(0x0b, 0x02 | 0x40);                   /* PIE */
    struct timer *t = timer_new(ml, stop, NULL);
    timer_mod(t, clock_ns() + 30000000);
    ml_run(ml);
    /* Without reading C the line stays high: exactly one edge. */
    assert_int_equal(irqs, 1);
    assert_int_equal(cmos(0x0c) & 0xc0, 0xc0);   /* IRQF | PF, cleared by the read */
    assert_int_equal(level, 0);
    assert_int_equal(cmos(0x0c), 0);
    timer_mod(t, clock_ns() + 10000000);
    ml_run(ml);
    assert_int_equal(irqs, 2);
    timer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_time_is_host_time_bcd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nvram_and_memsize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_irq, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
