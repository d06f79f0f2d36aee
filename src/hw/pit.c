/* 8254 PIT. A channel's state is its programmed count and the time it was
 * loaded; the current count and OUT are computed from the clock when read,
 * so only channel 0's interrupt needs a host timer. */
#include "hw/pit.h"

#include <stdbool.h>
#include <stdlib.h>
#include "hw/memory.h"
#include "util/mainloop.h"

#define PIT_MIN_PERIOD_NS 100000

enum { RW_LATCH = 0, RW_LSB = 1, RW_MSB = 2, RW_WORD0 = 3, RW_WORD1 = 4 };

struct pit_chan {
    uint32_t count;               /* 1..65536 */
    int64_t load_ns;              /* when counting (re)started */
    uint16_t latched;
    uint8_t latch_state;          /* RW_* while a latched count is pending, else 0 */
    uint8_t status;
    bool status_latched;
    uint8_t rw_mode, read_state, write_state, write_lsb;
    uint8_t mode, bcd;
    bool gate, counting;
};

struct pit {
    struct pit_chan ch[3];
    struct irq irq0;
    struct timer *timer;
    bool speaker;
};

static int64_t pit_ticks(int64_t ns)
{
    return (int64_t)((__int128)ns * PIT_FREQ / 1000000000LL);
}

static int64_t pit_ns(int64_t ticks)
{
    return (int64_t)(((__int128)ticks * 1000000000LL + PIT_FREQ - 1) / PIT_FREQ);
}

static int64_t pit_elapsed(const struct pit_chan *c, int64_t now)
{
    return c->counting ? pit_ticks(now - c->load_ns) : 0;
}

static uint16_t pit_count(const struct pit_chan *c, int64_t now)
{
    int64_t d = pit_elapsed(c, now);
    switch (c->mode) {
    case 2:
        return c->count - d % c->count;
    case 3:
        return c->count - (2 * d) % c->count;
    default:
        return (c->count - d) & 0xffff;
    }
}

static int pit_out(const struct pit_chan *c, int64_t now)
{
    int64_t d = pit_elapsed(c, now);
    if (!c->counting)
        return c->mode != 0;
    switch (c->mode) {
    case 0:
        return d >= c->count;
    case 1:
        return d < c->count;
    case 2:
        return !(d % c->count == 0 && d);
    case 3:
        return d % c->count < ((c->count + 1) >> 1);
    default:
        return d != c->count;
    }
}

/* Next tick at which channel 0 should interrupt, or -1. */
static int64_t pit_next_irq_tick(const struct pit_chan *c, int64_t now)
{
    int64_t d = pit_elapsed(c, now);
    switch (c->mode) {
    case 2:
    case 3:
        return (d / c->count + 1) * c->count;
    case 0:
    case 4:
        return d < c->count ? (int64_t)c->count : -1;
    default:
        return -1;
    }
}

static void pit_arm(struct pit *p)
{
    struct pit_chan *c = &p->ch[0];
    if (!c->counting) {
        timer_del(p->timer);
        return;
    }
    int64_t now = clock_ns();
    int64_t t = pit_next_irq_tick(c, now);
    if (t < 0) {
        timer_del(p->timer);
        return;
    }
    int64_t e = c->load_ns + pit_ns(t);
    /* Periodic rates above 10 kHz are throttled so the loop cannot spin. */
    if ((c->mode == 2 || c->mode == 3) && pit_ns(c->count) < PIT_MIN_PERIOD_NS &&
        e < now + PIT_MIN_PERIOD_NS)
        e = now + PIT_MIN_PERIOD_NS;
    timer_mod(p->timer, e);
}

static void pit_timer_cb(void *opaque)
{
    struct pit *p = opaque;
    struct pit_chan *c = &p->ch[0];
    if (c->mode == 0) {
        irq_raise(&p->irq0);          /* OUT stays high until reprogrammed */
    } else {
        irq_raise(&p->irq0);
        irq_lower(&p->irq0);
    }
    if (c->mode == 2 || c->mode == 3)
        pit_arm(p);
}

static void pit_load(struct pit *p, int ch, uint32_t v)
{
    struct pit_chan *c = &p->ch[ch];
    c->count = v ? v : 0x10000;
    c->load_ns = clock_ns();
    c->counting = true;
    if (ch == 0) {
        if (c->mode == 0)
            irq_lower(&p->irq0);
        pit_arm(p);
    }
}

static void pit_latch(struct pit_chan *c, int64_t now)
{
    if (c->latch_state)
        return;
    c->latched = pit_count(c, now);
    c->latch_state = c->rw_mode;
}

