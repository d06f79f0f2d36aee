/* MC146818 RTC. The guest's clock is host CLOCK_REALTIME plus an offset the
 * guest sets by writing the time registers; registers are computed on read,
 * so no timer runs unless the guest enables an interrupt. */
#include "hw/rtc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hw/memory.h"
#include "util/mainloop.h"

enum {
    R_SEC = 0, R_SEC_ALARM = 1, R_MIN = 2, R_MIN_ALARM = 3, R_HOUR = 4, R_HOUR_ALARM = 5,
    R_WDAY = 6, R_MDAY = 7, R_MON = 8, R_YEAR = 9, R_A = 10, R_B = 11, R_C = 12, R_D = 13,
    R_CENTURY = 0x32,
};
enum { A_UIP = 0x80, B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_DM = 0x04,
       B_24H = 0x02, C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10 };
#define UIP_NS 244000LL

struct rtc {
    uint8_t cmos[128];
    uint8_t index;
    int64_t offset_ns;            /* guest time = realtime + offset */
    struct irq irq;
    struct timer *periodic, *second;
    int64_t periodic_next;
};

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t rtc_now(struct rtc *r) { return realtime_ns() + r->offset_ns; }

static uint8_t to_reg(struct rtc *r, int v)
{
    return (r->cmos[R_B] & B_DM) ? v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int from_reg(struct rtc *r, uint8_t v)
{
    return (r->cmos[R_B] & B_DM) ? v : ((v >> 4) * 10 + (v & 15));
}

static uint8_t hour_reg(struct rtc *r, int h)
{
    if (r->cmos[R_B] & B_24H)
        return to_reg(r, h);
    int h12 = h % 12 ? h % 12 : 12;
    return to_reg(r, h12) | (h >= 12 ? 0x80 : 0);
}

static int hour_from_reg(struct rtc *r, uint8_t v)
{
    if (r->cmos[R_B] & B_24H)
        return from_reg(r, v);
    int h = from_reg(r, v & 0x7f) % 12;
    return (v & 0x80) ? h + 12 : h;
}

/* Store guest time t (seconds) into the time registers. */
static void rtc_fill(struct rtc *r, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    r->cmos[R_SEC] = to_reg(r, tm.tm_sec);
    r->cmos[R_MIN] = to_reg(r, tm.tm_min);
    r->cmos[R_HOUR] = hour_reg(r, tm.tm_hour);
    r->cmos[R_WDAY] = to_reg(r, tm.tm_wday + 1);
    r->cmos[R_MDAY] = to_reg(r, tm.tm_mday);
    r->cmos[R_MON] = to_reg(r, tm.tm_mon + 1);
    r->cmos[R_YEAR] = to_reg(r, tm.tm_year % 100);
    r->cmos[R_CENTURY] = to_reg(r, (tm.tm_year + 1900) / 100);
}

/* The time registers as the guest wrote them, back to an offset. */
static void rtc_take_time(struct rtc *r)
{
    struct tm tm = {0};
    tm.tm_sec = from_reg(r, r->cmos[R_SEC]);
    tm.tm_min = from_reg(r, r->cmos[R_MIN]);
    tm.tm_hour = hour_from_reg(r, r->cmos[R_HOUR]);
    tm.tm_mday = from_reg(r, r->cmos[R_MDAY]);
    tm.tm_mon = from_reg(r, r->cmos[R_MON]) - 1;
    tm.tm_year = from_reg(r, r->cmos[R_CENTURY]) * 100 + from_reg(r, r->cmos[R_YEAR]) - 1900;
    time_t t = timegm(&tm);
    int64_t sub = rtc_now(r) % 1000000000LL;
    r->offset_ns = (int64_t)t * 1000000000LL + sub - realtime_ns();
}

static void rtc_update_irq(struct rtc *r)
{
    uint8_t c = r->cmos[R_C] & (C_PF | C_AF | C_UF);
    uint8_t en = r->cmos[R_B] & (B_PIE | B_AIE | B_UIE);   /* same bit positions */
    if (c & en) {
        if (!(r->cmos[R_C] & C_IRQF)) {
            r->cmos[R_C] |= C_IRQF;
            irq_raise(&r->irq);
        }
    }
}

static int64_t rtc_period_ns(struct rtc *r)
{
    int rate = r->cmos[R_A] & 15;
    if (!rate)
        return 0;
    int ticks = rate <= 2 ? 1 << (rate + 6) : 1 << (rate - 1);
    return (int64_t)ticks * 1000000000LL / 32768;
}

static void rtc_arm_periodic(struct rtc *r)
{
    int64_t p = rtc_period_ns(r);
    if (!(r->cmos[R_B] & B_PIE) || !p) {
        timer_del(r->periodic);
        return;
    }
    int64_t now = clock_ns();
    if (!timer_pending(r->periodic) || r->periodic_next < now)
        r->periodic_next = now + p;
    timer_mod(r->periodic, r->periodic_next);
}

static void rtc_periodic_cb(void *opaque)
{
    struct rtc *r = opaque;
    r->cmos[R_C] |= C_PF;
    rtc_update_irq(r);
    int64_t p = rtc_period_ns(r);
    if (!p || !(r->cmos[R_B] & B_PIE))
        return;
    r->periodic_next += p;
    if (r->periodic_next < clock_ns())
        r->periodic_next = clock_ns() + p;       /* lost ticks: don't storm */
    timer_mod(r->periodic, r->periodic_next);
}

/* Next whole second of guest time, in monotonic ns. */
static void rtc_arm_second(struct rtc *r)
{
    if (!(r->cmos[R_B] & (B_AIE | B_UIE)) || (r->cmos[R_B] & B_SET)) {
        timer_del(r->second);
        return;
    }
    int64_t left = 1000000000LL - rtc_now(r) % 1000000000LL;
    timer_mod(r->second, clock_ns() + left);
}

static bool alarm_match(uint8_t alarm, uint8_t now)
{
    return (alarm & 0xc0) == 0xc0 || alarm == now;
}

static void rtc_second_cb(void *opaque)
{
    struct rtc *r = opaque;
    rtc_fill(r, (time_t)((rtc_now(r) + 1000000) / 1000000000LL));
    r->cmos[R_C] |= C_UF;
    if (alarm_match(r->cmos[R_SEC_ALARM], r->cmos[R_SEC]) &&
        alarm_match(r->cmos[R_MIN_ALARM], r->cmos[R_MIN]) &&
        alarm_match(r->cmos[R_HOUR_ALARM], r->cmos[R_HOUR]))
        r->cmos[R_C] |= C_AF;
    rtc_update_irq(r);
    /* Re-arm a little past the boundary so rounding never fires twice. */
    int64_t left = 1000000000LL - rtc_now(r) % 1000000000LL;
    if (left < 1000000)
        left += 1000000000LL;
    if (r->cmos[R_B] & (B_AIE | B_UIE))
        timer_mod(r->second, clock_ns() + left);
}

static uint8_t rtc_read_reg(struct rtc *r, int idx)
{
    bool frozen = r->cmos[R_B] & B_SET;
    switch (idx) {
    case R_SEC: case R_MIN: case R_HOUR: case R_WDAY: case R_MDAY: case R_MON:
    case R_YEAR: case R_CENTURY:
        if (!frozen)
            rtc_fill(r, (time_t)(rtc_now(r) / 1000000000LL));
        return r->cmos[idx];
    case R_A: {
        uint8_t v = r->cmos[R_A] & ~A_UIP;
        if (!frozen && rtc_now(r) % 1000000000LL >= 1000000000LL - UIP_NS)
            v |= A_UIP;
        return v;
    }
    case R_C: {
        uint8_t v = r->cmos[R_C];
        r->cmos[R_C] = 0;
        if (v & C_IRQF)
            irq_lower(&r->irq);
        return v;
    }
    case R_D:
        return 0x80;                             /* valid RAM and time */
    default:
        return r->cmos[idx];
    }
}

static void rtc_write_reg(struct rtc *r, int idx, uint8_t v)
{
    switch (idx) {
    case R_SEC: case R_MIN: case R_HOUR: case R_WDAY: case R_MDAY: case R_MON:
    case R_YEAR: case R_CENTURY:
        if (!(r->cmos[R_B] & B_SET))
            rtc_fill(r, (time_t)(rtc_now(r) / 1000000000LL));
        r->cmos[idx] = v;
        if (!(r->cmos[R_B] & B_SET))
            rtc_take_time(r);
        break;
    case R_A:
        r->cmos[R_A] = v & 0x7f;
        rtc_arm_periodic(r);
        break;
    case R_B: {
        uint8_t old = r->cmos[R_B];
        if ((v & B_SET) && !(old & B_SET))
            rtc_fill(r, (time_t)(rtc_now(r) / 1000000000LL));
        if ((v & (B_DM | B_24H)) != (old & (B_DM | B_24H)) && !(old & B_SET)) {
            r->cmos[R_B] = v;                    /* new format for the next fill */
            rtc_fill(r, (time_t)(rtc_now(r) / 1000000000LL));
        }
        r->cmos[R_B] = v;
        if (!(v & B_SET) && (old & B_SET))
            rtc_take_time(r);
        rtc_arm_periodic(r);
        rtc_arm_second(r);
        rtc_update_irq(r);
        break;
    }
    case R_C: case R_D:
        break;
    default:
        r->cmos[idx] = v;
    }
}

static uint64_t rtc_io_read(void *opaque, uint64_t off, unsigned size)
{
    struct rtc *r = opaque;
    return off ? rtc_read_reg(r, r->index) : 0xff;
}

static void rtc_io_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct rtc *r = opaque;
    if (off == 0)
        r->index = val & 0x7f;                   /* bit 7 is the NMI mask */
    else
        rtc_write_reg(r, r->index, (uint8_t)val);
}

