/* virtio-serial (virtio 1.x section 5.3, console device with MULTIPORT).
 * Queues: port 0 rx/tx = 0/1, control rx/tx = 2/3, port n rx/tx = 2n+2/2n+3.
 * Host input waits in a per-port buffer until the guest posts receive
 * buffers; the chardev is throttled (can_receive) while that is full. */
#include "hw/virtio/virtio-serial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chardev/chardev.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio-pci.h"
#include "hw/virtio/virtio.h"
#include "util/iov.h"

#define VSER_F_MULTIPORT 1
#define VSER_MAX_PORTS 32
#define VSER_RXBUF 4096
#define VSER_CTRL_MAX 64

enum { C_DEVICE_READY = 0, C_DEVICE_ADD = 1, C_PORT_READY = 3, C_CONSOLE_PORT = 4,
       C_PORT_OPEN = 6, C_PORT_NAME = 7 };

struct vser;

struct vport {
    struct vser *s;
    bool used, console;
    int nr;
    char *name;
    struct chardev *chr;
    bool guest_open, host_open;
    uint8_t buf[VSER_RXBUF];      /* host -> guest bytes not yet delivered */
    int len;
};

struct ctrl_msg {
    int len;
    uint8_t b[8 + 128];
};

struct vser {
    struct virtio_dev vd;
    struct pci_dev *pci;
    unsigned max_ports;
    struct vport port[VSER_MAX_PORTS];
    struct ctrl_msg ctrl[VSER_CTRL_MAX];  /* device -> driver control messages waiting */
    int nctrl;
    struct virtq_elem elem;       /* data queues and control tx */
    /* Control rx only: a control message can be sent from inside a data
     * queue's loop (a chardev write that finds the peer gone reports the
     * port closed), which must not clobber the element in hand. */
    struct virtq_elem ctrl_elem;
};

static bool multiport(struct vser *s) { return virtio_has_feature(&s->vd, VSER_F_MULTIPORT); }
static int rxq(int nr) { return nr ? 2 * nr + 2 : 0; }
static int port_of_queue(int q) { return q < 2 ? 0 : (q - 2) / 2; }

/* ---- control queue ---- */

static void ctrl_flush(struct vser *s)
{
    struct virtq *vq = &s->vd.vq[2];
    bool pushed = false;
    while (s->nctrl && virtq_pop(vq, &s->ctrl_elem) > 0) {
        struct ctrl_msg *m = &s->ctrl[0];
        size_t n = iov_from_buf(s->ctrl_elem.in, s->ctrl_elem.in_num, 0, m->b, m->len);
        virtq_push(vq, &s->ctrl_elem, n);
        pushed = true;
        memmove(&s->ctrl[0], &s->ctrl[1], sizeof(s->ctrl[0]) * (--s->nctrl));
    }
    if (pushed)
        virtq_notify(vq);
}

static void ctrl_send(struct vser *s, int id, uint16_t event, uint16_t value, const char *extra)
{
    if (!multiport(s) || s->nctrl == VSER_CTRL_MAX)
        return;
    struct ctrl_msg *m = &s->ctrl[s->nctrl++];
    uint32_t id32 = id;
    memcpy(m->b, &id32, 4);
    memcpy(m->b + 4, &event, 2);
    memcpy(m->b + 6, &value, 2);
    m->len = 8;
    if (extra) {
        size_t n = strnlen(extra, sizeof(m->b) - 9);
        memcpy(m->b + 8, extra, n);
        m->b[8 + n] = 0;
        m->len += n + 1;
    }
    ctrl_flush(s);
}

static void port_ready(struct vser *s, struct vport *p)
{
    if (p->console)
        ctrl_send(s, p->nr, C_CONSOLE_PORT, 1, NULL);
    if (p->name)
        ctrl_send(s, p->nr, C_PORT_NAME, 1, p->name);
    if (p->host_open)
        ctrl_send(s, p->nr, C_PORT_OPEN, 1, NULL);
}

static void ctrl_handle(struct vser *s, const uint8_t *b)
{
    uint32_t id;
    uint16_t event, value;
    memcpy(&id, b, 4);
    memcpy(&event, b + 4, 2);
    memcpy(&value, b + 6, 2);
    if (event == C_DEVICE_READY && value == 1) {
        for (unsigned i = 0; i < s->max_ports; i++)
            if (s->port[i].used)
                ctrl_send(s, i, C_DEVICE_ADD, 1, NULL);
        return;
    }
    if (id >= s->max_ports || !s->port[id].used)
        return;
    struct vport *p = &s->port[id];
    if (event == C_PORT_READY && value == 1)
        port_ready(s, p);
    else if (event == C_PORT_OPEN)
        p->guest_open = value;
}

