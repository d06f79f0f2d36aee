#include "util/opts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copy one element up to an unescaped `stop` char; returns the end. */
static const char *scan_part(const char *s, char stop, char **out)
{
    size_t cap = strlen(s) + 1, n = 0;
    char *buf = malloc(cap);
    while (*s) {
        if (*s == ',') {
            if (s[1] != ',')
                break;
            s++;                    /* ",," -> "," */
        } else if (*s == stop) {
            break;
        }
        buf[n++] = *s++;
    }
    buf[n] = 0;
    *out = buf;
    return s;
}

int opts_parse(struct opts *o, const char *s, const char *implied_key, struct error *err)
{
    o->v = NULL;
    o->n = 0;
    for (bool first = true; *s; first = false) {
        char *key, *value = NULL;
        s = scan_part(s, '=', &key);
        if (*s == '=')
            s = scan_part(s + 1, 0, &value);
        if (!value && first && implied_key) {
            value = key;
            key = strdup(implied_key);
        }
        if (!key[0]) {
            free(key);
            free(value);
            opts_free(o);
            return error_set(err, -EINVAL, "Invalid option string: empty parameter name");
        }
        o->v = realloc(o->v, sizeof(*o->v) * (o->n + 1));
        o->v[o->n++] = (struct opt){ .key = key, .value = value };
        if (*s == ',')
            s++;
    }
    return 0;
}

void opts_free(struct opts *o)
{
    for (int i = 0; i < o->n; i++) {
        free(o->v[i].key);
        free(o->v[i].value);
    }
    free(o->v);
    o->v = NULL;
    o->n = 0;
}

static struct opt *find(struct opts *o, const char *key)
{
    struct opt *found = NULL;
    for (int i = 0; i < o->n; i++) {
        if (!strcmp(o->v[i].key, key)) {
            o->v[i].used = true;
            found = &o->v[i];       /* last one wins, as in QEMU */
        }
    }
    return found;
}

const char *opts_get(struct opts *o, const char *key)
{
    struct opt *p = find(o, key);
    return p ? (p->value ? p->value : "on") : NULL;
}

int opts_get_bool(struct opts *o, const char *key, bool def, bool *out, struct error *err)
{
    const char *v = opts_get(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false"))
        *out = false;
    else
        return error_set(err, -EINVAL, "Parameter '%s' expects 'on' or 'off'", key);
    return 0;
}

int opts_get_u64(struct opts *o, const char *key, uint64_t def, uint64_t *out, struct error *err)
{
    const char *v = opts_get(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno || end == v || *end || v[0] == '-')
        return error_set(err, -EINVAL, "Parameter '%s' expects a number", key);
    *out = x;
    return 0;
}

int opts_get_size(struct opts *o, const char *key, uint64_t def, uint64_t *out, struct error *err)
{
    const char *v = opts_get(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (parse_size(v, 1, out) < 0)
        return error_set(err, -EINVAL, "Parameter '%s' expects a size", key);
    return 0;
}

int opts_check_unused(const struct opts *o, struct error *err)
{
    for (int i = 0; i < o->n; i++)
        if (!o->v[i].used)
            return error_set(err, -EINVAL, "Invalid parameter '%s'", o->v[i].key);
    return 0;
}

int parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s) && *s != '.')
        return -EINVAL;
    char *end;
    errno = 0;
    /* Integer first so large byte counts stay exact. */
    unsigned long long whole = strtoull(s, &end, 10);
    double frac = 0;
    if (*end == '.') {
        char *fend;
        frac = strtod(end, &fend);
        end = fend;
    }
    if (errno)
        return -ERANGE;
    uint64_t unit = default_unit;
    if (*end) {
        static const char suffixes[] = "BKMGTPE";
        const char *p = strchr(suffixes, toupper((unsigned char)*end));
        if (!p || end[1])
            return -EINVAL;
        unit = 1ULL << (10 * (p - suffixes));
    }
    if (whole > UINT64_MAX / unit)
        return -ERANGE;
    double extra = frac * (double)unit;
    if (frac && unit == 1)
        return -EINVAL;        /* fractional bytes */
    uint64_t v = whole * unit;
    if (extra >= (double)(UINT64_MAX - v))
        return -ERANGE;
    *out = v + (uint64_t)extra;
    return 0;
}

void format_size(uint64_t bytes, char *buf, int len)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    int i = 0;
    double v = (double)bytes;
    /* Same threshold as qemu-img: switch unit once the value reaches 1000. */
    while (v >= 1000 && i < 6) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, "%0.3g %s", v, units[i]);
}