static const struct mem_ops rtc_ops = { rtc_io_read, rtc_io_write };

void rtc_reset(struct rtc *r)
{
    r->cmos[R_A] = 0x26;                         /* 32.768 kHz, 1024 Hz rate */
    r->cmos[R_B] = B_24H;
    r->cmos[R_C] = 0;
    r->cmos[R_D] = 0x80;
    timer_del(r->periodic);
    timer_del(r->second);
    irq_lower(&r->irq);
}

struct rtc *rtc_new(struct address_space *io, struct mainloop *ml, struct irq irq8)
{
    struct rtc *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->irq = irq8;
    r->periodic = timer_new(ml, rtc_periodic_cb, r);
    r->second = timer_new(ml, rtc_second_cb, r);
    rtc_reset(r);
    if (io)
        as_add_io(io, 0x70, 2, &rtc_ops, r, "rtc", 0);
    return r;
}

void rtc_free(struct rtc *r)
{
    if (!r)
        return;
    timer_free(r->periodic);
    timer_free(r->second);
    free(r);
}

void rtc_set_cmos(struct rtc *r, int index, uint8_t val) { r->cmos[index & 0x7f] = val; }
uint8_t rtc_get_cmos(struct rtc *r, int index) { return r->cmos[index & 0x7f]; }

void rtc_set_mem_size(struct rtc *r, uint64_t below_4g, uint64_t above_4g)
{
    r->cmos[0x15] = 640 & 0xff;                  /* base memory, KiB */
    r->cmos[0x16] = 640 >> 8;
    uint64_t ext = below_4g > (1 << 20) ? (below_4g - (1 << 20)) >> 10 : 0;
    if (ext > 0xfc00)
        ext = 0xfc00;                            /* 1 MiB .. 64 MiB, KiB */
    r->cmos[0x17] = r->cmos[0x30] = ext & 0xff;
    r->cmos[0x18] = r->cmos[0x31] = ext >> 8;
    uint64_t hi = below_4g > (16 << 20) ? (below_4g - (16 << 20)) >> 16 : 0;
    if (hi > 0xffff)
        hi = 0xffff;                             /* above 16 MiB, 64 KiB units */
    r->cmos[0x34] = hi & 0xff;
    r->cmos[0x35] = hi >> 8;
    uint64_t h4 = above_4g >> 16;                /* above 4 GiB, 64 KiB units */
    r->cmos[0x5b] = h4 & 0xff;
    r->cmos[0x5c] = (h4 >> 8) & 0xff;
    r->cmos[0x5d] = (h4 >> 16) & 0xff;
}
