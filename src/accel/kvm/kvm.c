/* vCPUs run by KVM: one thread each (the board's), guest RAM regions as
 * memory slots (the PCI hole is simply not a slot), port I/O and MMIO
 * exits dispatched through the board's address spaces, interrupts as
 * irq.c sets up (split irqchip, or the board's APICs with KVM_INTERRUPT).
 * A kick sets an event bit and sends SIG_KICK to the thread, which
 * KVM_RUN lets through only while in the guest, so no kick is lost
 * between check and entry. */
#include "accel/kvm/kvm.h"
#include "accel/kvm/kvm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "hw/apic.h"
#include "hw/memory.h"
#include "util/mainloop.h"

#define SIG_KICK SIGUSR1

static void kick_handler(int sig) { (void)sig; }

/* RAM regions of the memory space as slots, from creation on: a region
 * added later (a RAM-backed BAR) gets one, a removed one loses it. */
static int kvm_ram_listener(void *opaque, const struct mem_region *r, bool added)
{
    struct accel *a = opaque;
    int i = 0;
    if (added) {
        while (i < KVM_MAX_SLOTS && a->slots[i].used)
            i++;
        if (i == KVM_MAX_SLOTS)
            return -ENOSPC;
    } else {
        while (i < KVM_MAX_SLOTS && !(a->slots[i].used && a->slots[i].base == r->base &&
                                      a->slots[i].ram == r->ram))
            i++;
        if (i == KVM_MAX_SLOTS)
            return -ENOENT;
    }
    struct kvm_userspace_memory_region m = {
        .slot = (uint32_t)i, .guest_phys_addr = r->base, .memory_size = added ? r->size : 0,
        .userspace_addr = (uintptr_t)r->ram,
    };
    if (ioctl(a->vm, KVM_SET_USER_MEMORY_REGION, &m) < 0) {
        int e = -errno;
        error_report("KVM: cannot %s %s at 0x%llx: %s", added ? "map" : "unmap", r->name,
                     (unsigned long long)r->base, strerror(-e));
        return e;
    }
    a->slots[i] = (struct kvm_slot){ r->base, r->size, r->ram, added };
    return 0;
}

static int kvm_add_slots(struct accel *a, struct error *err)
{
    int r = as_set_ram_listener(a->b.mem, kvm_ram_listener, a);
    return r < 0 ? error_set(err, r, "KVM: cannot map guest RAM") : 0;
}

static int kvm_vcpu_init(struct accel *a, int i, struct error *err)
{
    struct kvm_vcpu *v = &a->v[i];
    v->a = a;
    v->index = i;
    v->fd = -1;
    v->apic = apic_bus_cpu(a->b.apics, i);
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->fd = ioctl(a->vm, KVM_CREATE_VCPU, i);
    if (v->fd < 0)
        return error_set_errno(err, -errno, "KVM: cannot create vCPU %d", i);
    v->run = mmap(NULL, a->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        return error_set_errno(err, -errno, "KVM: cannot map vCPU %d", i);
    }
    return kvm_cpuid_set(a, v, err);
}

static void kvm_print_stats(struct accel *a)
{
    struct kvm_stats *s = &a->stats;
    error_report("kvm: irqchip %s; exits: io %lu, mmio %lu (doorbells %lu); KVM_INTERRUPT %lu, "
                 "KVM_SIGNAL_MSI %lu; irqfds %lu, ioeventfds %lu", kvm_irqchip_name(a->irq.mode),
                 atomic_load(&s->exit_io), atomic_load(&s->exit_mmio),
                 atomic_load(&s->doorbell_mmio), atomic_load(&s->interrupt),
                 atomic_load(&s->signal_msi), atomic_load(&s->irqfds), atomic_load(&s->ioeventfds));
}