static void ctrl_out(struct vser *s)
{
    struct virtq *vq = &s->vd.vq[3];
    do {
        while (virtq_pop(vq, &s->elem) > 0) {
            /* Hand the buffer back first: handling reuses s->elem for replies. */
            uint8_t b[8];
            bool whole = iov_to_buf(s->elem.iov, s->elem.out_num, 0, b, 8) == 8;
            virtq_push(vq, &s->elem, 0);
            virtq_notify(vq);
            if (whole)
                ctrl_handle(s, b);
        }
    } while (virtq_enable_notify(vq));
}

/* ---- data ---- */

static void port_rx_flush(struct vport *p)
{
    struct vser *s = p->s;
    struct virtq *vq = &s->vd.vq[rxq(p->nr)];
    bool pushed = false, was_full = p->len == VSER_RXBUF;
    while (p->len && virtq_pop(vq, &s->elem) > 0) {
        size_t n = iov_from_buf(s->elem.in, s->elem.in_num, 0, p->buf, p->len);
        memmove(p->buf, p->buf + n, p->len - n);
        p->len -= n;
        virtq_push(vq, &s->elem, n);
        pushed = true;
    }
    if (pushed)
        virtq_notify(vq);
    if (was_full && p->len < VSER_RXBUF && p->chr)
        chardev_accept_input(p->chr);
}

static void port_tx(struct vport *p, int q)
{
    struct vser *s = p->s;
    struct virtq *vq = &s->vd.vq[q];
    do {
        while (virtq_pop(vq, &s->elem) > 0) {
            for (int i = 0; i < s->elem.out_num && p->chr; i++)
                chardev_write(p->chr, s->elem.iov[i].iov_base, s->elem.iov[i].iov_len);
            virtq_push(vq, &s->elem, 0);
            virtq_notify(vq);
        }
    } while (virtq_enable_notify(vq));
}

static void vser_notify(struct virtio_dev *vd, int q)
{
    struct vser *s = vd->opaque;
    if (q == 2)
        return ctrl_flush(s);
    if (q == 3)
        return ctrl_out(s);
    struct vport *p = &s->port[port_of_queue(q)];
    if (!p->used) {
        /* No port behind this queue: consume transmits so the guest does not stall. */
        struct virtq *vq = &vd->vq[q];
        while ((q & 1) && virtq_pop(vq, &s->elem) > 0)
            virtq_push(vq, &s->elem, 0);
        return;
    }
    if (q == rxq(p->nr))
        port_rx_flush(p);
    else
        port_tx(p, q);
}

static void vser_driver_ok(struct virtio_dev *vd)
{
    struct vser *s = vd->opaque;
    if (!multiport(s))
        s->port[0].guest_open = true;            /* a lone console is always open */
}

static void vser_reset(struct virtio_dev *vd)
{
    struct vser *s = vd->opaque;
    s->nctrl = 0;
    for (unsigned i = 0; i < s->max_ports; i++)
        s->port[i].guest_open = false;
}

static const struct virtio_dev_ops vser_ops = { vser_notify, vser_reset, NULL, vser_driver_ok };

/* ---- chardev frontend ---- */

static int fe_can_receive(void *opaque)
{
    struct vport *p = opaque;
    return VSER_RXBUF - p->len;
}

static void fe_receive(void *opaque, const uint8_t *buf, int len)
{
    struct vport *p = opaque;
    int n = len < VSER_RXBUF - p->len ? len : VSER_RXBUF - p->len;
    memcpy(p->buf + p->len, buf, n);
    p->len += n;
    if (p->s->vd.status & VIRTIO_STATUS_DRIVER_OK)
        port_rx_flush(p);
}

static void fe_event(void *opaque, int ev)
{
    struct vport *p = opaque;
    if (ev != CHARDEV_OPENED && ev != CHARDEV_CLOSED)
        return;
    p->host_open = ev == CHARDEV_OPENED;
    if (p->s->vd.status & VIRTIO_STATUS_DRIVER_OK)
        ctrl_send(p->s, p->nr, C_PORT_OPEN, p->host_open, NULL);
}

