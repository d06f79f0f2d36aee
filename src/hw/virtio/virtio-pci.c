/* virtio over PCI, modern transport (virtio 1.x section 4.1).
 *
 * Where the accelerator offers them (KVM), the doorbells become
 * ioeventfds and the MSI-X vectors irqfds: a queue notification then
 * wakes the event loop without the vCPU leaving the guest, and a
 * completion interrupt reaches the guest without a KVM_INTERRUPT or an
 * exit. Under emu both are refused (-ENOTSUP) and the same registers and
 * msix_notify() do the work, as before. */
#include "hw/virtio/virtio-pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "hw/irq.h"
#include "hw/pci/pci.h"
#include "hw/virtio/virtio.h"
#include "util/mainloop.h"

enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4 };

/* One queue's doorbell as an ioeventfd. */
struct vp_kick {
    struct virtio_pci *vp;
    int fd;
    uint16_t q;
    uint64_t addr;                /* where it is registered, while on */
    bool on;
};

/* One MSI-X vector as an irqfd: handle names the route to (addr, data). */
struct vp_irqfd {
    int fd, handle;
    uint64_t addr;
    uint32_t data;
};

struct virtio_pci {
    struct pci_dev *pci;
    struct virtio_dev *vd;
    uint32_t dfselect, gfselect;
    uint16_t queue_sel;
    void (*free_fn)(void *opaque);
    void *free_opaque;
    struct vp_kick *kick;         /* per queue */
    struct vp_irqfd *irqfd;       /* per MSI-X vector */
    bool no_ioeventfd, no_irqfd;  /* the accelerator refused: don't ask again */
};

static void vp_kick_handler(void *opaque, uint32_t events)
{
    struct vp_kick *k = opaque;
    uint64_t n;
    if (read(k->fd, &n, sizeof(n)) == sizeof(n))
        virtio_queue_notify(k->vp->vd, k->q);
}

/* drain: run what a doorbell rang just before (not while tearing down). */
static void vp_kicks_stop(struct virtio_pci *vp, bool drain)
{
    for (int q = 0; vp->kick && q < vp->vd->nvq; q++) {
        struct vp_kick *k = &vp->kick[q];
        if (!k->on)
            continue;
        as_ioeventfd(pci_bus_mem(vp->pci->bus), k->addr, 2, k->fd, false);
        ml_del_fd(pci_bus_mainloop(vp->pci->bus), k->fd);
        k->on = false;
        if (drain)
            vp_kick_handler(k, 0);
    }
}