static void pit_control(struct pit *p, uint8_t v)
{
    int64_t now = clock_ns();
    int ch = v >> 6;
    if (ch == 3) {                               /* read-back */
        for (int i = 0; i < 3; i++) {
            if (!(v & (2 << i)))
                continue;
            struct pit_chan *c = &p->ch[i];
            if (!(v & 0x20))
                pit_latch(c, now);
            if (!(v & 0x10) && !c->status_latched) {
                c->status = (pit_out(c, now) << 7) | (c->rw_mode << 4) | (c->mode << 1) | c->bcd;
                c->status_latched = true;
            }
        }
        return;
    }
    struct pit_chan *c = &p->ch[ch];
    int access = (v >> 4) & 3;
    if (!access) {
        pit_latch(c, now);
        return;
    }
    c->rw_mode = access;
    c->read_state = c->write_state = access;
    c->mode = (v >> 1) & 7;
    if (c->mode > 5)
        c->mode -= 4;
    c->bcd = v & 1;
    c->counting = false;                         /* until the count is written */
    if (ch == 0) {
        if (c->mode == 0)
            irq_lower(&p->irq0);
        timer_del(p->timer);
    }
}

static void pit_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pit *p = opaque;
    uint8_t v = val;
    if (off == 3) {
        pit_control(p, v);
        return;
    }
    struct pit_chan *c = &p->ch[off];
    switch (c->write_state) {
    case RW_LSB:
        pit_load(p, off, v);
        break;
    case RW_MSB:
        pit_load(p, off, v << 8);
        break;
    case RW_WORD0:
        c->write_lsb = v;
        c->write_state = RW_WORD1;
        break;
    case RW_WORD1:
        pit_load(p, off, c->write_lsb | (v << 8));
        c->write_state = RW_WORD0;
        break;
    }
}

static uint8_t pit_read_latched(struct pit_chan *c)
{
    uint8_t v;
    switch (c->latch_state) {
    case RW_LSB:
        v = c->latched;
        c->latch_state = 0;
        break;
    case RW_MSB:
        v = c->latched >> 8;
        c->latch_state = 0;
        break;
    case RW_WORD0:
        v = c->latched;
        c->latch_state = RW_MSB;
        break;
    default:
        v = c->latched >> 8;
        c->latch_state = 0;
        break;
    }
    return v;
}

static uint64_t pit_read(void *opaque, uint64_t off, unsigned size)
{
    struct pit *p = opaque;
    if (off == 3)
        return 0xff;
    struct pit_chan *c = &p->ch[off];
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    if (c->latch_state)
        return pit_read_latched(c);
    uint16_t cnt = pit_count(c, clock_ns());
    switch (c->read_state) {
    case RW_LSB:
        return cnt & 0xff;
    case RW_MSB:
        return cnt >> 8;
    case RW_WORD0:
        c->read_state = RW_WORD1;
        return cnt & 0xff;
    default:
        c->read_state = RW_WORD0;
        return cnt >> 8;
    }
}

/* Port 0x61 (system control port B). */
static uint64_t pit_port61_read(void *opaque, uint64_t off, unsigned size)
{
    struct pit *p = opaque;
    int64_t now = clock_ns();
    int refresh = (now / 15085) & 1;             /* DRAM refresh toggles every ~15 us */
    return p->ch[2].gate | (p->speaker << 1) | (refresh << 4) | (pit_out(&p->ch[2], now) << 5);
}

static void pit_port61_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pit *p = opaque;
    struct pit_chan *c = &p->ch[2];
    bool gate = val & 1;
    p->speaker = (val >> 1) & 1;
    /* A rising gate restarts modes 1, 2, 3 and 5; modes 0 and 4 count
     * regardless here (Linux only gates them around a fresh load). */
    if (gate && !c->gate && c->counting && c->mode != 0 && c->mode != 4)
        c->load_ns = clock_ns();
    c->gate = gate;
}

static const struct mem_ops pit_ops = { pit_read, pit_write };
static const struct mem_ops port61_ops = { pit_port61_read, pit_port61_write };

void pit_reset(struct pit *p)
{
    for (int i = 0; i < 3; i++) {
        struct pit_chan *c = &p->ch[i];
        *c = (struct pit_chan){ .count = 0x10000, .mode = 3, .gate = i != 2,
                                .rw_mode = RW_WORD0, .read_state = RW_WORD0,
                                .write_state = RW_WORD0 };
    }
    p->speaker = false;
    timer_del(p->timer);
}

struct pit *pit_new(struct address_space *io, struct mainloop *ml, struct irq irq0)
{
    struct pit *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->irq0 = irq0;
    p->timer = timer_new(ml, pit_timer_cb, p);
    pit_reset(p);
    if (io) {
        as_add_io(io, 0x40, 4, &pit_ops, p, "pit", 0);
        as_add_io(io, 0x61, 1, &port61_ops, p, "port61", 0);
    }
    return p;
}

void pit_free(struct pit *p)
{
    if (!p)
        return;
    timer_free(p->timer);
    free(p);
}
