/* -device NAME,key=value...: checked here (help, known model), built by
 * the board (hw/pci/pci-board.c) once the PCI bus exists. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/drive.h"
#include "hw/pci/pci-board.h"
#include "util/opts.h"

int cli_opt_device(struct cli *c, const char *arg, struct error *err)
{
    if (!strcmp(arg, "help") || !strcmp(arg, "?")) {
        pci_board_list_models(stdout);
        return 1;
    }
    struct opts o;
    if (opts_parse(&o, arg, "driver", err) < 0)
        return -EINVAL;
    const char *drv = opts_get(&o, "driver");
    bool help = false;
    for (int i = 0; i < o.n; i++)
        if (!strcmp(o.v[i].key, "help") || !strcmp(o.v[i].key, "?"))
            help = true;
    int r = 0;
    if (!drv)
        r = error_set(err, -EINVAL, "Parameter 'driver' is missing");
    else if (!pci_board_model_known(drv))
        r = error_set(err, -EINVAL, "'%s' is not a valid device model name", drv);
    else if (help)
        r = pci_board_model_help(drv, stdout) == 0 ? 1 : -ENOENT;
    opts_free(&o);
    if (r)
        return r;
    if (!c->cfg.pci && !(c->cfg.pci = calloc(1, sizeof(*c->cfg.pci))))
        return error_set(err, -ENOMEM, "out of memory");
    struct pci_board_config *b = c->cfg.pci;
    if (b->n_devices == PCI_BOARD_MAX_DEVICES)
        return error_set(err, -ENOSPC, "too many -device options");
    b->devices[b->n_devices++] = (struct device_config){ strdup(arg), -1 };
    return 0;
}
