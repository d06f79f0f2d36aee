/* The quokka command line: QEMU's options, spelled as QEMU spells them,
 * turned into a `struct machine_config` plus the host-side setup around it
 * (chardevs, monitors, pidfile, daemon mode, log file). No option is ever
 * ignored: unknown ones and ones for later features are errors. */
#ifndef QUOKKA_CLI_CLI_H
#define QUOKKA_CLI_CLI_H

#include <stdbool.h>
#include "machine/machine.h"
#include "util/error.h"

#define CLI_MAX_SERIAL 4
#define CLI_MAX_MONITOR 4
#define CLI_MAX_CHARDEV 16

struct cli {
    struct machine_config cfg;
    const char *serial[CLI_MAX_SERIAL];     /* -serial specs, in order */
    int n_serial;
    const char *monitor[CLI_MAX_MONITOR];   /* -monitor specs, or "chardev:ID" from -mon */
    int n_monitor;
    const char *chardev[CLI_MAX_CHARDEV];   /* -chardev option strings */
    int n_chardev;
    bool nographic, display_none;
    bool accel_given;
    const char *pidfile, *logfile;
    bool daemonize;
    const char *process_name;               /* -name ...,process= */
    char *owned[8];                         /* strings cli_parse allocated */
    int n_owned;
};

/* Parse argv. Returns 0 to go on, 1 when the command is done (-help,
 * -version, -d help printed their text), or -errno with err set. */
int cli_parse(struct cli *c, int argc, char **argv, struct error *err);
void cli_usage(void);
/* Free what cli_parse allocated (safe on a zeroed struct). */
void cli_free(struct cli *c);

/* Checks that need the host: -m against what the host can give, -kernel
 * and -initrd readable and plausible. */
int cli_check_host(const struct cli *c, struct error *err);

/* Open -chardev, -serial and -monitor backends (QEMU's defaults applied:
 * -nographic puts serial and monitor on one mux on stdio). Fills
 * c->cfg.serial and mon[] (NULL-terminated, at most CLI_MAX_MONITOR). */
int cli_open_chardevs(struct cli *c, struct mainloop *ml, struct chardev **mon,
                      struct error *err);

/* -daemonize: fork; the parent waits until cli_daemon_ready() and exits 0,
 * or exits 1 if the child fails before that. */
int cli_daemon_start(struct error *err);
void cli_daemon_ready(void);
/* -pidfile: create and lock; removed at exit. */
int cli_write_pidfile(const char *path, struct error *err);

#endif
