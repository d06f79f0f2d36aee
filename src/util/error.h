/* Error reporting shared by every layer.
 *
 * Internal calls return 0 or -errno. Where a caller needs a sentence for the
 * user, the callee fills an `struct error` (a fixed buffer: no allocation on
 * error paths) and the top level prints it with the program's name, as
 * QEMU does: "quokka-img: Could not open 'x': No such file or directory". */
#ifndef QUOKKA_UTIL_ERROR_H
#define QUOKKA_UTIL_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

struct error {
    int code;            /* negative errno, 0 when unset */
    char msg[512];
};

/* Fill err (if non-NULL) with a message; returns code so callers can write
 * `return error_set(err, -EINVAL, "...")`. A second set keeps the first. */
int error_set(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like error_set, appending ": strerror(-code)". */
int error_set_errno(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "prefix: old message". */
void error_prepend(struct error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline bool error_is_set(const struct error *err) { return err && err->msg[0]; }

/* Program name used as the prefix of every report (default "quokka"). */
void error_set_progname(const char *name);
const char *error_progname(void);

/* "progname: message\n" on stderr. */
void error_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void error_report_err(const struct error *err);
/* Report and exit(1); only for setup paths. */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