static void kvm_destroy(struct accel *a)
{
    if (!a)
        return;
    if (a->v && (a->b.log_mask & X86_LOG_INT))
        kvm_print_stats(a);
    if (a->v) {
        kvm_irq_stop(a);
        as_set_ioeventfd_handler(a->b.mem, NULL, NULL);
        as_set_ioeventfd_handler(a->b.io, NULL, NULL);
    }
    if (a->vm >= 0)
        as_set_ram_listener(a->b.mem, NULL, NULL);
    for (int i = 0; a->v && i < a->b.ncpus; i++) {
        struct kvm_vcpu *v = &a->v[i];
        if (v->run)
            munmap(v->run, a->run_size);
        if (v->fd > 0)
            close(v->fd);
    }
    free(a->v);
    free(a->cpuid);
    if (a->vm >= 0)
        close(a->vm);
    if (a->kvm >= 0)
        close(a->kvm);
    free(a);
}

static int kvm_ioeventfd(struct accel *a, uint64_t addr, unsigned len, bool pio, int fd,
                         bool assign);

static int kvm_as_ioeventfd(void *opaque, struct address_space *as, uint64_t addr, unsigned len,
                            int fd, bool assign)
{
    struct accel *a = opaque;
    return kvm_ioeventfd(a, addr, len, as == a->b.io, fd, assign);
}

