/* Local APIC and I/O APIC with no CPU: routing a pin to an APIC, priority
 * against TPR/ISR, EOI broadcast and remote IRR for level pins, IPIs,
 * MSI, the timer in one-shot and periodic modes, ExtINT from the PIC. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "hw/apic.h"
#include "hw/ioapic.h"
#include "hw/memory.h"
#include "util/mainloop.h"

struct cpu {
    unsigned events;
    int sipi;
    int64_t kick_ns;              /* when the last interrupt kick came */
};

static void kick(void *o, unsigned ev)
{
    ((struct cpu *)o)->events |= ev;
    ((struct cpu *)o)->kick_ns = clock_ns();
}
static void sipi(void *o, uint8_t v) { ((struct cpu *)o)->sipi = v; }
static const struct apic_cpu_ops ops = { kick, sipi };

static struct mainloop *ml;
static struct address_space *mem;
static struct apic_bus *bus;
static struct apic *ap[2];
static struct ioapic *io;
static struct cpu cpus[2];

static int setup(void **state)
{
    ml = ml_new();
    mem = as_new("mem", ml);
    bus = apic_bus_new(ml);
    for (int i = 0; i < 2; i++) {
        cpus[i] = (struct cpu){ 0, -1, 0 };
        ap[i] = apic_new(bus, i, &ops, &cpus[i]);
        apic_mmio_write(ap[i], 0xf0, 0x1ff);     /* SVR: enabled, spurious 0xff */
    }
    io = ioapic_new(mem, bus);
    return 0;
}

static int teardown(void **state)
{
    ioapic_free(io);
    apic_bus_free(bus);
    as_free(mem);
    ml_free(ml);
    return 0;
}

static void rte(int pin, uint32_t lo, uint8_t dest)
{
    as_write(mem, IOAPIC_BASE, 0x10 + 2 * pin + 1, 4);
    as_write(mem, IOAPIC_BASE + 0x10, (uint32_t)dest << 24, 4);
    as_write(mem, IOAPIC_BASE, 0x10 + 2 * pin, 4);
    as_write(mem, IOAPIC_BASE + 0x10, lo, 4);
}

static void test_ioapic_edge_to_apic1(void **state)
{
    as_write(mem, IOAPIC_BASE, 1, 4);
    assert_int_equal(as_read(mem, IOAPIC_BASE + 0x10, 4), 0x170020);
    rte(4, 0x41, 1);                             /* vector 0x41, fixed, physical, to APIC 1 */
    ioapic_set_irq(io, 4, 1);
    ioapic_set_irq(io, 4, 0);
    assert_int_equal(cpus[0].events, 0);
    assert_true(cpus[1].events & APIC_EV_INTR);
    assert_int_equal(apic_ack(ap[1]), 0x41);
    assert_int_equal(apic_ack(ap[1]), -1);
    assert_int_equal(apic_mmio_read(ap[1], 0x100 + 0x20), 1u << 1);   /* ISR bit 0x41 */
    apic_mmio_write(ap[1], 0xb0, 0);
    assert_int_equal(apic_mmio_read(ap[1], 0x100 + 0x20), 0);
    /* Masked pins deliver nothing. */
    rte(5, 0x10042, 0);
    ioapic_set_irq(io, 5, 1);
    assert_int_equal(apic_ack(ap[0]), -1);
}

static void test_level_remote_irr_and_eoi(void **state)
{
    rte(9, 0x8051, 0);                           /* level, vector 0x51 */
    ioapic_set_irq(io, 9, 1);
    assert_int_equal(apic_ack(ap[0]), 0x51);
    as_write(mem, IOAPIC_BASE, 0x10 + 18, 4);
    assert_true(as_read(mem, IOAPIC_BASE + 0x10, 4) & (1 << 14));   /* remote IRR */
    assert_true(apic_mmio_read(ap[0], 0x180 + 0x20) & (1u << 0x11)); /* TMR */
    apic_mmio_write(ap[0], 0xb0, 0);             /* EOI with the line still high: again */
    assert_int_equal(apic_ack(ap[0]), 0x51);
    ioapic_set_irq(io, 9, 0);
    apic_mmio_write(ap[0], 0xb0, 0);
    assert_false(as_read(mem, IOAPIC_BASE + 0x10, 4) & (1 << 14));
    assert_int_equal(apic_ack(ap[0]), -1);
}

static void test_priority(void **state)
{
    apic_set_irq(ap[0], 0x35, false);
    apic_set_irq(ap[0], 0x62, false);
    apic_mmio_write(ap[0], 0x80, 0x70);          /* TPR class 7 blocks both */
    assert_int_equal(apic_ack(ap[0]), -1);
    apic_set_cr8(ap[0], 5);
    assert_int_equal(apic_mmio_read(ap[0], 0x80), 0x50);
    assert_int_equal(apic_ack(ap[0]), 0x62);
    assert_int_equal(apic_mmio_read(ap[0], 0xa0), 0x60);            /* PPR */
    assert_int_equal(apic_ack(ap[0]), -1);       /* 0x35 is below TPR */
    apic_set_cr8(ap[0], 0);
    assert_int_equal(apic_ack(ap[0]), -1);       /* ...and below the in-service 0x62 */
    apic_mmio_write(ap[0], 0xb0, 0);
    assert_int_equal(apic_ack(ap[0]), 0x35);
}

