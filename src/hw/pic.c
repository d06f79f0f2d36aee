/* 8259A programmable interrupt controller pair. The state machine follows
 * the datasheet: ICW1-4 initialisation, OCW2 EOI/rotation, OCW3 register
 * select, poll and special mask; edge detection unless the ELCR says level. */
#include "hw/pic.h"

#include <stdint.h>
#include <stdlib.h>
#include "hw/memory.h"

struct pic8259 {
    uint8_t irr, imr, isr, elcr, elcr_mask, last_irr;
    uint8_t priority_add, base, init_state;
    bool read_isr, poll, special_mask, auto_eoi, rotate_auto_eoi, sfnm, init4, single;
};

struct pic {
    struct pic8259 c[2];          /* master, slave */
    void (*notify)(void *opaque, int level);
    void *opaque;
    int out;
};

static int pic_priority(const struct pic8259 *s, uint8_t mask)
{
    if (!mask)
        return 8;
    int p = 0;
    while (!(mask & (1 << ((p + s->priority_add) & 7))))
        p++;
    return p;
}

/* Highest-priority request that beats the in-service ones, or -1. */
static int pic_get_irq(const struct pic8259 *s, bool master)
{
    int p = pic_priority(s, s->irr & ~s->imr);
    if (p == 8)
        return -1;
    uint8_t mask = s->isr;
    if (s->special_mask)
        mask &= ~s->imr;
    if (s->sfnm && master)
        mask &= ~(1 << 2);
    int cur = pic_priority(s, mask);
    return p < cur ? (p + s->priority_add) & 7 : -1;
}

static void pic_set_line(struct pic8259 *s, int irq, int level)
{
    uint8_t m = 1 << irq;
    if (s->elcr & m) {
        if (level) {
            s->irr |= m;
            s->last_irr |= m;
        } else {
            s->irr &= ~m;
            s->last_irr &= ~m;
        }
    } else if (level) {
        if (!(s->last_irr & m))
            s->irr |= m;
        s->last_irr |= m;
    } else {
        s->last_irr &= ~m;
    }
}

static void pic_update(struct pic *p)
{
    pic_set_line(&p->c[0], 2, pic_get_irq(&p->c[1], false) >= 0);
    int out = pic_get_irq(&p->c[0], true) >= 0;
    if (out != p->out) {
        p->out = out;
        if (p->notify)
            p->notify(p->opaque, out);
    } else if (out && p->notify) {
        p->notify(p->opaque, out);   /* a new request behind a still-high INT */
    }
}

void pic_set_irq(struct pic *p, int irq, int level)
{
    if (irq < 0 || irq > 15)
        return;
    pic_set_line(&p->c[irq >> 3], irq & 7, level);
    pic_update(p);
}

bool pic_pending(struct pic *p)
{
    return pic_get_irq(&p->c[0], true) >= 0;
}

static void pic_intack(struct pic8259 *s, int irq)
{
    if (s->auto_eoi) {
        if (s->rotate_auto_eoi)
            s->priority_add = (irq + 1) & 7;
    } else {
        s->isr |= 1 << irq;
    }
    if (!(s->elcr & (1 << irq)))
        s->irr &= ~(1 << irq);
}

int pic_ack(struct pic *p)
{
    int irq = pic_get_irq(&p->c[0], true), vec;
    if (irq >= 0) {
        pic_intack(&p->c[0], irq);
        if (irq == 2) {
            int irq2 = pic_get_irq(&p->c[1], false);
            if (irq2 >= 0)
                pic_intack(&p->c[1], irq2);
            else
                irq2 = 7;
            vec = p->c[1].base + irq2;
        } else {
            vec = p->c[0].base + irq;
        }
    } else {
        vec = p->c[0].base + 7;
    }
    pic_update(p);
    return vec;
}

static void pic_chip_reset(struct pic8259 *s)
{
    uint8_t elcr = s->elcr, em = s->elcr_mask;
    *s = (struct pic8259){ 0 };
    s->elcr = elcr;
    s->elcr_mask = em;
}

