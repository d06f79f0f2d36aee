/* i8042 keyboard controller with a PS/2 keyboard and a minimal PS/2 mouse
 * that acknowledges everything and never moves, so Linux probes both ports
 * without waiting on timeouts. Replies queue in one FIFO tagged with their
 * port; the output buffer (port 0x60) holds the head, and IRQ1 or IRQ12
 * follows it when the command byte enables that port's interrupt. */
#include "hw/i8042.h"

#include <stdbool.h>
#include <stdlib.h>
#include "hw/memory.h"

enum {
    ST_OBF = 0x01, ST_SYS = 0x04, ST_CMD = 0x08, ST_UNLOCKED = 0x10, ST_AUXOBF = 0x20,
    CB_KBD_INT = 0x01, CB_AUX_INT = 0x02, CB_SYS = 0x04, CB_KBD_OFF = 0x10,
    CB_AUX_OFF = 0x20, CB_XLATE = 0x40,
    ACK = 0xFA, QSIZE = 32,
};

struct i8042 {
    struct address_space *io;
    struct irq kbd_irq, aux_irq;
    void (*reset_cb)(void *);
    void *reset_opaque;
    uint8_t cmdbyte, status, outport;
    uint8_t pending_ctl;        /* controller command awaiting a data byte */
    uint8_t pending_kbd;        /* keyboard command awaiting its argument */
    uint8_t pending_aux;
    uint8_t scancode_set;
    struct { uint8_t val; bool aux; } q[QSIZE];
    int qhead, qcount;
    bool out_full, out_aux;
    uint8_t out;
};

static void kbd_update(struct i8042 *k)
{
    if (!k->out_full && k->qcount) {
        k->out = k->q[k->qhead].val;
        k->out_aux = k->q[k->qhead].aux;
        k->qhead = (k->qhead + 1) % QSIZE;
        k->qcount--;
        k->out_full = true;
    }
    k->status &= ~(ST_OBF | ST_AUXOBF);
    if (k->out_full)
        k->status |= ST_OBF | (k->out_aux ? ST_AUXOBF : 0);
    irq_set(&k->kbd_irq, k->out_full && !k->out_aux && (k->cmdbyte & CB_KBD_INT));
    irq_set(&k->aux_irq, k->out_full && k->out_aux && (k->cmdbyte & CB_AUX_INT));
}

static void kbd_queue(struct i8042 *k, uint8_t v, bool aux)
{
    if (k->qcount == QSIZE)
        return;
    k->q[(k->qhead + k->qcount++) % QSIZE].val = v;
    k->q[(k->qhead + k->qcount - 1) % QSIZE].aux = aux;
    kbd_update(k);
}

static void kbd_reply(struct i8042 *k, const uint8_t *v, int n, bool aux)
{
    for (int i = 0; i < n; i++)
        kbd_queue(k, v[i], aux);
}

static void keyboard_write(struct i8042 *k, uint8_t v)
{
    uint8_t r[3] = { ACK };
    if (k->pending_kbd) {
        uint8_t cmd = k->pending_kbd;
        k->pending_kbd = 0;
        if (cmd == 0xF0 && v == 0) {
            r[1] = k->scancode_set;
            kbd_reply(k, r, 2, false);
            return;
        }
        if (cmd == 0xF0 && v <= 3)
            k->scancode_set = v;
        kbd_reply(k, r, 1, false);
        return;
    }
    switch (v) {
    case 0xFF:                  /* reset: ack, then self-test passed */
        k->scancode_set = 2;
        r[1] = 0xAA;
        kbd_reply(k, r, 2, false);
        return;
    case 0xF2:                  /* identify: MF2 keyboard, as translated if on */
        r[1] = 0xAB;
        r[2] = (k->cmdbyte & CB_XLATE) ? 0x41 : 0x83;
        kbd_reply(k, r, 3, false);
        return;
    case 0xEE:
        r[0] = 0xEE;
        break;
    case 0xED: case 0xF0: case 0xF3:
        k->pending_kbd = v;     /* LEDs, scancode set, typematic: one argument */
        break;
    case 0xF4: case 0xF5: case 0xF6:
        if (v == 0xF6)
            k->scancode_set = 2;
        break;
    default:
        if (v < 0xED)
            r[0] = 0xFE;        /* not a command: resend */
        break;
    }
    kbd_reply(k, r, 1, false);
}

static void mouse_write(struct i8042 *k, uint8_t v)
{
    static const uint8_t status[] = { ACK, 0x00, 0x02, 0x64 };
    uint8_t r[3] = { ACK };
    if (k->pending_aux) {       /* argument of set rate / resolution */
        k->pending_aux = 0;
        kbd_reply(k, r, 1, true);
        return;
    }
    switch (v) {
    case 0xFF:
        r[1] = 0xAA;
        r[2] = 0x00;
        kbd_reply(k, r, 3, true);
        return;
    case 0xF2:
        r[1] = 0x00;            /* plain PS/2 mouse */
        kbd_reply(k, r, 2, true);
        return;
    case 0xE9:
        kbd_reply(k, status, 4, true);
        return;
    case 0xF3: case 0xE8:
        k->pending_aux = v;
        break;
    }
    kbd_reply(k, r, 1, true);
}

