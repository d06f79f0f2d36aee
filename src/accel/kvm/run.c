/* The vCPU loop: take events, inject what the board's APIC offers when
 * the guest can take it (else ask KVM for an interrupt window), run, and
 * dispatch the exit through the board's address spaces. HLT, INIT and
 * the wait for SIPI park the thread on its condition variable. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "accel/kvm/kvm_int.h"
#include "hw/apic.h"
#include "hw/memory.h"
#include "util/error.h"
#include "util/mainloop.h"

#define SIG_KICK SIGUSR1

/* KVM_RUN lets SIG_KICK through; everywhere else the thread blocks it,
 * so a kick sent outside the guest waits and makes the next entry return. */
static void kvm_thread_setup(struct kvm_vcpu *v)
{
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    sigdelset(&set, SIG_KICK);
    struct { struct kvm_signal_mask h; uint8_t bits[8]; } m = { .h.len = 8 };
    memcpy(m.bits, &set, 8);
    ioctl(v->fd, KVM_SET_SIGNAL_MASK, &m);
    sigemptyset(&set);
    sigaddset(&set, SIG_KICK);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    v->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    pthread_mutex_lock(&v->lock);
    v->thread = pthread_self();
    v->thread_set = true;
    pthread_mutex_unlock(&v->lock);
}

static void drain_kick(void)
{
    sigset_t set;
    struct timespec zero = {0};
    sigemptyset(&set);
    sigaddset(&set, SIG_KICK);
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
}

/* Take the pending events; false when the loop must return. Waits while
 * halted or waiting for SIPI. */
static bool kvm_take_events(struct kvm_vcpu *v)
{
    pthread_mutex_lock(&v->lock);
    for (;;) {
        unsigned ev = v->events;
        if (ev & KVM_EV_EXIT) {
            v->events &= ~KVM_EV_EXIT;
            pthread_mutex_unlock(&v->lock);
            return false;
        }
        v->events &= KVM_EV_EXIT;
        if (ev & APIC_EV_INIT) {
            v->wait_for_sipi = true;
            v->halted = false;
        }
        if ((ev & APIC_EV_SIPI) && v->wait_for_sipi) {
            uint8_t vec = v->sipi_vector;
            pthread_mutex_unlock(&v->lock);
            kvm_regs_sipi(v, vec);
            pthread_mutex_lock(&v->lock);
            v->wait_for_sipi = false;
        }
        if (ev & APIC_EV_INTR)
            v->intr_pending = true;
        if (ev & APIC_EV_NMI) {
            pthread_mutex_unlock(&v->lock);
            ioctl(v->fd, KVM_NMI);
            pthread_mutex_lock(&v->lock);
            v->halted = false;
        }
        if (v->halted && v->intr_pending && (v->run->if_flag || (ev & APIC_EV_INTR)))
            v->halted = false;
        if (!v->halted && !v->wait_for_sipi)
            break;
        pthread_cond_wait(&v->cond, &v->lock);
    }
    pthread_mutex_unlock(&v->lock);
    return true;
}

static void kvm_inject(struct kvm_vcpu *v)
{
    struct kvm_run *run = v->run;
    run->request_interrupt_window = 0;
    if (!v->intr_pending)
        return;
    if (!run->ready_for_interrupt_injection || !run->if_flag) {
        run->request_interrupt_window = 1;
        return;
    }
    struct mainloop *ml = v->a->b.ml;
    ml_lock(ml);
    /* Split: the kernel's LAPIC took its own vectors; only ExtINT is ours. */
    int vec = v->a->irq.mode == KVM_IRQCHIP_SPLIT ? apic_bus_pic_ack(v->a->b.apics)
                                                  : apic_ack(v->apic);
    ml_unlock(ml);
    if (vec < 0) {
        v->intr_pending = false;
        return;
    }
    struct kvm_interrupt irq = { .irq = (uint32_t)vec };
    atomic_fetch_add(&v->a->stats.interrupt, 1);
    if (ioctl(v->fd, KVM_INTERRUPT, &irq) < 0)
        error_report("KVM: cannot inject vector %d into vCPU %d", vec, v->index);
    run->request_interrupt_window = 1;       /* more may be waiting behind it */
}

/* A doorbell write that left the guest: its ioeventfd did not catch it. */
static void kvm_count_doorbell(struct accel *a, uint64_t addr, bool pio)
{
    if (!atomic_load(&a->stats.ioeventfds))
        return;
    pthread_mutex_lock(&a->db_lock);
    for (int i = 0; i < KVM_DOORBELLS; i++) {
        struct kvm_doorbell *d = &a->db[i];
        if (d->used && d->pio == pio && addr >= d->addr && addr < d->addr + d->len) {
            atomic_fetch_add(&a->stats.doorbell_mmio, 1);
            break;
        }
    }
    pthread_mutex_unlock(&a->db_lock);
}

