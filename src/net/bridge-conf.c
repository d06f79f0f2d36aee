/* bridge.conf parsing: line by line, includes to a bounded depth. */
#include "net/bridge-conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BRIDGE_CONF_MAX_DEPTH 8
#define BRIDGE_CONF_MAX_SIZE (1 << 20)

static int check_file(const char *path, const char *br, struct bridge_acl *acl, int depth,
                      struct error *err);

static int parse(const char *text, const char *name, const char *br, struct bridge_acl *acl,
                 int depth, struct error *err)
{
    int lineno = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];
        lineno++;
        if (n >= sizeof(line))
            return error_set(err, -EINVAL, "%s:%d: line too long", name, lineno);
        memcpy(line, p, n);
        line[n] = 0;
        p += n + (eol != NULL);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char cmd[32], arg[480], extra[8];
        int k = sscanf(line, "%31s %479s %7s", cmd, arg, extra);
        if (k <= 0)
            continue;
        if (k != 2)
            return error_set(err, -EINVAL, "%s:%d: expected 'allow|deny|include ARGUMENT'",
                             name, lineno);
        if (!strcmp(cmd, "allow")) {
            if (!strcmp(arg, "all") || !strcmp(arg, br))
                acl->allowed = true;
        } else if (!strcmp(cmd, "deny")) {
            if (!strcmp(arg, "all") || !strcmp(arg, br))
                acl->denied = true;
        } else if (!strcmp(cmd, "include")) {
            int r = check_file(arg, br, acl, depth + 1, err);
            if (r < 0) {
                error_prepend(err, "%s:%d: ", name, lineno);
                return r;
            }
        } else {
            return error_set(err, -EINVAL, "%s:%d: unknown command '%s'", name, lineno, cmd);
        }
    }
    return 0;
}

static int check_file(const char *path, const char *br, struct bridge_acl *acl, int depth,
                      struct error *err)
{
    if (depth > BRIDGE_CONF_MAX_DEPTH)
        return error_set(err, -ELOOP, "%s: includes nested too deeply", path);
    FILE *f = fopen(path, "re");
    if (!f)
        return error_set_errno(err, -errno, "failed to open %s", path);
    char *buf = malloc(BRIDGE_CONF_MAX_SIZE + 1);
    size_t n = buf ? fread(buf, 1, BRIDGE_CONF_MAX_SIZE + 1, f) : 0;
    fclose(f);
    int r;
    if (!buf)
        r = error_set(err, -ENOMEM, "out of memory");
    else if (n > BRIDGE_CONF_MAX_SIZE)
        r = error_set(err, -EFBIG, "%s: file too large", path);
    else if (memchr(buf, 0, n))
        r = error_set(err, -EINVAL, "%s: not a text file", path);
    else {
        buf[n] = 0;
        r = parse(buf, path, br, acl, depth, err);
    }
    free(buf);
    return r;
}

int bridge_conf_check(const char *path, const char *br, struct bridge_acl *acl,
                      struct error *err)
{
    return check_file(path, br, acl, 0, err);
}

int bridge_conf_parse(const char *text, const char *name, const char *br,
                      struct bridge_acl *acl, struct error *err)
{
    return parse(text, name, br, acl, 0, err);
}
