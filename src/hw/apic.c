/* Local APIC (Intel SDM vol. 3, chapter 10/11), xAPIC mode only. */
#include "hw/apic.h"

#include <stdlib.h>
#include <string.h>
#include "util/mainloop.h"

#define APIC_MAX 256

enum {
    R_ID = 0x20, R_VER = 0x30, R_TPR = 0x80, R_APR = 0x90, R_PPR = 0xa0, R_EOI = 0xb0,
    R_RRD = 0xc0, R_LDR = 0xd0, R_DFR = 0xe0, R_SVR = 0xf0, R_ISR = 0x100, R_TMR = 0x180,
    R_IRR = 0x200, R_ESR = 0x280, R_CMCI = 0x2f0, R_ICR_LO = 0x300, R_ICR_HI = 0x310,
    R_LVT_TIMER = 0x320, R_LVT_THERMAL = 0x330, R_LVT_PERF = 0x340, R_LVT_LINT0 = 0x350,
    R_LVT_LINT1 = 0x360, R_LVT_ERROR = 0x370, R_TMICT = 0x380, R_TMCCT = 0x390, R_TDCR = 0x3e0,
};
enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_CMCI, LVT_N };
#define LVT_MASKED (1u << 16)
#define LVT_LEVEL (1u << 15)
#define SVR_ENABLE (1u << 8)
#define ESR_ILLEGAL_VECTOR (1u << 6)
#define APIC_TIMER_BACKLOG_MAX 256   /* about a second of HZ=250 ticks */
#define APIC_MIN_PERIOD_NS 100000

struct apic {
    struct apic_bus *bus;
    int index;
    const struct apic_cpu_ops *ops;
    void *opaque;
    uint64_t base;
    uint8_t id;
    uint32_t tpr, ldr, dfr, svr, esr, esr_pending, icr_lo, icr_hi, tdcr;
    uint32_t lvt[LVT_N];
    uint32_t isr[8], tmr[8], irr[8];
    uint32_t tmict;
    int64_t t_load;               /* start of the current timer period */
    uint32_t timer_backlog;       /* periodic ticks not yet delivered */
    struct timer *timer;
};

struct apic_bus {
    struct mainloop *ml;
    struct apic *cpu[APIC_MAX];
    int n;
    int (*pic_ack)(void *);
    bool (*pic_pending)(void *);
    void *pic;
    void (*eoi)(void *, uint8_t);
    void *eoi_opaque;
    const struct apic_bus_router *router;
    void *router_opaque;
};

/* ---- 256-bit vector sets ---- */

static void vset(uint32_t *v, int n) { v[n >> 5] |= 1u << (n & 31); }
static void vclr(uint32_t *v, int n) { v[n >> 5] &= ~(1u << (n & 31)); }
static bool vtest(const uint32_t *v, int n) { return v[n >> 5] & (1u << (n & 31)); }

static int vhighest(const uint32_t *v)
{
    for (int i = 7; i >= 0; i--)
        if (v[i])
            return i * 32 + 31 - __builtin_clz(v[i]);
    return -1;
}

static uint32_t apic_ppr(const struct apic *a)
{
    int isrv = vhighest(a->isr);
    uint32_t isrc = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    return (a->tpr & 0xf0) >= isrc ? a->tpr & 0xff : isrc;
}

/* Highest IRR vector the CPU may take now, or -1. */
static int apic_deliverable(const struct apic *a)
{
    if (!(a->svr & SVR_ENABLE) || !(a->base & APIC_BASE_ENABLE))
        return -1;
    int v = vhighest(a->irr);
    if (v < 0 || (uint32_t)(v & 0xf0) <= (apic_ppr(a) & 0xf0))
        return -1;
    return v;
}

static bool apic_takes_extint(const struct apic *a)
{
    if (!(a->base & APIC_BASE_ENABLE))
        return a->base & APIC_BASE_BSP;           /* globally off: INTR wired through */
    uint32_t l = a->lvt[LVT_LINT0];
    return !(l & LVT_MASKED) && ((l >> 8) & 7) == APIC_DM_EXTINT;
}

static void apic_kick(struct apic *a, unsigned ev)
{
    if (a->ops && a->ops->kick)
        a->ops->kick(a->opaque, ev);
}

