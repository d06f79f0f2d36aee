#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *progname = "quokka";

void error_set_progname(const char *name) { progname = name; }
const char *error_progname(void) { return progname; }

static int error_vset(struct error *err, int code, bool with_errno,
                      const char *fmt, va_list ap)
{
    if (!err || err->msg[0])
        return code;
    err->code = code;
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
        snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(-code));
    return code;
}

int error_set(struct error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, false, fmt, ap);
    va_end(ap);
    return code;
}

int error_set_errno(struct error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, true, fmt, ap);
    va_end(ap);
    return code;
}

void error_prepend(struct error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s%s", prefix, old);
}

static void vreport(const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s", progname, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void error_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}

void error_report_err(const struct error *err)
{
    error_report("%s", err && err->msg[0] ? err->msg : "unknown error");
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
    exit(1);
}
