/* The PCI devices the command line asks for (-drive, -device, -hda...),
 * as plain data the cli fills and the board instantiates with
 * pci_board_populate() once the bus exists. */
#ifndef QUOKKA_HW_PCI_PCI_BOARD_H
#define QUOKKA_HW_PCI_PCI_BOARD_H

#include <stdbool.h>
#include <stdio.h>
#include "util/error.h"

struct pci_bus;
struct mainloop;

enum drive_if { DRIVE_IF_NONE, DRIVE_IF_VIRTIO };

struct drive_config {
    char *spec;                   /* "-drive file=..." as given, for messages */
    char *id;                     /* id= / node-name= (NULL: anonymous) */
    char *file, *format;          /* format NULL: probe */
    enum drive_if iface;
    int flags;                    /* BDEV_O_* (cache, aio, locking) */
    bool read_only, snapshot, discard_unmap;
    int detect_zeroes;            /* VBLK_DZ_* */
    char *serial;
    bool claimed;                 /* a device uses it */
};

#define PCI_BOARD_MAX_DRIVES 32
#define PCI_BOARD_MAX_DEVICES 64

/* One PCI device to create, in command-line order (which is the guest's
 * enumeration order, so if=virtio drives and -device interleave as given). */
struct device_config {
    char *spec;                   /* -device option string, or NULL for: */
    int drive;                    /* the if=virtio drive at this index */
};

struct pci_board_config {
    struct drive_config drives[PCI_BOARD_MAX_DRIVES];
    int n_drives;
    struct device_config devices[PCI_BOARD_MAX_DEVICES];
    int n_devices;
    bool snapshot;                /* -snapshot: every drive snapshot=on */
};

/* Create the devices in order. Errors name the option that asked for the
 * device (the -drive for if=virtio disks). */
int pci_board_populate(struct pci_bus *bus, struct mainloop *ml, struct pci_board_config *cfg,
                       struct error *err);

/* -device help, -device NAME,help. */
void pci_board_list_models(FILE *out);
int pci_board_model_help(const char *name, FILE *out);   /* -ENOENT if unknown */
bool pci_board_model_known(const char *name);

#endif