static void apic_check(struct apic *a)
{
    if (apic_deliverable(a) >= 0)
        apic_kick(a, APIC_EV_INTR);
}

void apic_set_irq(struct apic *a, uint8_t vector, bool level)
{
    if (vector < 16) {
        a->esr_pending |= ESR_ILLEGAL_VECTOR;
        return;
    }
    vset(a->irr, vector);
    if (level)
        vset(a->tmr, vector);
    else
        vclr(a->tmr, vector);
    apic_check(a);
}

int apic_ack(struct apic *a)
{
    int v = apic_deliverable(a);
    if (v >= 0) {
        vclr(a->irr, v);
        vset(a->isr, v);
        return v;
    }
    struct apic_bus *b = a->bus;
    if (b->pic_ack && apic_takes_extint(a) && b->pic_pending(b->pic))
        return b->pic_ack(b->pic);
    /* A pending but masked-by-priority APIC vector: nothing now. */
    return -1;
}

static void apic_timer_inject(struct apic *a);

static void apic_eoi(struct apic *a)
{
    int v = vhighest(a->isr);
    if (v < 0)
        return;
    vclr(a->isr, v);
    if (v == (int)(a->lvt[LVT_TIMER] & 0xff))
        apic_timer_inject(a);
    if (vtest(a->tmr, v)) {
        vclr(a->tmr, v);
        if (a->bus->eoi)
            a->bus->eoi(a->bus->eoi_opaque, v);
    }
    apic_check(a);
}

/* ---- timer ---- */

static uint32_t apic_divisor(const struct apic *a)
{
    uint32_t v = (a->tdcr & 3) | ((a->tdcr >> 1) & 4);
    return v == 7 ? 1 : 2u << v;
}

static int64_t apic_tick_ns(const struct apic *a)
{
    return (int64_t)apic_divisor(a) * (int64_t)(1000000000ULL / APIC_BUS_HZ);
}

static bool apic_periodic(const struct apic *a) { return ((a->lvt[LVT_TIMER] >> 17) & 3) == 1; }

/* A periodic timer faster than 10 kHz would only keep the event loop
 * spinning: such periods are stretched (KVM clamps them too). */
static int64_t apic_period_ns(const struct apic *a)
{
    int64_t p = (int64_t)a->tmict * apic_tick_ns(a);
    return apic_periodic(a) && p < APIC_MIN_PERIOD_NS ? APIC_MIN_PERIOD_NS : p;
}

static uint32_t apic_current_count(const struct apic *a)
{
    if (!a->tmict)
        return 0;
    int64_t ticks = (clock_ns() - a->t_load) / apic_tick_ns(a);
    if (apic_periodic(a))
        return a->tmict - (uint32_t)(ticks % a->tmict);
    return ticks >= a->tmict ? 0 : a->tmict - (uint32_t)ticks;
}

static void apic_timer_arm(struct apic *a)
{
    if (!a->tmict || ((a->lvt[LVT_TIMER] >> 17) & 3) == 2) {
        timer_del(a->timer);
        return;
    }
    timer_mod(a->timer, a->t_load + apic_period_ns(a));
}

/* Periodic ticks the guest could not take (its vCPU was descheduled, or
 * the previous tick was still pending) are kept and delivered one per
 * EOI, as KVM does: a guest counting jiffies by ticks then keeps time, and
 * Linux does not judge the TSC unstable against a lagging jiffies. */
static void apic_timer_inject(struct apic *a)
{
    uint8_t v = a->lvt[LVT_TIMER] & 0xff;
    if (!a->timer_backlog || (a->lvt[LVT_TIMER] & LVT_MASKED) || vtest(a->irr, v) ||
        vtest(a->isr, v))
        return;
    a->timer_backlog--;
    apic_set_irq(a, v, false);
}

static void apic_timer_cb(void *opaque)
{
    struct apic *a = opaque;
    uint32_t lvt = a->lvt[LVT_TIMER];
    if (!apic_periodic(a) || !a->tmict) {
        if (!(lvt & LVT_MASKED))
            apic_set_irq(a, lvt & 0xff, false);
        return;
    }
    int64_t period = apic_period_ns(a);
    int64_t n = (clock_ns() - a->t_load) / period;
    if (n < 1)
        n = 1;
    a->t_load += n * period;
    if (!(lvt & LVT_MASKED)) {
        a->timer_backlog += n;
        if (a->timer_backlog > APIC_TIMER_BACKLOG_MAX)
            a->timer_backlog = APIC_TIMER_BACKLOG_MAX;
        apic_timer_inject(a);
    }
    apic_timer_arm(a);
}

