/* The PC board: RAM with the PCI hole, the legacy devices, the interrupt
 * controllers, firmware tables, Linux boot, one thread per vCPU and the
 * run control the monitor drives. machine_create() reads top to bottom in
 * the order the board is built. */
#include "machine/machine.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "accel/accel.h"
#include "accel/kvm/kvm.h"
#include "hw/acpi-pm.h"
#include "hw/apic.h"
#include "hw/i8042.h"
#include "hw/ioapic.h"
#include "hw/irqchip.h"
#include "hw/memory.h"
#include "hw/pci/pci-board.h"
#include "hw/pci/pci.h"
#include "hw/pic.h"
#include "hw/pit.h"
#include "hw/rtc.h"
#include "hw/serial.h"
#include "machine/acpi.h"
#include "machine/e820.h"
#include "machine/linux-boot.h"
#include "util/mainloop.h"

#define PC_ACPI_SIZE 0x10000      /* tables at PC_BIOS_START, inside the reserved BIOS area */
#define PC_ROM_BASE 0xffff0000ULL
#define PC_ROM_SIZE 0x10000

struct vcpu {
    struct machine *m;
    int index;
    pthread_t thread;
    bool started;
    _Atomic int tid;
};

struct machine {
    struct machine_config cfg;
    struct mainloop *ml;
    struct address_space *mem, *io;
    uint8_t *ram;
    uint64_t ram_size, below_4g, above_4g;
    uint8_t *rom;
    struct e820_table e820;
    int ncpus;

    const struct accel_ops *aops;
    struct accel *accel;
    struct apic_bus *apics;
    struct pic *pic;
    struct ioapic *ioapic;
    struct pc_irqchip irqchip;
    struct pit *pit;
    struct rtc *rtc;
    struct acpi_pm *pm;
    struct serial *serial[4];
    struct i8042 *kbd;
    uint8_t port92;
    struct pci_bus *pci;

    struct linux_boot lb;
    bool have_kernel;
    struct vcpu *vcpus;

    /* Run control: vCPU threads park while `stop` or `quit`. */
    pthread_mutex_t run_lock;
    pthread_cond_t run_cond;      /* parked vCPUs wait here */
    pthread_cond_t park_cond;     /* who waits for them to park waits here */
    bool stop, quit;
    int parked;
    atomic_bool reset_queued;
    enum run_state state;
    enum machine_exit exit_reason;
};

/* ---- vCPU threads and run control ---- */

static void *vcpu_thread(void *opaque)
{
    struct vcpu *v = opaque;
    struct machine *m = v->m;
    atomic_store(&v->tid, (int)syscall(SYS_gettid));
    char name[16];
    snprintf(name, sizeof(name), "CPU %d/%s", v->index, m->aops->name);
    pthread_setname_np(pthread_self(), name);   /* as QEMU names them, for top -H and gdb */
    for (;;) {
        pthread_mutex_lock(&m->run_lock);
        while (m->stop && !m->quit) {
            m->parked++;
            pthread_cond_broadcast(&m->park_cond);
            pthread_cond_wait(&m->run_cond, &m->run_lock);
            m->parked--;
        }
        bool quit = m->quit;
        pthread_mutex_unlock(&m->run_lock);
        if (quit)
            break;
        m->aops->vcpu_run(m->accel, v->index);
    }
    return NULL;
}

/* Ask every vCPU to leave guest code and park. */
static void vcpus_stop(struct machine *m)
{
    pthread_mutex_lock(&m->run_lock);
    m->stop = true;
    pthread_mutex_unlock(&m->run_lock);
    for (int i = 0; i < m->ncpus; i++)
        m->aops->vcpu_exit(m->accel, i);
}

/* Wait until all started vCPUs are parked. Called from the loop thread
 * with the device lock held once: a vCPU may need that lock to finish
 * its current access, so it is dropped while waiting. */
