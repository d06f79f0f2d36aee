/* Host side of the serial ports and monitors, with QEMU's defaults:
 * -nographic puts COM1 and the monitor on one mux on stdio (Ctrl-A c
 * switches); without it (no display exists yet) COM1 goes nowhere, like
 * QEMU's text console with no window, and there is no monitor. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "chardev/chardev.h"

static struct chardev *open_spec(struct mainloop *ml, const char *spec, const char *id,
                                 struct error *err)
{
    if (!strncmp(spec, "chardev:", 8)) {
        struct chardev *chr = chardev_find(spec + 8);
        if (!chr)
            error_set(err, -ENOENT, "chardev '%s' not found", spec + 8);
        return chr;
    }
    return chardev_new_spec(ml, spec, id, err);
}

static int add_mon(struct chardev **mon, int *n, struct chardev *chr)
{
    if (*n < CLI_MAX_MONITOR)
        mon[(*n)++] = chr;
    return 0;
}

int cli_open_chardevs(struct cli *c, struct mainloop *ml, struct chardev **mon, struct error *err)
{
    const char *serial[CLI_MAX_SERIAL], *monitor[CLI_MAX_MONITOR];
    int ns = c->n_serial, nm = c->n_monitor, nmon = 0;
    memcpy(serial, c->serial, sizeof(serial));
    memcpy(monitor, c->monitor, sizeof(monitor));
    if (ns == 0 && nm == 0 && c->nographic) {
        serial[ns++] = "mon:stdio";
    } else {
        if (ns == 0)
            serial[ns++] = c->nographic ? "stdio" : "null";
        if (nm == 0 && c->nographic)
            monitor[nm++] = "stdio";
    }
    for (int i = 0; i < c->n_chardev; i++)
        if (!chardev_new_opts(ml, c->chardev[i], err))
            return error_prepend(err, "-chardev %s: ", c->chardev[i]), err->code;
    for (int i = 0; i < ns; i++) {
        if (!strcmp(serial[i], "none"))
            continue;
        char id[16];
        snprintf(id, sizeof(id), "serial%d", i);
        struct chardev *chr = open_spec(ml, serial[i], id, err);
        if (!chr)
            return error_prepend(err, "-serial %s: ", serial[i]), err->code;
        c->cfg.serial[i] = chr;
        if (!strncmp(serial[i], "mon:", 4))
            add_mon(mon, &nmon, chr);
    }
    for (int i = 0; i < nm; i++) {
        if (!strcmp(monitor[i], "none"))
            continue;
        char id[32];
        snprintf(id, sizeof(id), "compat_monitor%d", i);
        struct chardev *chr = open_spec(ml, monitor[i], id, err);
        if (!chr)
            return error_prepend(err, "-monitor %s: ", monitor[i]), err->code;
        add_mon(mon, &nmon, chr);
    }
    mon[nmon < CLI_MAX_MONITOR ? nmon : CLI_MAX_MONITOR - 1] = NULL;
    return 0;
}
