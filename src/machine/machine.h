/* The PC board: what the command line describes and what runs it.
 *
 * cli/ turns options into a `struct machine_config` (plain data, no
 * globals); machine_create() builds the board (RAM, devices, firmware
 * tables, boot code) on the chosen accelerator; machine_run() starts the
 * vCPU threads and runs the event loop until the guest (or the monitor)
 * ends it. The monitor drives a running machine through the functions
 * below, never through device internals. */
#ifndef QUOKKA_MACHINE_MACHINE_H
#define QUOKKA_MACHINE_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include "util/error.h"

struct mainloop;
struct chardev;
struct address_space;
struct machine;
struct pci_board_config;

enum accel_kind { ACCEL_EMU, ACCEL_KVM, ACCEL_KVM_OR_EMU };

struct machine_config {
    const char *name;               /* -name */
    uint64_t ram_size;              /* -m, bytes */
    int smp;                        /* -smp */
    enum accel_kind accel;
    const char *cpu_model;          /* -cpu, NULL for the default */
    const char *kernel_irqchip;     /* -accel kvm,kernel-irqchip=, NULL for the default */
    const char *kernel, *initrd, *append;
    bool no_reboot, no_shutdown;
    bool start_paused;              /* -S */
    unsigned log_mask;              /* -d, X86_LOG_* bits */
    struct chardev *serial[4];      /* COM1..COM4, NULL if absent */
    struct pci_board_config *pci;   /* -drive/-device (hw/pci/pci-board.h), NULL if none */
};

/* Why machine_run() returned. */
enum machine_exit { MACHINE_EXIT_POWEROFF, MACHINE_EXIT_QUIT, MACHINE_EXIT_ERROR };

enum run_state { RUN_STATE_RUNNING, RUN_STATE_PAUSED, RUN_STATE_SHUTDOWN, RUN_STATE_GUEST_PANICKED };

struct machine *machine_create(const struct machine_config *cfg, struct mainloop *ml,
                               struct error *err);
void machine_free(struct machine *m);
/* Start vCPUs (unless start_paused) and run the event loop in this thread. */
enum machine_exit machine_run(struct machine *m);

/* Control, callable from the monitor (event loop thread, device lock held). */
void machine_pause(struct machine *m);          /* stop: all vCPUs parked */
void machine_resume(struct machine *m);         /* cont */
void machine_request_reset(struct machine *m);  /* system_reset */
void machine_request_powerdown(struct machine *m); /* ACPI power button */
void machine_request_quit(struct machine *m);   /* quit */
enum run_state machine_run_state(struct machine *m);

/* Inspection for the monitor. */
int machine_cpu_count(struct machine *m);
struct address_space *machine_memory(struct machine *m);
struct address_space *machine_io(struct machine *m);
/* `info pci` text (hw/pci/pci.h's pci_bus_format_info). */
int machine_format_pci(struct machine *m, char *buf, int len);
/* Formatted like QEMU's `info registers` for CPU index i into buf. */
int machine_format_cpu_regs(struct machine *m, int i, char *buf, int len);
/* One line per CPU: "* CPU #0: pc=0x... (halted) thread_id=N". */
int machine_format_cpus(struct machine *m, char *buf, int len);
/* Guest-virtual (CPU i's paging) or physical read, for `x`/`xp`. */
int machine_read_virt(struct machine *m, int cpu, uint64_t va, void *buf, uint64_t len);
int machine_read_phys(struct machine *m, uint64_t pa, void *buf, uint64_t len);

#endif