/* ---- creation ---- */

static void vser_free(void *opaque)
{
    struct vser *s = opaque;
    for (unsigned i = 0; i < s->max_ports; i++)
        free(s->port[i].name);
    virtio_dev_cleanup(&s->vd);
    free(s);
}

struct pci_dev *virtio_serial_pci_new(struct pci_bus *bus, struct mainloop *ml, int devfn,
                                      const char *id, unsigned max_ports, struct error *err)
{
    if (max_ports < 1 || max_ports > VSER_MAX_PORTS - 1) {
        error_set(err, -EINVAL, "max_ports must be 1..%d", VSER_MAX_PORTS - 1);
        return NULL;
    }
    struct vser *s = calloc(1, sizeof(*s));
    if (!s || virtio_dev_init(&s->vd, "virtio-serial", 3, pci_bus_mem(bus), 2 * (max_ports + 1),
                              128, 12, &vser_ops, s) < 0) {
        free(s);
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    s->max_ports = max_ports;
    s->vd.host_features |= 1ULL << VSER_F_MULTIPORT;
    uint32_t mp = max_ports;
    memcpy(s->vd.config + 4, &mp, 4);
    for (unsigned i = 0; i < max_ports; i++) {
        s->port[i].s = s;
        s->port[i].nr = i;
    }
    struct pci_dev *d = virtio_pci_new(bus, devfn, "virtio-serial-pci", id, &s->vd, 0x078000,
                                       vser_free, s, err);
    if (!d)
        vser_free(s);
    else
        s->pci = d;
    return d;
}

static struct vser *find_controller(struct pci_bus *pbus, const char *bus)
{
    struct vser *found = NULL;
    char want[64] = "";
    if (bus) {
        snprintf(want, sizeof(want), "%s", bus);
        char *dot = strrchr(want, '.');
        if (dot && !strcmp(dot, ".0"))
            *dot = 0;
    }
    for (int f = 0; f < 256; f++) {
        struct pci_dev *d = pci_bus_find(pbus, f);
        struct virtio_dev *vd = virtio_pci_vdev(d);
        if (!vd || vd->ops != &vser_ops)
            continue;
        if (!bus || !strcmp(d->id, want))
            found = vd->opaque;
    }
    return found;
}

int virtio_serial_add_port(struct pci_bus *pbus, const char *bus, const char *id,
                           const char *chardev, const char *name, bool console, int nr,
                           struct error *err)
{
    struct vser *s = find_controller(pbus, bus);
    if (!s)
        return bus ? error_set(err, -ENOENT, "Bus '%s' not found", bus)
                   : error_set(err, -ENOENT, "No 'virtio-serial-bus' bus found for device");
    if (nr < 0) {
        for (unsigned i = console ? 0 : 1; i < s->max_ports && nr < 0; i++)
            if (!s->port[i].used)
                nr = i;
    }
    if (nr < 0 || (unsigned)nr >= s->max_ports)
        return error_set(err, -ENOSPC, "virtio-serial: no free port (max_ports=%u)", s->max_ports);
    if (s->port[nr].used)
        return error_set(err, -EBUSY, "virtio-serial: port %d is already in use", nr);
    if (nr == 0 && !console)
        return error_set(err, -EINVAL, "Port number 0 on virtio-serial devices reserved for "
                         "virtconsole devices for backward compatibility.");
    for (unsigned i = 0; name && i < s->max_ports; i++)
        if (s->port[i].used && s->port[i].name && !strcmp(s->port[i].name, name))
            return error_set(err, -EEXIST, "virtio-serial: port name '%s' is already in use",
                             name);
    struct vport *p = &s->port[nr];
    if (chardev) {
        p->chr = chardev_find(chardev);
        if (!p->chr)
            return error_set(err, -ENOENT, "Property 'chardev' can't find value '%s'", chardev);
        struct chardev_frontend fe = { fe_can_receive, fe_receive, fe_event, p };
        int r = chardev_attach(p->chr, &fe, err);
        if (r < 0)
            return r;
    }
    p->used = true;
    p->console = console;
    /* As QEMU: a console is open from the start (output with no peer is
     * dropped); a serial port follows its chardev (attach reported the
     * state), so the guest's writes wait for a socket's peer. */
    if (console || !p->chr)
        p->host_open = true;
    p->name = name ? strdup(name) : NULL;
    (void)id;
    return 0;
}
