/* Monitor internals: the command table shared by the HMP front end
 * (hmp.c) and, later, QMP. A command names its arguments with a small
 * spec string, as QEMU's command tables do:
 *   "name:t"   argument `name` of type t;  "name:t?" optional
 *   t = s (one word), S (rest of the line), l (number expression),
 *       / (x/xp format /Nfu: count, format, unit)
 * Handlers print with mon_printf and never touch device internals. */
#ifndef QUOKKA_MONITOR_MONITOR_INT_H
#define QUOKKA_MONITOR_MONITOR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include "monitor/monitor.h"

struct mon_arg {
    const char *name;
    bool present;
    const char *str;            /* s, S */
    uint64_t num;               /* l */
    int count;                  /* / */
    char format, unit;          /* /: 'x' 'd' 'u' 'o' 'c';  unit size 1, 2, 4, 8 */
};

struct mon_args {
    struct mon_arg v[4];
    int n;
};

struct mon_cmd {
    const char *name;           /* "stop", or "info status" for info subcommands */
    const char *args;
    const char *params;         /* usage shown by help */
    const char *help;
    void (*run)(struct monitor *mon, const struct mon_args *a);
};

extern const struct mon_cmd mon_cmds[];

struct monitor {
    struct machine *m;
    struct chardev *chr;
    char line[1024];
    int len;
    bool last_cr;               /* swallow the \n of a \r\n */
    int esc;                    /* inside an escape sequence (arrow keys) */
    char hist[16][256];         /* recent lines, newest at (hist_n - 1) % 16 */
    int hist_n, hist_pos;       /* lines stored; up/down position */
    bool focused, banner_shown;
    bool prelaunch;             /* -S and never continued */
    int cpu;                    /* current CPU for info registers, x */
    char last_format;
    int last_unit;
};

void mon_printf(struct monitor *mon, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const struct mon_arg *mon_arg(const struct mon_args *a, const char *name);
/* Run one command line; used by HMP and by tests. */
void mon_execute(struct monitor *mon, const char *line);
void mon_help(struct monitor *mon, const char *prefix);

#endif