static struct accel *kvm_create(const struct accel_board *b, struct error *err)
{
    struct accel *a = calloc(1, sizeof(*a));
    if (!a) {
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    a->b = *b;
    a->vm = -1;
    pthread_mutex_init(&a->db_lock, NULL);
    a->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int r = 0;
    if (a->kvm < 0)
        r = error_set_errno(err, -errno, "cannot open /dev/kvm");
    if (!r && (a->vm = ioctl(a->kvm, KVM_CREATE_VM, 0)) < 0)
        r = error_set_errno(err, -errno, "KVM: cannot create a VM");
    if (!r) {
        a->run_size = ioctl(a->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        /* VMX needs three pages for the real-mode TSS; others ignore it. */
        ioctl(a->vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
        r = kvm_add_slots(a, err);
    }
    if (!r)
        r = kvm_irq_init(a, err);
    if (!r)
        r = kvm_cpuid_load(a, err);
    if (!r && !(a->v = calloc(b->ncpus, sizeof(*a->v))))
        r = error_set(err, -ENOMEM, "out of memory");
    for (int i = 0; !r && i < b->ncpus; i++)
        r = kvm_vcpu_init(a, i, err);
    if (!r) {
        struct sigaction sa = { .sa_handler = kick_handler };
        sigemptyset(&sa.sa_mask);
        sigaction(SIG_KICK, &sa, NULL);
        as_set_ioeventfd_handler(b->mem, kvm_as_ioeventfd, a);
        as_set_ioeventfd_handler(b->io, kvm_as_ioeventfd, a);
        kvm_irq_start(a);
    }
    if (r < 0) {
        kvm_destroy(a);
        return NULL;
    }
    return a;
}

/* Events from the board's APIC; wake the thread wherever it is. */
static void kvm_vcpu_kick(struct accel *a, int i, unsigned ev)
{
    struct kvm_vcpu *v = &a->v[i];
    pthread_mutex_lock(&v->lock);
    v->events |= ev;
    pthread_cond_broadcast(&v->cond);
    bool in_thread = v->thread_set;
    pthread_mutex_unlock(&v->lock);
    if (in_thread)
        pthread_kill(v->thread, SIG_KICK);
}

static void kvm_vcpu_exit(struct accel *a, int i) { kvm_vcpu_kick(a, i, KVM_EV_EXIT); }

static void kvm_vcpu_sipi(struct accel *a, int i, uint8_t vector)
{
    struct kvm_vcpu *v = &a->v[i];
    pthread_mutex_lock(&v->lock);
    v->sipi_vector = vector;
    pthread_mutex_unlock(&v->lock);
    kvm_vcpu_kick(a, i, APIC_EV_SIPI);
}

static void kvm_vcpu_reset(struct accel *a, int i, bool bsp)
{
    struct kvm_vcpu *v = &a->v[i];
    kvm_regs_reset(v);
    bool split = a->irq.mode == KVM_IRQCHIP_SPLIT;
    if (split)
        kvm_irq_reset_lapic(v, bsp);              /* the kernel holds APs until SIPI */
    pthread_mutex_lock(&v->lock);
    v->halted = false;
    v->wait_for_sipi = !bsp && !split;
    v->events &= KVM_EV_EXIT;
    pthread_mutex_unlock(&v->lock);
}

/* From another thread while the vCPU is in the guest, KVM_GET_REGS would
 * wait for its next exit, which a guest spinning at CPL3 may never make:
 * kick it out and read the copy KVM leaves in kvm_run. */
static bool kvm_regs_from_exit(struct kvm_vcpu *v, struct x86_regs *r)
{
    pthread_mutex_lock(&v->lock);
    bool foreign = v->thread_set && !pthread_equal(v->thread, pthread_self());
    pthread_mutex_unlock(&v->lock);
    if (!foreign || !atomic_load(&v->in_guest))
        return false;
    unsigned long e = atomic_load(&v->exits);
    pthread_kill(v->thread, SIG_KICK);
    for (int n = 0; n < 2000 && atomic_load(&v->exits) == e; n++)
        usleep(100);
    if (atomic_load(&v->exits) == e)
        return false;
    kvm_regs_convert(r, &v->run->s.regs.regs, &v->run->s.regs.sregs);
    return true;
}

static void kvm_get_regs_op(struct accel *a, int i, struct x86_regs *r)
{
    struct kvm_vcpu *v = &a->v[i];
    if (!kvm_regs_from_exit(v, r))
        kvm_regs_get(v, r);
    r->halted = v->halted;
    r->wait_for_sipi = v->wait_for_sipi;
}

static void kvm_set_regs_op(struct accel *a, int i, const struct x86_regs *r)
{
    struct kvm_vcpu *v = &a->v[i];
    kvm_regs_set(v, r);
    v->halted = r->halted;
    v->wait_for_sipi = r->wait_for_sipi;
}

static int kvm_translate(struct accel *a, int i, uint64_t va, uint64_t *pa)
{
    struct kvm_translation t = { .linear_address = va };
    if (ioctl(a->v[i].fd, KVM_TRANSLATE, &t) < 0 || !t.valid)
        return -1;
    *pa = t.physical_address;
    return 0;
}

static int kvm_ioeventfd(struct accel *a, uint64_t addr, unsigned len, bool pio, int fd,
                         bool assign)
{
    struct kvm_ioeventfd io = {
        .addr = addr, .len = len, .fd = fd,
        .flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    if (ioctl(a->vm, KVM_IOEVENTFD, &io) < 0)
        return -errno;
    pthread_mutex_lock(&a->db_lock);
    for (int i = 0; i < KVM_DOORBELLS; i++) {
        struct kvm_doorbell *d = &a->db[i];
        if (assign && !d->used) {
            *d = (struct kvm_doorbell){ addr, len, pio, true };
            break;
        }
        if (!assign && d->used && d->addr == addr && d->pio == pio) {
            d->used = false;
            break;
        }
    }
    pthread_mutex_unlock(&a->db_lock);
    if (assign)
        atomic_fetch_add(&a->stats.ioeventfds, 1);
    return 0;
}

const struct accel_ops accel_kvm_ops = {
    .name = "kvm",
    .create = kvm_create,
    .destroy = kvm_destroy,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_exit = kvm_vcpu_exit,
    .vcpu_kick = kvm_vcpu_kick,
    .vcpu_sipi = kvm_vcpu_sipi,
    .vcpu_reset = kvm_vcpu_reset,
    .get_regs = kvm_get_regs_op,
    .set_regs = kvm_set_regs_op,
    .translate = kvm_translate,
    .ioeventfd = kvm_ioeventfd,
};