/* DRIVER_OK: each ready queue's doorbell (at the BAR's current place). */
static void vp_kicks_start(struct virtio_pci *vp)
{
    struct pci_bar *bar = &vp->pci->bar[4];
    if (vp->no_ioeventfd || !vp->kick || !bar->mapped)
        return;
    for (int q = 0; q < vp->vd->nvq; q++) {
        struct vp_kick *k = &vp->kick[q];
        if (k->on || !vp->vd->vq[q].ready)
            continue;
        if (k->fd < 0 && (k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
            return;
        k->addr = bar->mapped_at + VIRTIO_PCI_NOTIFY + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
        int r = as_ioeventfd(pci_bus_mem(vp->pci->bus), k->addr, 2, k->fd, true);
        if (r == -ENOTSUP) {
            vp->no_ioeventfd = true;
            return;
        }
        if (r < 0)
            continue;                            /* this queue keeps the MMIO path */
        if (ml_add_fd(pci_bus_mainloop(vp->pci->bus), k->fd, EPOLLIN, vp_kick_handler, k) < 0) {
            as_ioeventfd(pci_bus_mem(vp->pci->bus), k->addr, 2, k->fd, false);
            continue;
        }
        k->on = true;
    }
}

static void vp_irqfds_stop(struct virtio_pci *vp)
{
    struct irqchip *chip = pci_bus_irqchip(vp->pci->bus);
    for (int v = 0; vp->irqfd && v < msix_vectors(vp->pci); v++) {
        struct vp_irqfd *f = &vp->irqfd[v];
        if (f->handle >= 0 && chip && chip->irqfd_del)
            chip->irqfd_del(chip, f->handle);
        f->handle = -1;
    }
}

/* Vector v through its irqfd; false if the caller must use msix_notify
 * (no irqfd here, MSI-X off, or the vector masked: the PBA keeps it). */
static bool vp_irqfd_notify(struct virtio_pci *vp, unsigned v)
{
    struct irqchip *chip = pci_bus_irqchip(vp->pci->bus);
    uint64_t addr;
    uint32_t data;
    if (vp->no_irqfd || !vp->irqfd || !chip || !chip->irqfd_add ||
        !msix_message(vp->pci, v, &addr, &data))
        return false;
    struct vp_irqfd *f = &vp->irqfd[v];
    if (f->fd < 0 && (f->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return false;
    if (f->handle < 0) {
        int h = chip->irqfd_add(chip, f->fd, addr, data);
        if (h < 0) {
            vp->no_irqfd = h == -ENOTSUP;
            return false;
        }
        f->handle = h;
    } else if ((f->addr != addr || f->data != data) &&
               chip->irqfd_set(chip, f->handle, addr, data) < 0) {
        return false;
    }
    f->addr = addr;
    f->data = data;
    uint64_t one = 1;
    return write(f->fd, &one, sizeof(one)) == sizeof(one);
}

static struct virtq *sel_vq(struct virtio_pci *vp)
{
    return vp->queue_sel < vp->vd->nvq ? &vp->vd->vq[vp->queue_sel] : NULL;
}

/* The common configuration structure as the guest sees it now. */
static void common_snapshot(struct virtio_pci *vp, uint8_t *c)
{
    struct virtio_dev *vd = vp->vd;
    struct virtq *vq = sel_vq(vp);
    uint32_t df = vp->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * vp->dfselect)) : 0;
    uint32_t gf = vp->gfselect < 2 ? (uint32_t)(vd->guest_features >> (32 * vp->gfselect)) : 0;
    uint16_t nq = vd->nvq;
    memset(c, 0, 64);
    memcpy(c + 0, &vp->dfselect, 4);
    memcpy(c + 4, &df, 4);
    memcpy(c + 8, &vp->gfselect, 4);
    memcpy(c + 12, &gf, 4);
    memcpy(c + 16, &vd->config_vector, 2);
    memcpy(c + 18, &nq, 2);
    c[20] = vd->status;
    c[21] = vd->config_generation;
    memcpy(c + 22, &vp->queue_sel, 2);
    if (vq) {
        uint16_t ready = vq->ready, off = vp->queue_sel;
        memcpy(c + 24, &vq->num, 2);
        memcpy(c + 26, &vq->vector, 2);
        memcpy(c + 28, &ready, 2);
        memcpy(c + 30, &off, 2);
        memcpy(c + 32, &vq->desc_gpa, 8);
        memcpy(c + 40, &vq->avail_gpa, 8);
        memcpy(c + 48, &vq->used_gpa, 8);
    }
}

static uint64_t common_read(void *opaque, uint64_t off, unsigned size)
{
    uint8_t c[64];
    uint64_t v = 0;
    if (off + size > 56)
        return 0;
    common_snapshot(opaque, c);
    memcpy(&v, c + off, size);
    return v;
}

static uint16_t valid_vector(struct virtio_pci *vp, uint16_t v)
{
    return v < msix_vectors(vp->pci) ? v : VIRTIO_NO_VECTOR;
}

/* A write to part of a 64-bit ring address (drivers write halves). */
static void set_addr(uint64_t *a, uint64_t off, uint64_t val, unsigned size)
{
    unsigned sh = (off & 4) * 8;
    uint64_t mask = size == 8 ? ~0ULL : 0xffffffffULL << sh;
    *a = (*a & ~mask) | ((val << sh) & mask);
}

static void queue_write(struct virtio_pci *vp, uint64_t off, uint64_t val, unsigned size)
{
    struct virtq *vq = sel_vq(vp);
    if (!vq)
        return;
    if (off == 26 && size == 2) {
        vq->vector = valid_vector(vp, val);
        return;
    }
    if (vq->ready)
        return;                                  /* frozen once enabled */
    if (off == 24 && size == 2)
        vq->num = val;
    else if (off == 28 && size == 2 && val == 1)
        virtio_queue_enable(vp->vd, vp->queue_sel);
    else if (off >= 32 && off < 40 && (size == 4 || (size == 8 && off == 32)))
        set_addr(&vq->desc_gpa, off, val, size);
    else if (off >= 40 && off < 48 && (size == 4 || (size == 8 && off == 40)))
        set_addr(&vq->avail_gpa, off, val, size);
    else if (off >= 48 && off < 56 && (size == 4 || (size == 8 && off == 48)))
        set_addr(&vq->used_gpa, off, val, size);
}

static void common_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct virtio_pci *vp = opaque;
    struct virtio_dev *vd = vp->vd;
    switch (off) {
    case 0:
        vp->dfselect = val;
        return;
    case 8:
        vp->gfselect = val;
        return;
    case 12:
        if (vp->gfselect < 2 && size == 4) {
            unsigned sh = 32 * vp->gfselect;
            uint64_t f = (vd->guest_features & ~(0xffffffffULL << sh)) | (val << sh);
            virtio_set_guest_features(vd, f);
        }
        return;
    case 16:
        if (size == 2)
            vd->config_vector = valid_vector(vp, val);
        return;
    case 20:
        if (!val)
            vp_kicks_stop(vp, true);
        virtio_set_status(vd, val);
        if (!vd->status)
            pci_dev_set_irq(vp->pci, 0);
        if (vd->status & VIRTIO_STATUS_DRIVER_OK)
            vp_kicks_start(vp);
        return;
    case 22:
        if (size == 2)
            vp->queue_sel = val;
        return;
    default:
        queue_write(vp, off, val, size);
    }
}

static uint64_t isr_read(void *opaque, uint64_t off, unsigned size)
{
    struct virtio_pci *vp = opaque;
    if (off != 0)
        return 0;
    uint8_t v = vp->vd->isr;
    vp->vd->isr = 0;                             /* read to clear, and the line drops */
    pci_dev_set_irq(vp->pci, 0);
    return v;
}

static void isr_write(void *opaque, uint64_t off, uint64_t val, unsigned size) {}

static uint64_t device_read(void *opaque, uint64_t off, unsigned size)
{
    struct virtio_pci *vp = opaque;
    uint64_t v = 0;
    if (off + size <= vp->vd->config_len)
        memcpy(&v, vp->vd->config + off, size);
    return v;
}

static void device_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct virtio_pci *vp = opaque;
    if (off + size <= vp->vd->config_len && vp->vd->ops->config_write)
        vp->vd->ops->config_write(vp->vd, off, val, size);
}