static void vcpus_wait_parked(struct machine *m)
{
    int started = 0;
    for (int i = 0; i < m->ncpus; i++)
        started += m->vcpus[i].started;
    ml_unlock(m->ml);
    pthread_mutex_lock(&m->run_lock);
    while (m->parked < started) {
        pthread_mutex_unlock(&m->run_lock);
        for (int i = 0; i < m->ncpus; i++)
            m->aops->vcpu_exit(m->accel, i);
        pthread_mutex_lock(&m->run_lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&m->park_cond, &m->run_lock, &ts);
    }
    pthread_mutex_unlock(&m->run_lock);
    ml_lock(m->ml);
}

static void vcpus_go(struct machine *m)
{
    pthread_mutex_lock(&m->run_lock);
    m->stop = false;
    pthread_cond_broadcast(&m->run_cond);
    pthread_mutex_unlock(&m->run_lock);
}

void machine_pause(struct machine *m)
{
    if (m->state == RUN_STATE_RUNNING)
        m->state = RUN_STATE_PAUSED;
    vcpus_stop(m);
}

void machine_resume(struct machine *m)
{
    if (m->state != RUN_STATE_PAUSED)
        return;
    m->state = RUN_STATE_RUNNING;
    vcpus_go(m);
}

enum run_state machine_run_state(struct machine *m) { return m->state; }

void machine_request_quit(struct machine *m)
{
    m->exit_reason = MACHINE_EXIT_QUIT;
    ml_quit(m->ml);
}

static void machine_poweroff(void *opaque)
{
    struct machine *m = opaque;
    if (m->cfg.no_shutdown) {
        m->state = RUN_STATE_SHUTDOWN;
        vcpus_stop(m);
        return;
    }
    m->exit_reason = MACHINE_EXIT_POWEROFF;
    ml_quit(m->ml);
}

void machine_request_powerdown(struct machine *m)
{
    acpi_pm_power_button(m->pm);
}

/* ---- reset ---- */

static int board_load_firmware(struct machine *m, struct error *err);

static void board_reset_devices(struct machine *m)
{
    pic_reset(m->pic);
    pit_reset(m->pit);
    rtc_reset(m->rtc);
    ioapic_reset(m->ioapic);
    acpi_pm_reset(m->pm);
    for (int i = 0; i < 4; i++)
        if (m->serial[i])
            serial_reset(m->serial[i]);
    if (m->kbd)
        i8042_reset(m->kbd);
    m->port92 = 0;
    if (m->pci)
        pci_bus_reset(m->pci);
    for (int i = 0; i < m->ncpus; i++)
        apic_reset(apic_bus_cpu(m->apics, i), i == 0);
}

/* Loop thread, device lock held. */
static void machine_do_reset(void *opaque)
{
    struct machine *m = opaque;
    atomic_store(&m->reset_queued, false);
    bool was_running = m->state == RUN_STATE_RUNNING;
    vcpus_stop(m);
    vcpus_wait_parked(m);
    board_reset_devices(m);
    struct error err = {0};
    if (board_load_firmware(m, &err) < 0) {
        error_report("system reset: %s", err.msg);
        m->exit_reason = MACHINE_EXIT_ERROR;
        ml_quit(m->ml);
        return;
    }
    if (m->state == RUN_STATE_SHUTDOWN)
        m->state = RUN_STATE_PAUSED;
    if (was_running)
        vcpus_go(m);
}

void machine_request_reset(struct machine *m)
{
    if (m->cfg.no_reboot) {
        m->exit_reason = MACHINE_EXIT_QUIT;
        ml_quit(m->ml);
        return;
    }
    if (!atomic_exchange(&m->reset_queued, true))
        ml_call(m->ml, machine_do_reset, m);
}

static void machine_reset_cb(void *opaque) { machine_request_reset(opaque); }

static void machine_triple_fault(void *opaque, int cpu)
{
    struct machine *m = opaque;
    if (m->cfg.log_mask & (X86_LOG_CPU_RESET | X86_LOG_GUEST_ERRORS))
        error_report("CPU %d: triple fault, resetting the machine", cpu);
    machine_request_reset(m);
}

/* ---- board-level ports ---- */

/* Port 0x92, system control port A: bit 0 pulses reset, bit 1 is A20
 * (always on here). */
