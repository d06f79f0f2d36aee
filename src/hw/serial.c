/* 16550A UART. Transmission is instantaneous (the byte goes to the chardev
 * when THR is written, so THRE and TEMT stay set); received bytes wait in a
 * 16-byte FIFO, and a partial FIFO reports its character timeout at once
 * rather than after four character times. Interrupt priority follows the
 * datasheet: line status > received data > THR empty > modem status. */
#include "hw/serial.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include "chardev/chardev.h"
#include "hw/memory.h"

enum {
    IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08,
    IIR_NO_INT = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04, IIR_RLSI = 0x06,
    IIR_CTI = 0x0C, IIR_FIFO = 0xC0,
    FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02, FCR_CLEAR_TX = 0x04,
    LCR_DLAB = 0x80,
    MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10,
    LSR_DR = 0x01, LSR_OE = 0x02, LSR_PE = 0x04, LSR_FE = 0x08, LSR_BI = 0x10,
    LSR_THRE = 0x20, LSR_TEMT = 0x40, LSR_ERRS = LSR_OE | LSR_PE | LSR_FE | LSR_BI,
    MSR_DCTS = 0x01, MSR_DDSR = 0x02, MSR_TERI = 0x04, MSR_DDCD = 0x08,
    MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80, MSR_DELTAS = 0x0F,
    FIFO_SIZE = 16,
};

struct serial {
    struct address_space *io;
    uint16_t base;
    struct irq irq;
    struct chardev *chr;
    char name[24];              /* region name, e.g. "serial@0x3f8" */
    uint8_t ier, iir, fcr, lcr, mcr, lsr, msr, scr;
    uint16_t divider;
    bool thr_ipending;
    uint8_t rx[FIFO_SIZE];
    int rx_head, rx_count;
};

static int rx_trigger(const struct serial *s)
{
    static const int levels[4] = { 1, 4, 8, 14 };
    return levels[s->fcr >> 6];
}