static void test_ipis_and_msi(void **state)
{
    apic_mmio_write(ap[0], 0x310, 1u << 24);
    apic_mmio_write(ap[0], 0x300, 0x4500);       /* INIT, assert */
    assert_true(cpus[1].events & APIC_EV_INIT);
    apic_mmio_write(ap[0], 0x300, 0x4608);       /* SIPI vector 8 */
    assert_int_equal(cpus[1].sipi, 8);
    apic_mmio_write(ap[1], 0xf0, 0x1ff);
    apic_mmio_write(ap[0], 0x300, 0xc0000 | 0x77);  /* all but self, fixed */
    assert_int_equal(apic_ack(ap[1]), 0x77);
    assert_int_equal(apic_ack(ap[0]), -1);
    apic_mmio_write(ap[1], 0xb0, 0);
    apic_mmio_write(ap[0], 0x300, 0x40000 | 0x78);  /* self */
    assert_int_equal(apic_ack(ap[0]), 0x78);
    /* Logical flat: APIC 1 has LDR bit 1. */
    apic_mmio_write(ap[1], 0xd0, 0x02000000);
    apic_bus_msi(bus, 0xfee00000 | (2 << 12) | (1 << 2), 0x66);
    assert_int_equal(apic_ack(ap[1]), 0x66);
    cpus[0].events = 0;
    apic_bus_msi(bus, 0xfee00000, 0x400);        /* NMI to APIC 0 */
    assert_true(cpus[0].events & APIC_EV_NMI);
}

static void stop(void *o) { ml_quit(ml); }

static void run_ms(int ms)
{
    struct timer *t = timer_new(ml, stop, NULL);
    timer_mod(t, clock_ns() + ms * 1000000LL);
    ml_run(ml);
    timer_free(t);
}

static void test_timer(void **state)
{
    apic_mmio_write(ap[0], 0x3e0, 0xb);          /* divide by 1: 1 ns ticks */
    apic_mmio_write(ap[0], 0x320, 0x30);         /* one-shot, vector 0x30 */
    cpus[0].kick_ns = 0;
    int64_t t0 = clock_ns();
    apic_mmio_write(ap[0], 0x380, 5000000);      /* 5 ms */
    uint32_t c = apic_mmio_read(ap[0], 0x390);
    assert_true(c > 0 && c <= 5000000);
    if (clock_ns() - t0 < 4000000)               /* unless the host stalled us */
        assert_int_equal(apic_ack(ap[0]), -1);
    run_ms(10);
    assert_int_equal(apic_ack(ap[0]), 0x30);
    assert_true(cpus[0].kick_ns - t0 >= 5000000);   /* never early */
    assert_int_equal(apic_mmio_read(ap[0], 0x390), 0);
    apic_mmio_write(ap[0], 0xb0, 0);
    /* Periodic: 1 ms period over 20 ms coalesces in IRR but keeps firing. */
    int64_t p0 = clock_ns();
    apic_mmio_write(ap[0], 0x320, 0x20031);
    apic_mmio_write(ap[0], 0x380, 1000000);
    run_ms(6);
    /* Ticks the "CPU" did not take are kept: one comes back per EOI, and
     * never more than the periods that have elapsed. */
    int taken = 0;
    while (apic_ack(ap[0]) == 0x31) {
        taken++;
        apic_mmio_write(ap[0], 0xb0, 0);
    }
    int64_t periods = (clock_ns() - p0) / 1000000;
    assert_true(taken >= 4 && taken <= periods + 1);
    run_ms(3);
    assert_int_equal(apic_ack(ap[0]), 0x31);
    assert_true(apic_mmio_read(ap[0], 0x390) <= 1000000);
    apic_mmio_write(ap[0], 0xb0, 0);
    /* A 1 ns period is stretched to 100 us: the loop is not flooded. */
    int64_t f0 = clock_ns();
    apic_mmio_write(ap[0], 0x380, 1);
    run_ms(10);
    int fast = 0;
    while (apic_ack(ap[0]) == 0x31) {
        fast++;
        apic_mmio_write(ap[0], 0xb0, 0);
    }
    assert_true(fast >= 1 && fast <= (clock_ns() - f0) / 100000 + 1);
}

static int pic_vec = 0x28, pic_pend = 1;
static int fake_ack(void *o) { pic_pend = 0; return pic_vec; }
static bool fake_pending(void *o) { return pic_pend; }

static void test_extint(void **state)
{
    apic_bus_set_pic(bus, fake_ack, fake_pending, NULL);
    assert_int_equal(apic_ack(ap[0]), -1);       /* LINT0 masked after reset */
    apic_setup_virtual_wire(ap[0]);
    cpus[0].events = 0;
    apic_bus_pic_intr(bus, 1);
    assert_true(cpus[0].events & APIC_EV_INTR);
    assert_int_equal(cpus[1].events & APIC_EV_INTR, 0);
    assert_int_equal(apic_ack(ap[0]), 0x28);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ioapic_edge_to_apic1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_remote_irr_and_eoi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipis_and_msi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extint, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