static uint64_t port92_read(void *opaque, uint64_t off, unsigned size)
{
    struct machine *m = opaque;
    return m->port92 | 2;
}

static void port92_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct machine *m = opaque;
    if ((val & 1) && !(m->port92 & 1))
        machine_request_reset(m);
    m->port92 = val & ~1;
}

/* Device writes to 0xFEExxxxx are MSIs. */
static uint64_t msi_read(void *opaque, uint64_t off, unsigned size) { return 0; }

static void msi_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
    struct machine *m = opaque;
    apic_bus_msi(m->apics, APIC_DEFAULT_BASE + off, (uint32_t)val);
}

static const struct mem_ops port92_ops = { port92_read, port92_write };
static const struct mem_ops msi_ops = { msi_read, msi_write };

/* ---- interrupt plumbing ---- */

static void pic_notify(void *opaque, int level)
{
    struct machine *m = opaque;
    apic_bus_pic_intr(m->apics, level);
}

static int pic_ack_cb(void *opaque) { return pic_ack(opaque); }
static bool pic_pending_cb(void *opaque) { return pic_pending(opaque); }

static void apic_kick_cb(void *opaque, unsigned events)
{
    struct vcpu *v = opaque;
    if (v->m->accel)
        v->m->aops->vcpu_kick(v->m->accel, v->index, events);
}

static void apic_sipi_cb(void *opaque, uint8_t vector)
{
    struct vcpu *v = opaque;
    if (v->m->accel)
        v->m->aops->vcpu_sipi(v->m->accel, v->index, vector);
}

static const struct apic_cpu_ops apic_ops = { apic_kick_cb, apic_sipi_cb };

static struct irq isa_irq(struct machine *m, int n) { return irqchip_line(&m->irqchip.chip, n); }

/* ---- boot ---- */

static struct x86_seg seg64(uint16_t sel, bool code)
{
    /* VMX attribute layout: type S DPL P ... L D/B G. */
    uint16_t attr = code ? (0xb | 1 << 4 | 1 << 7 | 1 << 13 | 1 << 15)
                         : (0x3 | 1 << 4 | 1 << 7 | 1 << 14 | 1 << 15);
    return (struct x86_seg){ .sel = sel, .base = 0, .limit = 0xffffffff, .attr = attr };
}

static void boot_regs_linux(struct machine *m, const struct linux_entry *e)
{
    struct x86_regs r;
    m->aops->get_regs(m->accel, 0, &r);
    memset(r.gpr, 0, sizeof(r.gpr));
    r.gpr[6] = e->rsi;                           /* RSI: boot_params */
    r.gpr[4] = e->rsp;
    r.rip = e->rip;
    r.rflags = 0x2;
    r.cs = seg64(0x10, true);
    r.ds = r.es = r.ss = r.fs = r.gs = seg64(0x18, false);
    r.tr = (struct x86_seg){ .sel = 0, .base = 0, .limit = 0xffff, .attr = 0x8b };
    r.ldtr = (struct x86_seg){ .sel = 0, .base = 0, .limit = 0xffff, .attr = 0x82 };
    r.gdt_base = e->gdt_base;
    r.gdt_limit = e->gdt_limit;
    r.idt_base = 0;
    r.idt_limit = 0;
    r.cr0 = 0x80050033;                          /* PG WP NE ET MP PE */
    r.cr3 = e->cr3;
    r.cr4 = 0x20;                                /* PAE */
    r.efer = 0x500;                              /* LME LMA */
    r.cr8 = 0;
    r.halted = false;
    r.wait_for_sipi = false;
    m->aops->set_regs(m->accel, 0, &r);
}

