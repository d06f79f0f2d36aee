/* -drive, -hda/-hdb, -blockdev, -snapshot, -device and the bare image
 * argument: parsed into the board's PCI device description
 * (hw/pci/pci-board.h), which the machine instantiates. */
#ifndef QUOKKA_CLI_DRIVE_H
#define QUOKKA_CLI_DRIVE_H

#include "util/error.h"

struct cli;

int cli_opt_drive(struct cli *c, const char *arg, struct error *err);
int cli_opt_hda(struct cli *c, const char *arg, struct error *err);
int cli_opt_hdb(struct cli *c, const char *arg, struct error *err);
int cli_opt_blockdev(struct cli *c, const char *arg, struct error *err);
int cli_opt_snapshot(struct cli *c, const char *arg, struct error *err);
int cli_opt_device(struct cli *c, const char *arg, struct error *err);
/* `quokka disk.img`: the first non-option argument is -hda. */
int cli_add_image(struct cli *c, const char *file, struct error *err);

#endif
