/* HMP front end: line editing on the chardev, splitting a line into a
 * command from mon_cmds and its arguments, and dispatch. */
#include "monitor/monitor_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chardev/chardev.h"
#include "machine/machine.h"
#include "util/version.h"

#define PROMPT "(quokka) "

void mon_printf(struct monitor *mon, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 1)
        n = sizeof(buf) - 1;
    if (n > 0)
        chardev_write(mon->chr, (const uint8_t *)buf, n);
}

const struct mon_arg *mon_arg(const struct mon_args *a, const char *name)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->v[i].name, name))
            return a->v[i].present ? &a->v[i] : NULL;
    return NULL;
}

static const char *skip_space(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

/* "a+b-c" of numbers (base as in C: 0x hex, 0 octal). */
static int parse_expr(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int sign = 1;
    s = skip_space(s);
    if (!*s)
        return -EINVAL;
    while (*s) {
        char *end;
        if (!isdigit((unsigned char)*s))
            return -EINVAL;
        uint64_t t = strtoull(s, &end, 0);
        v += sign > 0 ? t : -t;
        s = skip_space(end);
        if (*s == '+' || *s == '-') {
            sign = *s == '+' ? 1 : -1;
            s = skip_space(s + 1);
            if (!*s)
                return -EINVAL;
        } else if (*s) {
            return -EINVAL;
        }
    }
    *out = v;
    return 0;
}

/* "/Nfu" as in QEMU's x command: count, then format and unit letters in
 * any order; missing parts repeat the previous command's. */
static int parse_format(struct monitor *mon, const char *s, struct mon_arg *a)
{
    a->count = 1;
    a->format = mon->last_format;
    a->unit = mon->last_unit;
    if (*s != '/')
        return 0;
    s++;
    if (isdigit((unsigned char)*s))
        a->count = strtol(s, (char **)&s, 10);
    bool unit_given = false;
    for (; *s; s++) {
        switch (*s) {
        case 'x': case 'd': case 'u': case 'o': case 'c':
            a->format = *s;
            break;
        case 'b': a->unit = 1; unit_given = true; break;
        case 'h': a->unit = 2; unit_given = true; break;
        case 'w': a->unit = 4; unit_given = true; break;
        case 'g': a->unit = 8; unit_given = true; break;
        default:
            return -EINVAL;
        }
    }
    if (a->format == 'c' && !unit_given)
        a->unit = 1;
    if (a->count <= 0 || a->count > 65536)
        return -ERANGE;
    return 0;
}

/* Next word of *p (into buf); empty when the line is done. */
static void next_word(const char **p, char *buf, size_t len)
{
    const char *s = skip_space(*p);
    size_t n = 0;
    while (*s && !isspace((unsigned char)*s)) {
        if (n + 1 < len)
            buf[n++] = *s;
        s++;
    }
    buf[n] = 0;
    *p = s;
}

static int parse_args(struct monitor *mon, const struct mon_cmd *c, const char *p,
                      struct mon_args *a, char words[][256])
{
    const char *spec = c->args;
    a->n = 0;
    while (spec && *spec) {
        struct mon_arg *arg = &a->v[a->n];
        char name[32];
        size_t nl = strcspn(spec, ":");
        snprintf(name, sizeof(name), "%.*s", (int)nl, spec);
        char type = spec[nl + 1];
        bool optional = spec[nl + 2] == '?';
        spec += nl + 2 + optional;
        if (*spec == ',')
            spec++;
        *arg = (struct mon_arg){0};
        arg->name = strdup(name);
        a->n++;
        p = skip_space(p);
        if (type == '/' && *p != '/') {
            parse_format(mon, "", arg);     /* defaults; not "present" */
            arg->present = true;
            continue;
        }
        if (type == 'S') {
            snprintf(words[a->n - 1], 256, "%s", p);
            p += strlen(p);
        } else {
            next_word(&p, words[a->n - 1], 256);
        }
        const char *w = words[a->n - 1];
        if (!*w) {
            if (optional)
                continue;
            mon_printf(mon, "%s: missing argument '%s'\n", c->name, name);
            return -EINVAL;
        }
        arg->present = true;
        arg->str = w;
        if (type == 'l' && parse_expr(w, &arg->num) < 0) {
            mon_printf(mon, "invalid expression '%s'\n", w);
            return -EINVAL;
        }
        if (type == '/' && parse_format(mon, w, arg) < 0) {
            mon_printf(mon, "invalid format '%s'\n", w);
            return -EINVAL;
        }
    }
    if (*skip_space(p)) {
        mon_printf(mon, "%s: extraneous characters at the end of line\n", c->name);
        return -EINVAL;
    }
    return 0;
}

static void free_args(struct mon_args *a)
{
    for (int i = 0; i < a->n; i++)
        free((char *)a->v[i].name);
}

static const struct mon_cmd *find_cmd(const char *name)
{
    for (const struct mon_cmd *c = mon_cmds; c->name; c++) {
        const char *n = c->name;
        size_t l = strcspn(n, "|");
        /* "quit|q": alternatives separated by '|' */
        while (1) {
            if (strlen(name) == l && !strncmp(n, name, l))
                return c;
            if (n[l] != '|')
                break;
            n += l + 1;
            l = strcspn(n, "|");
        }
    }
    return NULL;
}

void mon_execute(struct monitor *mon, const char *line)
{
    const char *p = line;
    char w1[64], w2[64], full[160];
    next_word(&p, w1, sizeof(w1));
    if (!*w1)
        return;
    char *slash = strchr(w1, '/');      /* "x/4xb addr": the format starts the args */
    if (slash) {
        p -= strlen(slash);
        *slash = 0;
    }
    const char *after_first = p;
    snprintf(full, sizeof(full), "%s", w1);
    if (!strcmp(w1, "info")) {
        next_word(&p, w2, sizeof(w2));
        if (!*w2) {
            mon_help(mon, "info ");
            return;
        }
        snprintf(full, sizeof(full), "info %s", w2);
    } else {
        p = after_first;
    }
    const struct mon_cmd *c = find_cmd(full);
    if (!c) {
        if (!strcmp(w1, "info"))
            mon_help(mon, "info ");
        else
            mon_printf(mon, "unknown command: '%s'\n", full);
        return;
    }
    struct mon_args a = {0};
    char words[4][256];
    if (parse_args(mon, c, p, &a, words) == 0)
        c->run(mon, &a);
    free_args(&a);
}

void mon_help(struct monitor *mon, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const struct mon_cmd *c = mon_cmds; c->name; c++) {
        bool is_info = !strncmp(c->name, "info ", 5);
        if (pl ? strncmp(c->name, prefix, pl) : is_info)
            continue;
        mon_printf(mon, "%s%s%s -- %s\n", c->name, *c->params ? " " : "", c->params, c->help);
    }
    if (!pl)
        mon_printf(mon, "info [subcommand] -- show various information about the system state\n");
}

