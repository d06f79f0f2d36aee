/* PCI: one bus 0 behind an i440FX-like host bridge (configuration
 * mechanism #1 at 0xCF8/0xCFC), functions with a 256-byte config space,
 * BARs mapped into the memory and I/O address spaces as the guest programs
 * them, INTx lines swizzled onto I/O APIC GSIs 16-23 and MSI-X tables whose
 * messages go through irqchip->send_msi.
 *
 * With no firmware in front of the kernel, pci_bus_reset() plays the BIOS:
 * it places every BAR (I/O from 0xC000, 32-bit memory in the PCI hole,
 * 64-bit memory in the hole too while it fits, above 4 GiB otherwise),
 * enables decoding and bus mastering and fills the interrupt line.
 * Everything runs with the device lock held. */
#ifndef QUOKKA_HW_PCI_PCI_H
#define QUOKKA_HW_PCI_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hw/memory.h"
#include "util/error.h"

struct irqchip;
struct mainloop;
struct pci_bus;
struct msix;

#define PCI_CFG_SIZE 256
#define PCI_MAX_DEV 32
#define PCI_GSI_BASE 16
#define PCI_GSI_COUNT 8

/* Config space offsets and bits we use. */
enum {
    PCI_VENDOR_ID = 0x00, PCI_DEVICE_ID = 0x02, PCI_COMMAND = 0x04, PCI_STATUS = 0x06,
    PCI_REVISION = 0x08, PCI_CLASS_PROG = 0x09, PCI_HEADER_TYPE = 0x0e, PCI_BAR0 = 0x10,
    PCI_SUBSYS_VENDOR = 0x2c, PCI_SUBSYS_ID = 0x2e, PCI_CAP_PTR = 0x34,
    PCI_INT_LINE = 0x3c, PCI_INT_PIN = 0x3d,
};
enum {
    PCI_CMD_IO = 1 << 0, PCI_CMD_MEM = 1 << 1, PCI_CMD_MASTER = 1 << 2,
    PCI_CMD_INTX_DISABLE = 1 << 10,
    PCI_STATUS_INTX = 1 << 3, PCI_STATUS_CAPS = 1 << 4,
};
enum { PCI_CAP_MSIX = 0x11, PCI_CAP_VENDOR = 0x09 };

/* BAR kinds. */
enum { PCI_BAR_MEM32 = 0, PCI_BAR_IO = 1, PCI_BAR_MEM64 = 2, PCI_BAR_PREFETCH = 4 };

struct pci_bar {
    uint64_t size;                /* 0: BAR unused; else a power of two */
    int kind;                     /* PCI_BAR_* */
    const struct mem_ops *ops;
    void *opaque;
    uint64_t mapped_at;           /* valid while mapped */
    bool mapped;
};

struct pci_dev;

/* What a function's model adds to the generic config space handling. */
struct pci_dev_ops {
    /* After the generic write of config bytes [off, off+size). May be NULL. */
    void (*config_write)(struct pci_dev *d, unsigned off, uint32_t val, unsigned size);
    /* Bus reset (system reset): put the model back in its power-on state. */
    void (*reset)(struct pci_dev *d);
    void (*free)(struct pci_dev *d);
};

struct pci_dev {
    struct pci_bus *bus;
    uint8_t devfn;
    char name[32];                /* model, e.g. "virtio-blk-pci" */
    char id[32];                  /* -device id=, may be empty */
    uint8_t cfg[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE];  /* bits the guest may change */
    uint8_t w1c[PCI_CFG_SIZE];    /* bits a guest write of 1 clears */
    uint8_t cap_end;              /* next free config offset for capabilities */
    struct pci_bar bar[6];
    int intx_level;               /* what the model drives */
    bool intx_asserted;           /* what reaches the GSI (after INTX_DISABLE) */
    struct msix *msix;
    const struct pci_dev_ops *ops;
    void *opaque;                 /* the model's state */
};

struct pci_bus *pci_bus_new(struct address_space *mem, struct address_space *io,
                            struct irqchip *chip, struct mainloop *ml);
void pci_bus_free(struct pci_bus *bus);
/* Reset every function, then place BARs as firmware would. */
void pci_bus_reset(struct pci_bus *bus);
struct address_space *pci_bus_mem(struct pci_bus *bus);
struct mainloop *pci_bus_mainloop(struct pci_bus *bus);
/* Bounds of the 32-bit and 64-bit MMIO windows (for ACPI and tests). */
void pci_bus_windows(struct pci_bus *bus, uint64_t *w32_base, uint64_t *w32_end,
                     uint64_t *w64_base, uint64_t *w64_end);
/* Where 64-bit BARs go once the 32-bit hole is full (above RAM). */
void pci_bus_set_high_window(struct pci_bus *bus, uint64_t base, uint64_t size);

/* Add a function at devfn (slot << 3 | fn), or the first free slot if
 * devfn < 0. Identity words are the config header's. */
struct pci_dev *pci_dev_new(struct pci_bus *bus, int devfn, const char *name,
                            uint16_t vendor, uint16_t device, uint32_t class_code,
                            uint8_t revision, struct error *err);
struct pci_dev *pci_bus_find(struct pci_bus *bus, int devfn);
/* Declare BAR i (size a power of two, >= 16 for memory, >= 4 for I/O).
 * A 64-bit BAR also takes register i+1. */
int pci_dev_set_bar(struct pci_dev *d, int i, uint64_t size, int kind,
                    const struct mem_ops *ops, void *opaque);
/* Append a capability of len bytes (id and next pointer included);
 * returns its config offset, or -ENOSPC. */
int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len);
/* INTx: the model's level for its pin (INTA unless set otherwise). */
void pci_dev_set_irq(struct pci_dev *d, int level);
unsigned pci_dev_gsi(const struct pci_dev *d);
bool pci_dev_bus_master(const struct pci_dev *d);

/* Config cycles, as the host bridge issues them (tests call them too). */
uint32_t pci_config_read(struct pci_dev *d, unsigned off, unsigned size);
void pci_config_write(struct pci_dev *d, unsigned off, uint32_t val, unsigned size);

/* MSI-X with nvec vectors in BAR bar_index (4 KiB: table at 0, PBA at 2 KiB). */
int msix_init(struct pci_dev *d, int nvec, int bar_index);
bool msix_enabled(const struct pci_dev *d);
/* Signal vector v: sent now, or left pending while masked. Returns false
 * if MSI-X is off (the caller falls back to INTx) or v is out of range. */
bool msix_notify(struct pci_dev *d, unsigned v);
int msix_vectors(const struct pci_dev *d);
/* Vector v's message, true if it may be sent now (MSI-X on, v in range
 * and not masked); for models that hand it to an irqfd. */
bool msix_message(const struct pci_dev *d, unsigned v, uint64_t *addr, uint32_t *data);
void msix_free(struct msix *m);
void msix_reset(struct pci_dev *d);
/* pci.c tells msix.c about config writes (the enable and mask bits). */
void msix_config_written(struct pci_dev *d, unsigned off, unsigned size);
struct irqchip *pci_bus_irqchip(struct pci_bus *bus);

/* `info pci` text. Returns the length written (truncated to len - 1). */
int pci_bus_format_info(struct pci_bus *bus, char *buf, int len);

/* AML for the DSDT: Device(\_SB.PCI0) with _HID/_CID/_ADR/_UID, _CRS (bus
 * 0, I/O and both MMIO windows) and _PRT mapping every slot's INTA-D to
 * its GSI. Returns bytes written, or -ENOSPC. */
int pci_acpi_dsdt(struct pci_bus *bus, uint8_t *buf, size_t len);

#endif
