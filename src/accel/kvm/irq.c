/* Split irqchip: the local APICs live in the kernel (KVM_CAP_SPLIT_IRQCHIP),
 * the board's 8259, I/O APIC and PIT stay in this process. What that buys:
 * APIC timer, IPIs, TPR and EOI never leave the guest; an MSI is a
 * KVM_SIGNAL_MSI from whichever thread raises it, or an eventfd write
 * bound to a GSI route (irqfd) that no thread of ours has to handle; the
 * vCPU is not kicked out to have a vector injected.
 *
 * The board's APIC bus gets a router (hw/apic.h): the I/O APIC's messages
 * and MSIs come here. The 8259 still reaches CPU 0 through KVM_INTERRUPT
 * (ExtINT, accepted by the kernel's LINT0). A level-triggered I/O APIC
 * message needs its EOI back (remote IRR): KVM reports EOIs of vectors it
 * finds in MSI routes at GSIs below the I/O APIC pin count, so each level
 * message seen gets such a route before it is sent.
 *
 * GSI routes: 0..KVM_IOAPIC_PINS-1 for level messages, the rest irqfds.
 * The whole table is handed to KVM at every change (KVM_SET_GSI_ROUTING);
 * changes are rare (a guest reprogramming an MSI-X entry). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "accel/kvm/kvm_int.h"
#include "hw/apic.h"
#include "util/error.h"
#include "util/mainloop.h"

#define LEVEL_BIT (1u << 15)

static int route_commit(struct kvm_irq *q, int vm)
{
    struct {
        struct kvm_irq_routing h;
        struct kvm_irq_routing_entry e[KVM_GSI_MAX];
    } *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    for (int g = 0; g < KVM_GSI_MAX; g++) {
        if (!q->route_used[g])
            continue;
        struct kvm_irq_routing_entry *e = &t->e[t->h.nr++];
        e->gsi = (uint32_t)g;
        e->type = KVM_IRQ_ROUTING_MSI;
        e->u.msi.address_lo = (uint32_t)q->route_addr[g];
        e->u.msi.address_hi = (uint32_t)(q->route_addr[g] >> 32);
        e->u.msi.data = q->route_data[g];
    }
    int r = ioctl(vm, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
    free(t);
    return r;
}

/* A level message gets an EOI route unless one matches already. */
static void level_route(struct accel *a, uint64_t addr, uint32_t data)
{
    struct kvm_irq *q = &a->irq;
    for (int g = 0; g < KVM_IOAPIC_PINS; g++)
        if (q->route_used[g] && q->route_addr[g] == addr && q->route_data[g] == data)
            return;
    int g = q->level_next++ % KVM_IOAPIC_PINS;  /* oldest goes: the pins are fewer */
    q->route_used[g] = true;
    q->route_addr[g] = addr;
    q->route_data[g] = data;
    if (route_commit(q, a->vm) < 0)
        error_report("KVM: cannot route the EOI of vector %u", data & 0xff);
}

static void kvm_router_msi(void *opaque, uint64_t addr, uint32_t data)
{
    struct accel *a = opaque;
    pthread_mutex_lock(&a->irq.lock);
    if (data & LEVEL_BIT)
        level_route(a, addr, data);
    pthread_mutex_unlock(&a->irq.lock);
    struct kvm_msi m = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
                         .data = data };
    atomic_fetch_add(&a->stats.signal_msi, 1);
    if (ioctl(a->vm, KVM_SIGNAL_MSI, &m) < 0)
        error_report("KVM: cannot send MSI 0x%llx/0x%x", (unsigned long long)addr, data);
}

static int kvm_router_irqfd_add(void *opaque, int fd, uint64_t addr, uint32_t data)
{
    struct accel *a = opaque;
    struct kvm_irq *q = &a->irq;
    pthread_mutex_lock(&q->lock);
    int g = KVM_IOAPIC_PINS;
    while (g < KVM_GSI_MAX && q->route_used[g])
        g++;
    int r = g < KVM_GSI_MAX ? 0 : -ENOSPC;
    if (!r) {
        q->route_used[g] = true;
        q->route_addr[g] = addr;
        q->route_data[g] = data;
        q->route_fd[g] = fd;
        r = route_commit(q, a->vm);
    }
    if (!r) {
        struct kvm_irqfd f = { .fd = (uint32_t)fd, .gsi = (uint32_t)g };
        r = ioctl(a->vm, KVM_IRQFD, &f) < 0 ? -errno : 0;
    }
    if (r < 0 && g < KVM_GSI_MAX) {
        q->route_used[g] = false;
        route_commit(q, a->vm);
    }
    if (!r)
        atomic_fetch_add(&a->stats.irqfds, 1);
    pthread_mutex_unlock(&q->lock);
    return r < 0 ? r : g;
}