/* Everything firmware would do before handing over: tables, CPU state. */
static int board_load_firmware(struct machine *m, struct error *err)
{
    for (int i = 0; i < m->ncpus; i++)
        m->aops->vcpu_reset(m->accel, i, i == 0);
    apic_setup_virtual_wire(apic_bus_cpu(m->apics, 0));

    uint8_t *tables = calloc(1, PC_ACPI_SIZE);
    if (!tables)
        return error_set(err, -ENOMEM, "out of memory");
    uint8_t *aml = malloc(8192);
    int an = m->pci && aml ? pci_acpi_dsdt(m->pci, aml, 8192) : 0;
    struct acpi_config ac = { .ncpus = m->ncpus, .dsdt_extra = an > 0 ? aml : NULL,
                              .dsdt_extra_len = an > 0 ? an : 0 };
    int n = acpi_build(tables, PC_ACPI_SIZE, PC_BIOS_START, &ac);
    if (n > 0)
        as_rw(m->mem, PC_BIOS_START, tables, n, true);
    free(tables);
    free(aml);
    if (n < 0)
        return error_set(err, n, "ACPI tables do not fit");
    m->lb.acpi_rsdp = PC_BIOS_START;

    if (!m->have_kernel)
        return 0;                                /* idles in the ROM's hlt loop */
    struct linux_entry e;
    int ret = linux_boot_load(&m->lb, m->mem, m->below_4g, &m->e820, &e, err);
    if (ret < 0)
        return ret;
    if (m->cfg.log_mask & X86_LOG_CPU_RESET)
        error_report("kernel: %s", m->lb.how);
    boot_regs_linux(m, &e);
    return 0;
}

/* ---- creation ---- */

static int board_ram(struct machine *m, struct error *err)
{
    m->ram = mmap(NULL, m->ram_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->ram == MAP_FAILED) {
        m->ram = NULL;
        return error_set_errno(err, -errno, "cannot allocate %llu MiB of guest RAM",
                               (unsigned long long)(m->ram_size >> 20));
    }
    madvise(m->ram, m->ram_size, MADV_HUGEPAGE);
    e820_split_ram(m->ram_size, &m->below_4g, &m->above_4g);
    int ret = as_add_ram(m->mem, 0, m->below_4g, m->ram, "pc.ram");
    if (!ret && m->above_4g)
        ret = as_add_ram(m->mem, PC_4G, m->above_4g, m->ram + m->below_4g, "pc.ram-high");
    /* A reset-vector ROM: with no kernel the CPU idles instead of running
     * unassigned space. cli; hlt; jmp $-1 */
    m->rom = aligned_alloc(4096, PC_ROM_SIZE);   /* page-aligned: KVM maps it as a slot */
    if (!m->rom)
        return error_set(err, -ENOMEM, "out of memory");
    memset(m->rom, 0, PC_ROM_SIZE);
    static const uint8_t idle[] = { 0xfa, 0xf4, 0xeb, 0xfd };
    memcpy(m->rom + 0xfff0, idle, sizeof(idle));
    if (!ret)
        ret = as_add_ram(m->mem, PC_ROM_BASE, PC_ROM_SIZE, m->rom, "pc.bios");
    e820_build_pc(&m->e820, m->below_4g, m->above_4g);
    return ret < 0 ? error_set_errno(err, ret, "cannot map guest RAM") : 0;
}

/* PCI after the ACPI PM block: the host bridge's 0xCF8 dword covers 0xCF9. */
static int board_pci(struct machine *m, struct error *err)
{
    m->pci = pci_bus_new(m->mem, m->io, &m->irqchip.chip, m->ml);
    if (!m->pci)
        return error_set(err, -ENOMEM, "cannot create the PCI bus");
    uint64_t high = (PC_4G + m->above_4g + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);
    pci_bus_set_high_window(m->pci, high, 32ULL << 30);
    int r = pci_board_populate(m->pci, m->ml, m->cfg.pci, err);
    if (r < 0)
        return r;
    pci_bus_reset(m->pci);                       /* firmware's BAR placement */
    return 0;
}