static void serial_update_irq(struct serial *s)
{
    uint8_t id = IIR_NO_INT;
    if ((s->ier & IER_RLSI) && (s->lsr & LSR_ERRS))
        id = IIR_RLSI;
    else if ((s->ier & IER_RDI) && (s->lsr & LSR_DR))
        id = (!(s->fcr & FCR_ENABLE) || s->rx_count >= rx_trigger(s)) ? IIR_RDI : IIR_CTI;
    else if ((s->ier & IER_THRI) && s->thr_ipending)
        id = IIR_THRI;
    else if ((s->ier & IER_MSI) && (s->msr & MSR_DELTAS))
        id = IIR_MSI;
    s->iir = id | ((s->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
    irq_set(&s->irq, id != IIR_NO_INT);
}

static int rx_capacity(const struct serial *s)
{
    return (s->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
}

static void rx_put(struct serial *s, uint8_t c)
{
    if (s->rx_count >= rx_capacity(s)) {
        s->lsr |= LSR_OE;       /* overrun: the new byte is lost */
        return;
    }
    s->rx[(s->rx_head + s->rx_count++) % FIFO_SIZE] = c;
    s->lsr |= LSR_DR;
}

static void rx_clear(struct serial *s)
{
    s->rx_head = s->rx_count = 0;
    s->lsr &= ~LSR_DR;
}

static uint8_t rx_get(struct serial *s)
{
    if (!s->rx_count)
        return 0;
    uint8_t c = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % FIFO_SIZE;
    if (--s->rx_count == 0)
        s->lsr &= ~LSR_DR;
    return c;
}

/* Modem status inputs: wired to our own outputs in loopback, else a
 * connected line (carrier, data set ready, clear to send). */
static void serial_update_msr(struct serial *s)
{
    uint8_t st = MSR_DCD | MSR_DSR | MSR_CTS;
    if (s->mcr & MCR_LOOP)
        st = ((s->mcr & MCR_RTS) ? MSR_CTS : 0) | ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
             ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
    uint8_t old = s->msr, delta = 0;
    if ((old ^ st) & MSR_CTS)
        delta |= MSR_DCTS;
    if ((old ^ st) & MSR_DSR)
        delta |= MSR_DDSR;
    if ((old & MSR_RI) && !(st & MSR_RI))
        delta |= MSR_TERI;
    if ((old ^ st) & MSR_DCD)
        delta |= MSR_DDCD;
    s->msr = st | (old & MSR_DELTAS) | delta;
}

static void serial_transmit(struct serial *s, uint8_t c)
{
    if (s->mcr & MCR_LOOP)
        rx_put(s, c);
    else if (s->chr)
        chardev_write(s->chr, &c, 1);
    s->thr_ipending = true;     /* THR is empty again */
}

static void serial_write_fcr(struct serial *s, uint8_t v)
{
    if ((v ^ s->fcr) & FCR_ENABLE)
        v |= FCR_CLEAR_RX | FCR_CLEAR_TX;   /* toggling the FIFOs empties them */
    if (v & FCR_CLEAR_RX)
        rx_clear(s);
    s->fcr = v & (0xC0 | FCR_ENABLE);
}

static void serial_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct serial *s = opaque;
    uint8_t v = val;
    bool dlab = s->lcr & LCR_DLAB;
    switch (off & 7) {
    case 0:
        if (dlab)
            s->divider = (s->divider & 0xFF00) | v;
        else {
            s->thr_ipending = false;
            serial_transmit(s, v);
        }
        break;
    case 1:
        if (dlab) {
            s->divider = (s->divider & 0x00FF) | (v << 8);
            break;
        }
        /* Enabling the THRE interrupt while THR is empty raises it, even if
         * reading IIR had acknowledged it (Linux checks for this). */
        if ((v & ~s->ier & IER_THRI))
            s->thr_ipending = true;
        s->ier = v & 0x0F;
        break;
    case 2:
        serial_write_fcr(s, v);
        break;
    case 3:
        s->lcr = v;
        break;
    case 4:
        s->mcr = v & 0x1F;
        serial_update_msr(s);
        break;
    case 7:
        s->scr = v;
        break;
    }
    serial_update_irq(s);
}

static uint64_t serial_read(void *opaque, uint64_t off, unsigned size)
{
    struct serial *s = opaque;
    bool dlab = s->lcr & LCR_DLAB;
    uint8_t v = 0;
    switch (off & 7) {
    case 0:
        if (dlab)
            return s->divider & 0xFF;
        v = rx_get(s);
        if (!s->rx_count && s->chr && !(s->mcr & MCR_LOOP))
            chardev_accept_input(s->chr);
        break;
    case 1:
        return dlab ? s->divider >> 8 : s->ier;
    case 2:
        v = s->iir;
        if ((v & 0x0F) == IIR_THRI)
            s->thr_ipending = false;    /* reading IIR acknowledges THRE */
        break;
    case 3:
        return s->lcr;
    case 4:
        return s->mcr;
    case 5:
        v = s->lsr;
        s->lsr &= ~LSR_ERRS;
        break;
    case 6:
        v = s->msr;
        s->msr &= ~MSR_DELTAS;
        break;
    case 7:
        return s->scr;
    }
    serial_update_irq(s);
    return v;
}

static const struct mem_ops serial_ops = { .read = serial_read, .write = serial_write };

static int serial_can_receive(void *opaque)
{
    struct serial *s = opaque;
    if (s->mcr & MCR_LOOP)
        return 0;
    return rx_capacity(s) - s->rx_count;
}

static void serial_receive(void *opaque, const uint8_t *buf, int len)
{
    struct serial *s = opaque;
    for (int i = 0; i < len; i++)
        rx_put(s, buf[i]);
    serial_update_irq(s);
}

static void serial_event(void *opaque, int event)
{
    struct serial *s = opaque;
    if (event != CHARDEV_BREAK)
        return;
    rx_put(s, 0);               /* a break reads as a NUL with BI set */
    s->lsr |= LSR_BI;
    serial_update_irq(s);
}

void serial_reset(struct serial *s)
{
    s->ier = 0;
    s->fcr = 0;
    s->lcr = 0;
    s->mcr = MCR_OUT2;
    s->lsr = LSR_THRE | LSR_TEMT;
    s->msr = 0;
    s->scr = 0;
    s->divider = 12;            /* 9600 baud */
    s->thr_ipending = false;
    rx_clear(s);
    serial_update_msr(s);
    s->msr &= ~MSR_DELTAS;
    serial_update_irq(s);
}

struct serial *serial_new(struct address_space *io, uint16_t base, struct irq irq,
                          struct chardev *chr)
{
    struct serial *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->io = io;
    s->base = base;
    s->irq = irq;
    s->chr = chr;
    serial_reset(s);
    snprintf(s->name, sizeof(s->name), "serial@%#x", base);
    if (as_add_io(io, base, 8, &serial_ops, s, s->name, 0) < 0) {
        fprintf(stderr, "serial: cannot register ports %s\n", s->name);
        free(s);
        return NULL;
    }
    if (chr) {
        struct chardev_frontend fe = {
            .can_receive = serial_can_receive,
            .receive = serial_receive,
            .event = serial_event,
            .opaque = s,
        };
        struct error err = {0};
        if (chardev_attach(chr, &fe, &err) < 0) {
            fprintf(stderr, "serial: %s\n", err.msg);
            as_del(io, base, s);
            free(s);
            return NULL;
        }
    }
    return s;
}

void serial_free(struct serial *s)
{
    if (!s)
        return;
    as_del(s->io, s->base, s);
    free(s);
}
