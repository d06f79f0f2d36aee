/* The human monitor (HMP) over a chardev: a line editor, one command table
 * (commands.c) and the machine's run-control and inspection functions.
 * It runs in the event loop thread; handlers run with the device lock held. */
#ifndef QUOKKA_MONITOR_MONITOR_H
#define QUOKKA_MONITOR_MONITOR_H

#include "util/error.h"

struct chardev;
struct machine;
struct monitor;

struct monitor *monitor_new(struct machine *m, struct chardev *chr, struct error *err);
void monitor_free(struct monitor *mon);

#endif