static void mon_prompt(struct monitor *mon)
{
    mon_printf(mon, PROMPT);
}

static void mon_banner(struct monitor *mon)
{
    if (!mon->banner_shown)
        mon_printf(mon, "Quokka %s monitor - type 'help' for more information\n",
                   QUOKKA_VERSION);
    mon->banner_shown = true;
}

/* Replace the line being edited with a history entry (dir -1 older, +1 newer). */
static void mon_history(struct monitor *mon, int dir)
{
    int oldest = mon->hist_n > 16 ? mon->hist_n - 16 : 0;
    int pos = mon->hist_pos + dir;
    if (pos < oldest || pos > mon->hist_n)
        return;
    mon->hist_pos = pos;
    while (mon->len > 0) {
        mon->len--;
        mon_printf(mon, "\b \b");
    }
    if (pos == mon->hist_n)
        return;             /* past the newest: an empty line */
    mon->len = snprintf(mon->line, sizeof(mon->line), "%s", mon->hist[pos % 16]);
    chardev_write(mon->chr, (const uint8_t *)mon->line, mon->len);
}

static void mon_key(struct monitor *mon, uint8_t c)
{
    if (mon->esc) {             /* ESC [ x: up/down walk the history, others ignored */
        if (mon->esc == 1) {
            mon->esc = (c == '[' || c == 'O') ? 2 : 0;
        } else if (c >= 0x40 && c <= 0x7E) {
            mon->esc = 0;
            if (c == 'A' || c == 'B')
                mon_history(mon, c == 'A' ? -1 : 1);
        }
        return;
    }
    if (c == '\n' && mon->last_cr) {
        mon->last_cr = false;
        return;
    }
    mon->last_cr = c == '\r';
    switch (c) {
    case '\r': case '\n':
        mon_printf(mon, "\n");
        mon->line[mon->len] = 0;
        mon->len = 0;
        if (mon->line[0]) {
            snprintf(mon->hist[mon->hist_n % 16], sizeof(mon->hist[0]), "%s", mon->line);
            mon->hist_n++;
        }
        mon->hist_pos = mon->hist_n;
        mon_execute(mon, mon->line);
        mon_prompt(mon);
        return;
    case 0x7F: case 0x08:
        if (mon->len > 0) {
            mon->len--;
            mon_printf(mon, "\b \b");
        }
        return;
    case 0x15:                  /* Ctrl-U: kill the line */
        while (mon->len > 0) {
            mon->len--;
            mon_printf(mon, "\b \b");
        }
        return;
    case 0x1B:
        mon->esc = 1;
        return;
    }
    if (c < 0x20 || mon->len >= (int)sizeof(mon->line) - 1)
        return;
    mon->line[mon->len++] = c;
    chardev_write(mon->chr, &c, 1);
}

static int mon_can_receive(void *opaque)
{
    return 1024;
}

static void mon_receive(void *opaque, const uint8_t *buf, int len)
{
    for (int i = 0; i < len; i++)
        mon_key(opaque, buf[i]);
}

static void mon_event(void *opaque, int event)
{
    struct monitor *mon = opaque;
    switch (event) {
    case CHARDEV_OPENED:
        if (!mon->focused)
            return;
        mon->banner_shown = false;  /* each socket peer gets the banner */
        mon->len = 0;
        mon_banner(mon);
        mon_prompt(mon);
        break;
    case CHARDEV_FOCUS_IN:
        mon->focused = true;
        mon_banner(mon);
        mon_prompt(mon);
        break;
    case CHARDEV_FOCUS_OUT:
        mon->focused = false;
        break;
    }
}

struct monitor *monitor_new(struct machine *m, struct chardev *chr, struct error *err)
{
    struct monitor *mon = calloc(1, sizeof(*mon));
    if (!mon)
        return error_set(err, -ENOMEM, "out of memory"), NULL;
    mon->m = m;
    mon->chr = chr;
    mon->focused = true;
    mon->last_format = 'x';
    mon->last_unit = 4;
    mon->prelaunch = m && machine_run_state(m) == RUN_STATE_PAUSED;
    struct chardev_frontend fe = {
        .can_receive = mon_can_receive,
        .receive = mon_receive,
        .event = mon_event,
        .opaque = mon,
    };
    if (chardev_attach(chr, &fe, err) < 0) {
        free(mon);
        return NULL;
    }
    return mon;
}

void monitor_free(struct monitor *mon)
{
    free(mon);
}
