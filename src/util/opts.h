/* QEMU-style option strings: "value,key=value,flag,key2=a,,b".
 *
 * `,,` is an escaped comma. A bare first element may be named by the caller
 * (implied key, e.g. "file" for -drive, "type" for -netdev). Every key must
 * be consumed by the caller; opts_check_unused() then names the first key
 * nobody asked for, so no option is ever ignored silently. */
#ifndef QUOKKA_UTIL_OPTS_H
#define QUOKKA_UTIL_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include "util/error.h"

struct opt {
    char *key;
    char *value;        /* NULL for a bare flag ("readonly") */
    bool used;
};

struct opts {
    struct opt *v;
    int n;
};

/* Parse s into o. implied_key names a leading bare element (may be NULL). */
int opts_parse(struct opts *o, const char *s, const char *implied_key, struct error *err);
void opts_free(struct opts *o);

/* Lookups mark the key used. Missing key: get returns NULL, others return def. */
const char *opts_get(struct opts *o, const char *key);
int opts_get_bool(struct opts *o, const char *key, bool def, bool *out, struct error *err);
int opts_get_u64(struct opts *o, const char *key, uint64_t def, uint64_t *out, struct error *err);
int opts_get_size(struct opts *o, const char *key, uint64_t def, uint64_t *out, struct error *err);
/* -EINVAL with "Invalid parameter 'key'" if any key was never looked up. */
int opts_check_unused(const struct opts *o, struct error *err);

/* "20G", "512M", "1.5G", "4096" (default suffix given by default_unit,
 * e.g. 1 for bytes or 1<<20 for -m). Returns 0 or -EINVAL/-ERANGE. */
int parse_size(const char *s, uint64_t default_unit, uint64_t *out);
/* Human size as qemu-img prints it: "20 GiB", "1.5 MiB", "512 B". */
void format_size(uint64_t bytes, char *buf, int len);

#endif