/* ---- delivery ---- */

static bool apic_match_logical(const struct apic *a, uint8_t dest)
{
    uint8_t ldr = a->ldr >> 24;
    if (dest == 0xff)
        return true;
    if ((a->dfr >> 28) == 0xf)                    /* flat */
        return ldr & dest;
    return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf);    /* cluster */
}

static bool apic_match(const struct apic *a, uint8_t dest, bool logical)
{
    if (logical)
        return apic_match_logical(a, dest);
    return dest == 0xff || dest == a->id;
}

static void apic_accept(struct apic *a, int mode, uint8_t vector, bool level)
{
    switch (mode) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        apic_set_irq(a, vector, level);
        break;
    case APIC_DM_NMI:
        apic_kick(a, APIC_EV_NMI);
        break;
    case APIC_DM_INIT:
        apic_reset(a, a->base & APIC_BASE_BSP);
        apic_kick(a, APIC_EV_INIT);
        break;
    case APIC_DM_SIPI:
        if (a->ops && a->ops->sipi)
            a->ops->sipi(a->opaque, vector);
        apic_kick(a, APIC_EV_SIPI);
        break;
    case APIC_DM_EXTINT:
        apic_kick(a, APIC_EV_INTR);
        break;
    }
}

void apic_bus_deliver(struct apic_bus *b, uint8_t dest, bool logical, int mode, uint8_t vector,
                      bool level)
{
    if (b->router) {
        uint64_t addr = APIC_DEFAULT_BASE | (uint64_t)dest << 12 | (logical ? 1u << 2 : 0);
        uint32_t data = vector | (uint32_t)mode << 8 | (level ? 1u << 15 | 1u << 14 : 0);
        b->router->msi(b->router_opaque, addr, data);
        return;
    }
    for (int i = 0; i < b->n; i++) {
        struct apic *a = b->cpu[i];
        if (!apic_match(a, dest, logical))
            continue;
        apic_accept(a, mode, vector, level);
        if (mode == APIC_DM_LOWEST)              /* one target is enough */
            break;
    }
}

void apic_bus_msi(struct apic_bus *b, uint64_t addr, uint32_t data)
{
    if (b->router) {
        b->router->msi(b->router_opaque, addr, data);
        return;
    }
    uint8_t dest = (addr >> 12) & 0xff;
    bool logical = addr & (1 << 2);
    apic_bus_deliver(b, dest, logical, (data >> 8) & 7, data & 0xff, false);
}

static void apic_send_ipi(struct apic *a)
{
    uint32_t lo = a->icr_lo;
    int mode = (lo >> 8) & 7, shorthand = (lo >> 18) & 3;
    uint8_t vector = lo & 0xff;
    /* INIT level de-assert is a no-op on modern CPUs. */
    if (mode == APIC_DM_INIT && !(lo & (1 << 14)) && (lo & (1 << 15)))
        return;
    struct apic_bus *b = a->bus;
    switch (shorthand) {
    case 0:
        apic_bus_deliver(b, a->icr_hi >> 24, lo & (1 << 11), mode, vector, false);
        break;
    case 1:
        apic_accept(a, mode, vector, false);
        break;
    default:
        for (int i = 0; i < b->n; i++)
            if (shorthand == 2 || b->cpu[i] != a)
                apic_accept(b->cpu[i], mode, vector, false);
    }
}

void apic_bus_pic_intr(struct apic_bus *b, int level)
{
    if (!level)
        return;
    if (b->router && b->n) {
        apic_kick(b->cpu[0], APIC_EV_INTR);
        return;
    }
    for (int i = 0; i < b->n; i++)
        if (apic_takes_extint(b->cpu[i]))
            apic_kick(b->cpu[i], APIC_EV_INTR);
}

/* ---- registers ---- */