static void ctl_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
    switch (cmd) {
    case 0x60:
        k->cmdbyte = v;
        k->status = (k->status & ~ST_SYS) | ((v & CB_SYS) ? ST_SYS : 0);
        kbd_update(k);
        break;
    case 0xD1:
        k->outport = v;
        if (!(v & 1) && k->reset_cb)
            k->reset_cb(k->reset_opaque);
        break;
    case 0xD2:
        kbd_queue(k, v, false);
        break;
    case 0xD3:
        kbd_queue(k, v, true);
        break;
    case 0xD4:
        mouse_write(k, v);
        break;
    }
}

static void ctl_command(struct i8042 *k, uint8_t v)
{
    uint8_t r;
    switch (v) {
    case 0x20:
        kbd_queue(k, k->cmdbyte, false);
        return;
    case 0x60: case 0xD1: case 0xD2: case 0xD3: case 0xD4:
        k->pending_ctl = v;
        return;
    case 0xA7: k->cmdbyte |= CB_AUX_OFF; return;
    case 0xA8: k->cmdbyte &= ~CB_AUX_OFF; return;
    case 0xAD: k->cmdbyte |= CB_KBD_OFF; return;
    case 0xAE: k->cmdbyte &= ~CB_KBD_OFF; return;
    case 0xA9: case 0xAB: r = 0x00; break;        /* port tests pass */
    case 0xAA: r = 0x55; k->status |= ST_SYS; break; /* self test passed */
    case 0xC0: r = 0x80; break;                   /* input port: keyboard not inhibited */
    case 0xD0: r = k->outport; break;
    default:
        /* 0xF0-0xFF pulse output port bits low for 6 us; bit 0 is reset. */
        if (v >= 0xF0 && !(v & 1) && k->reset_cb)
            k->reset_cb(k->reset_opaque);
        return;
    }
    kbd_queue(k, r, false);
}

/* Offsets are relative to each one-byte window, so each port has its ops. */
static uint64_t status_read(void *opaque, uint64_t off, unsigned size)
{
    return ((struct i8042 *)opaque)->status;
}

static void command_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct i8042 *k = opaque;
    k->status |= ST_CMD;
    k->pending_ctl = 0;
    ctl_command(k, val);
}

static uint64_t data_read(void *opaque, uint64_t off, unsigned size)
{
    struct i8042 *k = opaque;
    uint8_t v = k->out;
    k->out_full = false;
    kbd_update(k);
    return v;
}

static void data_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct i8042 *k = opaque;
    k->status &= ~ST_CMD;
    if (k->pending_ctl) {
        uint8_t cmd = k->pending_ctl;
        k->pending_ctl = 0;
        ctl_data(k, cmd, val);
    } else {
        keyboard_write(k, val);
    }
}

static const struct mem_ops data_ops = { .read = data_read, .write = data_write };
static const struct mem_ops cmd_ops = { .read = status_read, .write = command_write };

void i8042_reset(struct i8042 *k)
{
    k->cmdbyte = CB_KBD_INT | CB_AUX_INT | CB_SYS | CB_XLATE;
    k->status = ST_UNLOCKED | ST_SYS;
    k->outport = 0x03;          /* not in reset, A20 on */
    k->pending_ctl = k->pending_kbd = k->pending_aux = 0;
    k->scancode_set = 2;
    k->qhead = k->qcount = 0;
    k->out_full = false;
    kbd_update(k);
}

void i8042_put_keycode(struct i8042 *k, const uint8_t *codes, int n)
{
    if (!(k->cmdbyte & CB_KBD_OFF))
        kbd_reply(k, codes, n, false);
}

struct i8042 *i8042_new(struct address_space *io, struct irq kbd_irq, struct irq aux_irq,
                        void (*reset)(void *opaque), void *opaque)
{
    struct i8042 *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->io = io;
    k->kbd_irq = kbd_irq;
    k->aux_irq = aux_irq;
    k->reset_cb = reset;
    k->reset_opaque = opaque;
    i8042_reset(k);
    /* Two one-byte windows: 0x61-0x63 belong to other devices. */
    if (as_add_io(io, 0x60, 1, &data_ops, k, "i8042-data", 0) < 0 ||
        as_add_io(io, 0x64, 1, &cmd_ops, k, "i8042-cmd", 0) < 0) {
        free(k);
        return NULL;
    }
    return k;
}

void i8042_free(struct i8042 *k)
{
    if (!k)
        return;
    as_del(k->io, 0x60, k);
    as_del(k->io, 0x64, k);
    free(k);
}