static void kvm_exit_io(struct kvm_vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *p = (uint8_t *)run + run->io.data_offset;
    struct address_space *io = v->a->b.io;
    if (run->io.direction == KVM_EXIT_IO_OUT)
        kvm_count_doorbell(v->a, run->io.port, true);
    for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size) {
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            uint32_t val = 0;
            memcpy(&val, p, run->io.size);
            as_write(io, run->io.port, val, run->io.size);
        } else {
            uint32_t val = (uint32_t)as_read(io, run->io.port, run->io.size);
            memcpy(p, &val, run->io.size);
        }
    }
}

static void kvm_exit_mmio(struct kvm_vcpu *v)
{
    struct kvm_run *run = v->run;
    uint64_t gpa = run->mmio.phys_addr, val = 0;
    unsigned len = run->mmio.len;
    struct mainloop *ml = v->a->b.ml;
    bool apic = v->a->irq.mode == KVM_IRQCHIP_OFF && (gpa & ~0xfffULL) == apic_mmio_addr(v->apic);
    if (run->mmio.is_write) {
        kvm_count_doorbell(v->a, gpa, false);
        memcpy(&val, run->mmio.data, len > 8 ? 8 : len);
        if (!apic) {
            as_write(v->a->b.mem, gpa, val, len);
            return;
        }
        ml_lock(ml);
        apic_mmio_write(v->apic, gpa & 0xff0, (uint32_t)val);
        ml_unlock(ml);
        return;
    }
    if (!apic) {
        val = as_read(v->a->b.mem, gpa, len);
    } else {
        ml_lock(ml);
        val = apic_mmio_read(v->apic, gpa & 0xffc) >> (8 * (gpa & 3));
        ml_unlock(ml);
    }
    memcpy(run->mmio.data, &val, len > 8 ? 8 : len);
}

/* The board's APIC holds the TPR; KVM mirrors it in kvm_run.cr8. */
static void kvm_sync_cr8(struct kvm_vcpu *v)
{
    if (v->a->irq.mode == KVM_IRQCHIP_SPLIT || v->run->cr8 == v->cr8)
        return;
    v->cr8 = (uint8_t)v->run->cr8;
    ml_lock(v->a->b.ml);
    apic_set_cr8(v->apic, v->cr8);
    ml_unlock(v->a->b.ml);
}

static void kvm_fatal(struct kvm_vcpu *v, const char *what, unsigned long long code)
{
    error_report("KVM: vCPU %d stopped: %s (0x%llx)", v->index, what, code);
    if (v->a->b.triple_fault)
        v->a->b.triple_fault(v->a->b.opaque, v->index);
    v->halted = true;
}

static void kvm_handle_exit(struct kvm_vcpu *v)
{
    struct kvm_run *run = v->run;
    kvm_sync_cr8(v);
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        atomic_fetch_add(&v->a->stats.exit_io, 1);
        kvm_exit_io(v);
        break;
    case KVM_EXIT_MMIO:
        atomic_fetch_add(&v->a->stats.exit_mmio, 1);
        kvm_exit_mmio(v);
        break;
    case KVM_EXIT_IOAPIC_EOI:
        kvm_irq_eoi(v, run->eoi.vector);
        break;
    case KVM_EXIT_HLT:
        pthread_mutex_lock(&v->lock);
        v->halted = true;
        pthread_mutex_unlock(&v->lock);
        break;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
        break;
    case KVM_EXIT_SHUTDOWN:
        if (v->a->b.triple_fault)
            v->a->b.triple_fault(v->a->b.opaque, v->index);
        v->halted = true;
        break;
    case KVM_EXIT_FAIL_ENTRY:
        kvm_fatal(v, "entry failed", run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        kvm_fatal(v, "internal error", run->internal.suberror);
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        if (v->a->b.triple_fault)
            v->a->b.triple_fault(v->a->b.opaque, v->index);
        v->halted = true;
        break;
    default:
        kvm_fatal(v, "unhandled exit", run->exit_reason);
    }
}

void kvm_vcpu_run(struct accel *a, int i)
{
    struct kvm_vcpu *v = &a->v[i];
    if (!v->thread_set)
        kvm_thread_setup(v);
    while (kvm_take_events(v)) {
        kvm_inject(v);
        v->run->cr8 = v->cr8;
        atomic_store(&v->in_guest, true);
        int r = ioctl(v->fd, KVM_RUN, 0);
        atomic_store(&v->in_guest, false);
        atomic_fetch_add(&v->exits, 1);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                drain_kick();
                continue;
            }
            kvm_fatal(v, "KVM_RUN failed", (unsigned long long)errno);
            continue;
        }
        kvm_handle_exit(v);
    }
}