uint32_t apic_mmio_read(struct apic *a, uint32_t off)
{
    off &= 0xff0;
    switch (off) {
    case R_ID: return (uint32_t)a->id << 24;
    case R_VER: return 0x14 | ((LVT_N - 1) << 16);
    case R_TPR: return a->tpr;
    case R_APR: return 0;
    case R_PPR: return apic_ppr(a);
    case R_LDR: return a->ldr;
    case R_DFR: return a->dfr;
    case R_SVR: return a->svr;
    case R_ESR: return a->esr;
    case R_ICR_LO: return a->icr_lo & ~(1u << 12);
    case R_ICR_HI: return a->icr_hi;
    case R_CMCI: return a->lvt[LVT_CMCI];
    case R_LVT_TIMER: case R_LVT_THERMAL: case R_LVT_PERF: case R_LVT_LINT0:
    case R_LVT_LINT1: case R_LVT_ERROR:
        return a->lvt[(off - R_LVT_TIMER) >> 4];
    case R_TMICT: return a->tmict;
    case R_TMCCT: return apic_current_count(a);
    case R_TDCR: return a->tdcr;
    }
    if (off >= R_ISR && off < R_ISR + 0x80)
        return a->isr[(off - R_ISR) >> 4];
    if (off >= R_TMR && off < R_TMR + 0x80)
        return a->tmr[(off - R_TMR) >> 4];
    if (off >= R_IRR && off < R_IRR + 0x80)
        return a->irr[(off - R_IRR) >> 4];
    return 0;
}

static void apic_write_lvt(struct apic *a, int i, uint32_t val)
{
    static const uint32_t mask[LVT_N] = {
        [LVT_TIMER] = 0x700ff, [LVT_THERMAL] = 0x107ff, [LVT_PERF] = 0x107ff,
        [LVT_LINT0] = 0x1a7ff, [LVT_LINT1] = 0x1a7ff, [LVT_ERROR] = 0x100ff,
        [LVT_CMCI] = 0x107ff,
    };
    if (!(a->svr & SVR_ENABLE))
        val |= LVT_MASKED;
    uint32_t old = a->lvt[i];
    a->lvt[i] = val & mask[i];
    if (i == LVT_TIMER && ((old ^ a->lvt[i]) & (3 << 17))) {
        a->tmict = 0;                            /* mode change stops the timer */
        a->timer_backlog = 0;
        apic_timer_arm(a);
    }
    if (i == LVT_LINT0 && a->bus->pic_ack && apic_takes_extint(a) &&
        a->bus->pic_pending(a->bus->pic))
        apic_kick(a, APIC_EV_INTR);
}

void apic_mmio_write(struct apic *a, uint32_t off, uint32_t val)
{
    off &= 0xff0;
    switch (off) {
    case R_ID: a->id = val >> 24; break;
    case R_TPR: a->tpr = val & 0xff; apic_check(a); break;
    case R_EOI: apic_eoi(a); break;
    case R_LDR: a->ldr = val & 0xff000000; break;
    case R_DFR: a->dfr = val | 0x0fffffff; break;
    case R_SVR:
        a->svr = val & 0x11ff;
        if (!(a->svr & SVR_ENABLE))
            for (int i = 0; i < LVT_N; i++)
                a->lvt[i] |= LVT_MASKED;
        apic_check(a);
        break;
    case R_ESR: a->esr = a->esr_pending; a->esr_pending = 0; break;
    case R_ICR_LO: a->icr_lo = val & ~(1u << 12); apic_send_ipi(a); break;
    case R_ICR_HI: a->icr_hi = val & 0xff000000; break;
    case R_CMCI: apic_write_lvt(a, LVT_CMCI, val); break;
    case R_LVT_TIMER: case R_LVT_THERMAL: case R_LVT_PERF: case R_LVT_LINT0:
    case R_LVT_LINT1: case R_LVT_ERROR:
        apic_write_lvt(a, (off - R_LVT_TIMER) >> 4, val);
        break;
    case R_TMICT:
        a->tmict = val;
        a->timer_backlog = 0;
        a->t_load = clock_ns();
        apic_timer_arm(a);
        break;
    case R_TDCR: {
        uint32_t cur = apic_current_count(a);
        a->tdcr = val & 0xb;
        if (a->tmict) {                          /* keep the count, change the rate */
            a->t_load = clock_ns() - (int64_t)(a->tmict - cur) * apic_tick_ns(a);
            apic_timer_arm(a);
        }
        break;
    }
    }
}