static void pic_write_cmd(struct pic8259 *s, uint8_t v)
{
    if (v & 0x10) {                              /* ICW1 */
        pic_chip_reset(s);
        s->init_state = 1;
        s->init4 = v & 1;
        s->single = v & 2;
        return;
    }
    if (v & 0x08) {                              /* OCW3 */
        if (v & 4)
            s->poll = true;
        if (v & 2)
            s->read_isr = v & 1;
        if (v & 0x40)
            s->special_mask = (v >> 5) & 1;
        return;
    }
    int cmd = v >> 5, irq;                       /* OCW2 */
    switch (cmd) {
    case 0: case 4:
        s->rotate_auto_eoi = cmd >> 2;
        break;
    case 1: case 5: {
        int pr = pic_priority(s, s->isr);
        if (pr != 8) {
            irq = (pr + s->priority_add) & 7;
            s->isr &= ~(1 << irq);
            if (cmd == 5)
                s->priority_add = (irq + 1) & 7;
        }
        break;
    }
    case 3:
        s->isr &= ~(1 << (v & 7));
        break;
    case 6:
        s->priority_add = (v + 1) & 7;
        break;
    case 7:
        irq = v & 7;
        s->isr &= ~(1 << irq);
        s->priority_add = (irq + 1) & 7;
        break;
    }
}

static void pic_write_data(struct pic8259 *s, uint8_t v)
{
    switch (s->init_state) {
    case 0:
        s->imr = v;
        break;
    case 1:
        s->base = v & 0xf8;
        s->init_state = s->single ? (s->init4 ? 3 : 0) : 2;
        break;
    case 2:
        s->init_state = s->init4 ? 3 : 0;
        break;
    case 3:
        s->sfnm = (v >> 4) & 1;
        s->auto_eoi = (v >> 1) & 1;
        s->init_state = 0;
        break;
    }
}


/* Poll command: acknowledge like INTA but return 0x80 | irq. */
static uint8_t pic_poll(struct pic *p, int chip)
{
    struct pic8259 *s = &p->c[chip];
    int irq = pic_get_irq(s, chip == 0);
    if (irq < 0)
        return 0;
    pic_intack(s, irq);
    return 0x80 | irq;
}

struct pic_port {
    struct pic *p;
    int chip;
};

static uint64_t pic_port_read(void *opaque, uint64_t off, unsigned size)
{
    struct pic_port *pp = opaque;
    struct pic8259 *s = &pp->p->c[pp->chip];
    uint8_t v;
    if (s->poll) {
        s->poll = false;
        v = pic_poll(pp->p, pp->chip);
        pic_update(pp->p);
    } else if (off == 0) {
        v = s->read_isr ? s->isr : s->irr;
    } else {
        v = s->imr;
    }
    return v;
}

static void pic_port_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pic_port *pp = opaque;
    struct pic8259 *s = &pp->p->c[pp->chip];
    if (off == 0)
        pic_write_cmd(s, (uint8_t)val);
    else
        pic_write_data(s, (uint8_t)val);
    pic_update(pp->p);
}

static uint64_t elcr_read(void *opaque, uint64_t off, unsigned size)
{
    struct pic *p = opaque;
    return p->c[off & 1].elcr;
}

static void elcr_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct pic *p = opaque;
    struct pic8259 *s = &p->c[off & 1];
    s->elcr = val & s->elcr_mask;
    pic_update(p);
}

static const struct mem_ops pic_ops = { pic_port_read, pic_port_write };
static const struct mem_ops elcr_ops = { elcr_read, elcr_write };

struct pic_full {
    struct pic p;
    struct pic_port ports[2];
};

struct pic *pic_new(struct address_space *io, void (*notify)(void *opaque, int level),
                    void *opaque)
{
    struct pic_full *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    struct pic *p = &f->p;
    p->notify = notify;
    p->opaque = opaque;
    p->c[0].elcr_mask = 0xf8;
    p->c[1].elcr_mask = 0xde;
    for (int i = 0; i < 2; i++)
        f->ports[i] = (struct pic_port){ p, i };
    if (io) {
        as_add_io(io, 0x20, 2, &pic_ops, &f->ports[0], "pic-master", 0);
        as_add_io(io, 0xa0, 2, &pic_ops, &f->ports[1], "pic-slave", 0);
        as_add_io(io, 0x4d0, 2, &elcr_ops, p, "elcr", 0);
    }
    return p;
}

void pic_reset(struct pic *p)
{
    for (int i = 0; i < 2; i++) {
        pic_chip_reset(&p->c[i]);
        p->c[i].elcr = 0;
    }
    pic_update(p);
}

void pic_free(struct pic *p)
{
    free(p);   /* first member of pic_full */
}