static void notify_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct virtio_pci *vp = opaque;
    virtio_queue_notify(vp->vd, off / VIRTIO_PCI_NOTIFY_MULT);
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
    if (off < VIRTIO_PCI_ISR)
        return common_read(opaque, off - VIRTIO_PCI_COMMON, size);
    if (off < VIRTIO_PCI_DEVICE)
        return isr_read(opaque, off - VIRTIO_PCI_ISR, size);
    if (off < VIRTIO_PCI_NOTIFY)
        return device_read(opaque, off - VIRTIO_PCI_DEVICE, size);
    return 0;
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    if (off < VIRTIO_PCI_ISR)
        common_write(opaque, off - VIRTIO_PCI_COMMON, val, size);
    else if (off < VIRTIO_PCI_DEVICE)
        isr_write(opaque, off - VIRTIO_PCI_ISR, val, size);
    else if (off < VIRTIO_PCI_NOTIFY)
        device_write(opaque, off - VIRTIO_PCI_DEVICE, val, size);
    else
        notify_write(opaque, off - VIRTIO_PCI_NOTIFY, val, size);
}

static const struct mem_ops vp_bar_ops = { bar_read, bar_write };

static void vp_notify(struct virtio_dev *vd, uint16_t vector, uint8_t isr_bit)
{
    struct virtio_pci *vp = vd->transport_opaque;
    if (msix_enabled(vp->pci)) {
        if (vector != VIRTIO_NO_VECTOR && !vp_irqfd_notify(vp, vector))
            msix_notify(vp->pci, vector);
        return;
    }
    pci_dev_set_irq(vp->pci, 1);
}

static const struct virtio_transport vp_transport = { vp_notify };

static void vp_reset(struct pci_dev *d)
{
    struct virtio_pci *vp = d->opaque;
    vp_kicks_stop(vp, true);
    vp_irqfds_stop(vp);
    virtio_reset(vp->vd);
    vp->dfselect = vp->gfselect = 0;
    vp->queue_sel = 0;
}

static void vp_free(struct pci_dev *d)
{
    struct virtio_pci *vp = d->opaque;
    vp_kicks_stop(vp, false);
    vp_irqfds_stop(vp);
    for (int q = 0; vp->kick && q < vp->vd->nvq; q++)
        if (vp->kick[q].fd >= 0)
            close(vp->kick[q].fd);
    for (int v = 0; vp->irqfd && v < msix_vectors(d); v++)
        if (vp->irqfd[v].fd >= 0)
            close(vp->irqfd[v].fd);
    free(vp->kick);
    free(vp->irqfd);
    if (vp->free_fn)
        vp->free_fn(vp->free_opaque);
    free(vp);
}