uint8_t apic_get_cr8(struct apic *a) { return a->tpr >> 4; }

void apic_set_cr8(struct apic *a, uint8_t cr8)
{
    a->tpr = (cr8 & 15) << 4;
    apic_check(a);
}

uint64_t apic_get_base(struct apic *a) { return a->base; }

int apic_set_base(struct apic *a, uint64_t val)
{
    if (val & ~(0xffffff000ULL | APIC_BASE_BSP | APIC_BASE_ENABLE))
        return -1;
    bool was = a->base & APIC_BASE_ENABLE;
    a->base = val;
    if (was && !(val & APIC_BASE_ENABLE)) {     /* global disable resets the unit */
        apic_reset(a, val & APIC_BASE_BSP);
        a->base = val;
    }
    return 0;
}

uint64_t apic_mmio_addr(struct apic *a)
{
    uint64_t b = __atomic_load_n(&a->base, __ATOMIC_RELAXED);
    return (b & APIC_BASE_ENABLE) ? b & 0xffffff000ULL : ~0ULL;
}

void apic_reset(struct apic *a, bool bsp)
{
    a->base = APIC_DEFAULT_BASE | APIC_BASE_ENABLE | (bsp ? APIC_BASE_BSP : 0);
    a->id = a->index;
    a->tpr = a->ldr = a->esr = a->esr_pending = a->icr_lo = a->icr_hi = a->tdcr = 0;
    a->dfr = 0xffffffff;
    a->svr = 0xff;
    for (int i = 0; i < LVT_N; i++)
        a->lvt[i] = LVT_MASKED;
    memset(a->isr, 0, sizeof(a->isr));
    memset(a->tmr, 0, sizeof(a->tmr));
    memset(a->irr, 0, sizeof(a->irr));
    a->tmict = 0;
    a->timer_backlog = 0;
    timer_del(a->timer);
}

void apic_setup_virtual_wire(struct apic *a)
{
    a->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
    a->lvt[LVT_LINT1] = APIC_DM_NMI << 8;
}

struct apic *apic_new(struct apic_bus *b, int index, const struct apic_cpu_ops *ops,
                      void *opaque)
{
    if (b->n >= APIC_MAX)
        return NULL;
    struct apic *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->bus = b;
    a->index = index;
    a->ops = ops;
    a->opaque = opaque;
    a->timer = timer_new(b->ml, apic_timer_cb, a);
    apic_reset(a, index == 0);
    b->cpu[b->n++] = a;
    return a;
}

struct apic_bus *apic_bus_new(struct mainloop *ml)
{
    struct apic_bus *b = calloc(1, sizeof(*b));
    if (b)
        b->ml = ml;
    return b;
}

void apic_bus_free(struct apic_bus *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++) {
        timer_free(b->cpu[i]->timer);
        free(b->cpu[i]);
    }
    free(b);
}

void apic_bus_set_pic(struct apic_bus *b, int (*ack)(void *), bool (*pending)(void *),
                      void *opaque)
{
    b->pic_ack = ack;
    b->pic_pending = pending;
    b->pic = opaque;
}

void apic_bus_set_eoi_hook(struct apic_bus *b, void (*eoi)(void *, uint8_t), void *opaque)
{
    b->eoi = eoi;
    b->eoi_opaque = opaque;
}

struct apic *apic_bus_cpu(struct apic_bus *b, int index)
{
    return index >= 0 && index < b->n ? b->cpu[index] : NULL;
}

void apic_bus_set_router(struct apic_bus *b, const struct apic_bus_router *r, void *opaque)
{
    b->router = r;
    b->router_opaque = opaque;
}

const struct apic_bus_router *apic_bus_router(struct apic_bus *b, void **opaque)
{
    if (opaque)
        *opaque = b->router_opaque;
    return b->router;
}

int apic_bus_pic_ack(struct apic_bus *b)
{
    if (!b->pic_ack || !b->pic_pending(b->pic))
        return -1;
    return b->pic_ack(b->pic);
}

void apic_bus_eoi(struct apic_bus *b, uint8_t vector)
{
    if (b->eoi)
        b->eoi(b->eoi_opaque, vector);
}