static int board_devices(struct machine *m, struct error *err)
{
    m->apics = apic_bus_new(m->ml);
    m->vcpus = calloc(m->ncpus, sizeof(*m->vcpus));
    if (!m->apics || !m->vcpus)
        return error_set(err, -ENOMEM, "out of memory");
    for (int i = 0; i < m->ncpus; i++) {
        m->vcpus[i] = (struct vcpu){ .m = m, .index = i };
        if (!apic_new(m->apics, i, &apic_ops, &m->vcpus[i]))
            return error_set(err, -ENOMEM, "cannot create local APIC %d", i);
    }
    m->pic = pic_new(m->io, pic_notify, m);
    m->ioapic = ioapic_new(m->mem, m->apics);
    if (!m->pic || !m->ioapic)
        return error_set(err, -ENOMEM, "out of memory");
    apic_bus_set_pic(m->apics, pic_ack_cb, pic_pending_cb, m->pic);
    pc_irqchip_init(&m->irqchip, m->pic, m->ioapic, m->apics);
    as_add_io(m->mem, APIC_DEFAULT_BASE, 0x100000, &msi_ops, m, "apic-msi", 1);

    static const struct acpi_pm_ops pm_ops = { machine_poweroff, machine_reset_cb };
    m->pit = pit_new(m->io, m->ml, isa_irq(m, 0));
    m->rtc = rtc_new(m->io, m->ml, isa_irq(m, 8));
    m->pm = acpi_pm_new(m->io, isa_irq(m, ACPI_SCI_IRQ), &pm_ops, m);
    if (!m->pit || !m->rtc || !m->pm)
        return error_set(err, -ENOMEM, "out of memory");
    rtc_set_mem_size(m->rtc, m->below_4g, m->above_4g);
    rtc_set_cmos(m->rtc, 0x5f, m->ncpus - 1);

    static const struct { uint16_t base; int irq; } com[4] = {
        { 0x3f8, 4 }, { 0x2f8, 3 }, { 0x3e8, 4 }, { 0x2e8, 3 },
    };
    for (int i = 0; i < 4; i++) {
        if (i > 0 && !m->cfg.serial[i])
            continue;                            /* COM1 is always there, like a PC */
        m->serial[i] = serial_new(m->io, com[i].base, isa_irq(m, com[i].irq), m->cfg.serial[i]);
        if (!m->serial[i])
            return error_set(err, -EINVAL, "cannot create serial port %d", i);
    }
    m->kbd = i8042_new(m->io, isa_irq(m, 1), isa_irq(m, 12), machine_reset_cb, m);
    if (!m->kbd)
        return error_set(err, -ENOMEM, "cannot create the keyboard controller");
    as_add_io(m->io, 0x92, 1, &port92_ops, m, "port92", 0);
    return board_pci(m, err);
}

static int board_accel(struct machine *m, struct error *err)
{
    switch (m->cfg.accel) {
    case ACCEL_KVM:
    case ACCEL_KVM_OR_EMU:
        m->aops = kvm_accel_select(m->cfg.accel == ACCEL_KVM_OR_EMU, err);
        if (!m->aops)
            return err && err->code ? err->code : -ENODEV;
        break;
    case ACCEL_EMU:
    default:
        m->aops = &accel_emu_ops;
    }
    struct accel_board b = {
        .ml = m->ml, .mem = m->mem, .io = m->io, .apics = m->apics, .ncpus = m->ncpus,
        .log_mask = m->cfg.log_mask, .cpu_model = m->cfg.cpu_model,
        .kernel_irqchip = m->cfg.kernel_irqchip,
        .triple_fault = machine_triple_fault, .opaque = m,
    };
    m->accel = m->aops->create(&b, err);
    return m->accel ? 0 : (err && err->code ? err->code : -EINVAL);
}