/* BAR 4 moved or memory decoding changed: the doorbells follow. */
static void vp_config_write(struct pci_dev *d, unsigned off, uint32_t val, unsigned size)
{
    struct virtio_pci *vp = d->opaque;
    bool bar4 = off < PCI_BAR0 + 4 * 6 && off + size > PCI_BAR0 + 4 * 4;
    bool cmd = off < PCI_COMMAND + 2 && off + size > PCI_COMMAND;
    if (!bar4 && !cmd)
        return;
    bool on = false;
    for (int q = 0; vp->kick && q < vp->vd->nvq; q++)
        on |= vp->kick[q].on && vp->kick[q].addr !=
              d->bar[4].mapped_at + VIRTIO_PCI_NOTIFY + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULT;
    if (on || !d->bar[4].mapped)
        vp_kicks_stop(vp, true);
    if (vp->vd->status & VIRTIO_STATUS_DRIVER_OK)
        vp_kicks_start(vp);
}

static const struct pci_dev_ops vp_pci_ops = { vp_config_write, vp_reset, vp_free };

static int add_cap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len, bool notify)
{
    int c = pci_dev_add_cap(d, PCI_CAP_VENDOR, notify ? 20 : 16);
    if (c < 0)
        return c;
    d->cfg[c + 2] = notify ? 20 : 16;            /* cap_len */
    d->cfg[c + 3] = type;
    d->cfg[c + 4] = 4;                           /* BAR 4 */
    memcpy(d->cfg + c + 8, &off, 4);
    memcpy(d->cfg + c + 12, &len, 4);
    if (notify) {
        uint32_t mult = VIRTIO_PCI_NOTIFY_MULT;
        memcpy(d->cfg + c + 16, &mult, 4);
    }
    return 0;
}

struct pci_dev *virtio_pci_new(struct pci_bus *bus, int devfn, const char *model,
                               const char *id, struct virtio_dev *vd, uint32_t class_code,
                               void (*free_fn)(void *opaque), void *free_opaque,
                               struct error *err)
{
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp) {
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    struct pci_dev *d = pci_dev_new(bus, devfn, model, 0x1af4, 0x1040 + vd->device_id,
                                    class_code, 1, err);
    if (!d) {
        free(vp);
        return NULL;
    }
    vp->pci = d;
    vp->vd = vd;
    vp->kick = calloc(vd->nvq, sizeof(*vp->kick));
    vp->irqfd = calloc(vd->nvq + 1, sizeof(*vp->irqfd));
    for (int q = 0; vp->kick && q < vd->nvq; q++)
        vp->kick[q] = (struct vp_kick){ .vp = vp, .fd = -1, .q = (uint16_t)q };
    for (int v = 0; vp->irqfd && v <= vd->nvq; v++)
        vp->irqfd[v] = (struct vp_irqfd){ .fd = -1, .handle = -1 };
    vp->free_fn = free_fn;
    vp->free_opaque = free_opaque;
    d->opaque = vp;
    d->ops = &vp_pci_ops;
    snprintf(d->id, sizeof(d->id), "%s", id ? id : "");
    uint16_t sv = 0x1af4, sid = 0x1100;
    memcpy(d->cfg + PCI_SUBSYS_VENDOR, &sv, 2);
    memcpy(d->cfg + PCI_SUBSYS_ID, &sid, 2);
    d->cfg[PCI_INT_PIN] = 1;
    vd->transport = &vp_transport;
    vd->transport_opaque = vp;
    int r = pci_dev_set_bar(d, 4, VIRTIO_PCI_BAR_SIZE, PCI_BAR_MEM64 | PCI_BAR_PREFETCH,
                            &vp_bar_ops, vp);
    if (!r)
        r = msix_init(d, vd->nvq + 1, 1);
    if (!r)
        r = add_cap(d, CAP_COMMON, VIRTIO_PCI_COMMON, 0x38, false);
    if (!r)
        r = add_cap(d, CAP_ISR, VIRTIO_PCI_ISR, 1, false);
    if (!r && vd->config_len)
        r = add_cap(d, CAP_DEVICE, VIRTIO_PCI_DEVICE, vd->config_len, false);
    if (!r)
        r = add_cap(d, CAP_NOTIFY, VIRTIO_PCI_NOTIFY, VIRTIO_PCI_NOTIFY_MULT * vd->nvq, true);
    if (r < 0) {
        error_set(err, r, "%s: cannot set up the PCI function", model);
        vp->free_fn = NULL;                      /* the caller keeps its device */
        return NULL;                             /* the function goes with the bus */
    }
    return d;
}

struct virtio_dev *virtio_pci_vdev(struct pci_dev *d)
{
    return d && d->ops == &vp_pci_ops ? ((struct virtio_pci *)d->opaque)->vd : NULL;
}