static int kvm_router_irqfd_set(void *opaque, int g, uint64_t addr, uint32_t data)
{
    struct accel *a = opaque;
    struct kvm_irq *q = &a->irq;
    if (g < KVM_IOAPIC_PINS || g >= KVM_GSI_MAX)
        return -EINVAL;
    pthread_mutex_lock(&q->lock);
    int r = 0;
    if (q->route_addr[g] != addr || q->route_data[g] != data) {
        q->route_addr[g] = addr;
        q->route_data[g] = data;
        r = route_commit(q, a->vm);
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static void kvm_router_irqfd_del(void *opaque, int g)
{
    struct accel *a = opaque;
    struct kvm_irq *q = &a->irq;
    if (g < KVM_IOAPIC_PINS || g >= KVM_GSI_MAX)
        return;
    pthread_mutex_lock(&q->lock);
    if (q->route_used[g]) {
        struct kvm_irqfd f = { .fd = (uint32_t)q->route_fd[g], .gsi = (uint32_t)g,
                               .flags = KVM_IRQFD_FLAG_DEASSIGN };
        ioctl(a->vm, KVM_IRQFD, &f);
        q->route_used[g] = false;
        route_commit(q, a->vm);
    }
    pthread_mutex_unlock(&q->lock);
}

static const struct apic_bus_router kvm_router = {
    kvm_router_msi, kvm_router_irqfd_add, kvm_router_irqfd_set, kvm_router_irqfd_del,
};

const char *kvm_irqchip_name(enum kvm_irqchip_mode m)
{
    return m == KVM_IRQCHIP_SPLIT ? "split" : "off";
}

/* Before any vCPU exists. Falls back to the board's APICs ("off") when
 * the host lacks a piece, saying why under -d int. */
int kvm_irq_init(struct accel *a, struct error *err)
{
    struct kvm_irq *q = &a->irq;
    pthread_mutex_init(&q->lock, NULL);
    q->mode = KVM_IRQCHIP_OFF;
    const char *want = a->b.kernel_irqchip;
    if (want && !strcmp(want, "off"))
        return 0;
    if (want && strcmp(want, "split"))
        return error_set(err, -EINVAL, "kernel-irqchip=%s: kvm offers split or off "
                         "(on: the in-kernel 8259 misdelivers IRQ0 on PVM hosts)", want);
    static const struct { int cap; const char *name; } need[] = {
        { KVM_CAP_SPLIT_IRQCHIP, "KVM_CAP_SPLIT_IRQCHIP" }, { KVM_CAP_IRQ_ROUTING, "IRQ routing" },
        { KVM_CAP_SIGNAL_MSI, "KVM_SIGNAL_MSI" }, { KVM_CAP_IRQFD, "irqfd" },
    };
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]) && !missing; i++)
        if (ioctl(a->vm, KVM_CHECK_EXTENSION, need[i].cap) <= 0)
            missing = need[i].name;
    struct kvm_enable_cap c = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { KVM_IOAPIC_PINS } };
    if (!missing && ioctl(a->vm, KVM_ENABLE_CAP, &c) < 0)
        missing = "a split irqchip (KVM_ENABLE_CAP refused)";
    if (missing) {
        if (want)
            return error_set(err, -ENOTSUP, "kernel-irqchip=split: this KVM lacks %s", missing);
        if (a->b.log_mask & X86_LOG_INT)
            error_report("kvm: no %s here: irqchip off", missing);
        return 0;
    }
    q->mode = KVM_IRQCHIP_SPLIT;
    return 0;
}

/* After the vCPUs: the board's APIC bus hands its messages over. */
void kvm_irq_start(struct accel *a)
{
    if (a->irq.mode == KVM_IRQCHIP_SPLIT)
        apic_bus_set_router(a->b.apics, &kvm_router, a);
    if (a->b.log_mask & X86_LOG_INT)
        error_report(a->irq.mode == KVM_IRQCHIP_SPLIT
                     ? "kvm: irqchip split: local APICs in the kernel; 8259, I/O APIC, PIT here; "
                       "MSIs by KVM_SIGNAL_MSI or irqfd"
                     : "kvm: irqchip off: the board's APICs, vectors injected with KVM_INTERRUPT; "
                       "no irqfd");
}

void kvm_irq_stop(struct accel *a)
{
    if (a->irq.mode != KVM_IRQCHIP_SPLIT)
        return;
    if (apic_bus_router(a->b.apics, NULL) == &kvm_router)
        apic_bus_set_router(a->b.apics, NULL, NULL);
    for (int g = KVM_IOAPIC_PINS; g < KVM_GSI_MAX; g++)
        kvm_router_irqfd_del(a, g);
}

/* Power-on LAPIC: what KVM's reset leaves, every LVT masked, and the
 * BSP's LINT0/LINT1 wired as the BIOS would (ExtINT, NMI) — the board's
 * Linux boot expects the 8259 to reach CPU 0 as with its own APICs. */
void kvm_irq_reset_lapic(struct kvm_vcpu *v, bool bsp)
{
    struct kvm_lapic_state s;
    if (ioctl(v->fd, KVM_GET_LAPIC, &s) < 0)
        return;
    uint32_t id, ver;
    memcpy(&id, s.regs + 0x20, 4);
    memcpy(&ver, s.regs + 0x30, 4);
    memset(s.regs, 0, sizeof(s.regs));
    uint32_t set[][2] = {
        { 0x20, id }, { 0x30, ver }, { 0xe0, 0xffffffffu }, { 0xf0, 0xff },
        { 0x2f0, 0x10000 }, { 0x320, 0x10000 }, { 0x330, 0x10000 }, { 0x340, 0x10000 },
        { 0x350, bsp ? 0x700 : 0x10000 }, { 0x360, bsp ? 0x400 : 0x10000 }, { 0x370, 0x10000 },
    };
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        memcpy(s.regs + set[i][0], &set[i][1], 4);
    ioctl(v->fd, KVM_SET_LAPIC, &s);
    struct kvm_mp_state mp = { bsp ? KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_UNINITIALIZED };
    ioctl(v->fd, KVM_SET_MP_STATE, &mp);
}

/* KVM_EXIT_IOAPIC_EOI: the guest EOIed a level vector of an I/O APIC route. */
void kvm_irq_eoi(struct kvm_vcpu *v, uint8_t vector)
{
    struct mainloop *ml = v->a->b.ml;
    ml_lock(ml);
    apic_bus_eoi(v->a->b.apics, vector);
    ml_unlock(ml);
}