struct machine *machine_create(const struct machine_config *cfg, struct mainloop *ml,
                               struct error *err)
{
    struct machine *m = calloc(1, sizeof(*m));
    if (!m) {
        error_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    m->ml = ml;
    m->ncpus = cfg->smp > 0 ? cfg->smp : 1;
    m->ram_size = cfg->ram_size ? cfg->ram_size : 128ULL << 20;
    pthread_mutex_init(&m->run_lock, NULL);
    pthread_cond_init(&m->run_cond, NULL);
    pthread_cond_init(&m->park_cond, NULL);
    m->state = cfg->start_paused ? RUN_STATE_PAUSED : RUN_STATE_RUNNING;
    m->stop = cfg->start_paused;
    m->exit_reason = MACHINE_EXIT_QUIT;
    if (m->ncpus > 255) {
        error_set(err, -EINVAL, "-smp %d: at most 255 CPUs", m->ncpus);
        free(m);
        return NULL;
    }
    if (m->ram_size < (2ULL << 20)) {
        error_set(err, -EINVAL, "-m: at least 2 MiB of RAM needed");
        free(m);
        return NULL;
    }
    m->mem = as_new("memory", ml);
    m->io = as_new("io", ml);
    int ret = !m->mem || !m->io ? error_set(err, -ENOMEM, "out of memory") : 0;
    if (!ret && cfg->kernel) {
        ret = linux_boot_open(&m->lb, cfg->kernel, cfg->initrd, cfg->append, err);
        m->have_kernel = ret == 0;
    } else if (!ret && cfg->initrd) {
        ret = error_set(err, -EINVAL, "-initrd only works with -kernel");
    }
    if (!ret)
        ret = board_ram(m, err);
    if (!ret)
        ret = board_devices(m, err);
    if (!ret)
        ret = board_accel(m, err);
    if (!ret) {
        ml_lock(ml);
        ret = board_load_firmware(m, err);
        ml_unlock(ml);
    }
    if (ret < 0) {
        machine_free(m);
        return NULL;
    }
    return m;
}

static void vcpus_join(struct machine *m)
{
    pthread_mutex_lock(&m->run_lock);
    m->quit = true;
    pthread_cond_broadcast(&m->run_cond);
    pthread_mutex_unlock(&m->run_lock);
    for (int i = 0; m->vcpus && i < m->ncpus; i++) {
        if (!m->vcpus[i].started)
            continue;
        m->aops->vcpu_exit(m->accel, i);
        pthread_join(m->vcpus[i].thread, NULL);
        m->vcpus[i].started = false;
    }
}

enum machine_exit machine_run(struct machine *m)
{
    for (int i = 0; i < m->ncpus; i++) {
        struct vcpu *v = &m->vcpus[i];
        if (pthread_create(&v->thread, NULL, vcpu_thread, v) != 0) {
            error_report("cannot start vCPU thread %d", i);
            vcpus_join(m);
            return MACHINE_EXIT_ERROR;
        }
        v->started = true;
    }
    ml_run(m->ml);
    vcpus_join(m);
    return m->exit_reason;
}

void machine_free(struct machine *m)
{
    if (!m)
        return;
    vcpus_join(m);
    if (m->accel)
        m->aops->destroy(m->accel);
    pci_bus_free(m->pci);
    for (int i = 0; i < 4; i++)
        serial_free(m->serial[i]);
    i8042_free(m->kbd);
    pit_free(m->pit);
    rtc_free(m->rtc);
    acpi_pm_free(m->pm);
    ioapic_free(m->ioapic);
    pic_free(m->pic);
    apic_bus_free(m->apics);
    as_free(m->mem);
    as_free(m->io);
    if (m->ram)
        munmap(m->ram, m->ram_size);
    free(m->rom);
    free(m->vcpus);
    linux_boot_close(&m->lb);
    free(m);
}

/* ---- inspection ---- */

int machine_cpu_count(struct machine *m) { return m->ncpus; }
struct address_space *machine_memory(struct machine *m) { return m->mem; }
struct address_space *machine_io(struct machine *m) { return m->io; }

int machine_format_pci(struct machine *m, char *buf, int len)
{
    return m->pci ? pci_bus_format_info(m->pci, buf, len) : 0;
}

static uint32_t seg_flags(const struct x86_seg *s)
{
    return ((uint32_t)(s->attr & 0xff) << 8) | ((uint32_t)((s->attr >> 12) & 0xf) << 20);
}

static int fmt_seg(char *buf, int len, const char *name, const struct x86_seg *s)
{
    return snprintf(buf, len, "%-3s=%04x %016llx %08x %08x\n", name, s->sel,
                    (unsigned long long)s->base, s->limit, seg_flags(s));
}

int machine_format_cpu_regs(struct machine *m, int i, char *buf, int len)
{
    if (i < 0 || i >= m->ncpus)
        return -EINVAL;
    struct x86_regs r;
    m->aops->get_regs(m->accel, i, &r);
    static const char *const gn[16] = { "RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "RSP",
                                        "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15" };
    static const int gi[16] = { 0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15 };
    int n = 0;
#define OUT(...) do { if (n < len) n += snprintf(buf + n, len - n, __VA_ARGS__); } while (0)
    for (int k = 0; k < 16; k++)
        OUT("%-3s=%016llx%s", gn[k], (unsigned long long)r.gpr[gi[k]], k % 4 == 3 ? "\n" : " ");
    int cpl = r.cs.attr >> 5 & 3;
    OUT("RIP=%016llx RFL=%08llx [%c%c%c%c%c%c%c] CPL=%d II=0 A20=1 SMM=0 HLT=%d\n",
        (unsigned long long)r.rip, (unsigned long long)r.rflags,
        r.rflags & 0x800 ? 'O' : '-', r.rflags & 0x400 ? 'D' : '-', r.rflags & 0x80 ? 'S' : '-',
        r.rflags & 0x40 ? 'Z' : '-', r.rflags & 0x10 ? 'A' : '-', r.rflags & 0x4 ? 'P' : '-',
        r.rflags & 0x1 ? 'C' : '-', cpl, r.halted);
    const struct { const char *n; const struct x86_seg *s; } segs[] = {
        { "ES", &r.es }, { "CS", &r.cs }, { "SS", &r.ss }, { "DS", &r.ds }, { "FS", &r.fs },
        { "GS", &r.gs }, { "LDT", &r.ldtr }, { "TR", &r.tr },
    };
    for (unsigned k = 0; k < sizeof(segs) / sizeof(segs[0]); k++)
        if (n < len)
            n += fmt_seg(buf + n, len - n, segs[k].n, segs[k].s);
    OUT("GDT=     %016llx %08x\n", (unsigned long long)r.gdt_base, r.gdt_limit);
    OUT("IDT=     %016llx %08x\n", (unsigned long long)r.idt_base, r.idt_limit);
    OUT("CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx\n", (unsigned long long)r.cr0,
        (unsigned long long)r.cr2, (unsigned long long)r.cr3, (unsigned long long)r.cr4);
    OUT("DR0=%016llx DR1=%016llx DR2=%016llx DR3=%016llx\n", (unsigned long long)r.dr[0],
        (unsigned long long)r.dr[1], (unsigned long long)r.dr[2], (unsigned long long)r.dr[3]);
    OUT("DR6=%016llx DR7=%016llx\n", (unsigned long long)r.dr[6], (unsigned long long)r.dr[7]);
    OUT("EFER=%016llx\n", (unsigned long long)r.efer);
#undef OUT
    return n < len ? n : len - 1;
}

int machine_format_cpus(struct machine *m, char *buf, int len)
{
    int n = 0;
    for (int i = 0; i < m->ncpus && n < len; i++) {
        struct x86_regs r;
        m->aops->get_regs(m->accel, i, &r);
        n += snprintf(buf + n, len - n, "%c CPU #%d: pc=0x%016llx%s thread_id=%d\n",
                      i == 0 ? '*' : ' ', i, (unsigned long long)(r.cs.base + r.rip),
                      r.halted ? " (halted)" : "", atomic_load(&m->vcpus[i].tid));
    }
    return n < len ? n : len - 1;
}

int machine_read_phys(struct machine *m, uint64_t pa, void *buf, uint64_t len)
{
    return as_rw(m->mem, pa, buf, len, false);
}

int machine_read_virt(struct machine *m, int cpu, uint64_t va, void *buf, uint64_t len)
{
    if (cpu < 0 || cpu >= m->ncpus)
        return -EINVAL;
    uint8_t *p = buf;
    while (len) {
        uint64_t pa, chunk = 4096 - (va & 4095);
        if (chunk > len)
            chunk = len;
        if (m->aops->translate(m->accel, cpu, va, &pa) < 0)
            return -EFAULT;
        int r = as_rw(m->mem, pa, p, chunk, false);
        if (r < 0)
            return r;
        p += chunk;
        va += chunk;
        len -= chunk;
    }
    return 0;
}
