/* The bridge helper's access list (/etc/quokka/bridge.conf), the same
 * rules as qemu-bridge-helper's:
 *     allow NAME | allow all | deny NAME | deny all | include FILE
 * '#' starts a comment. A deny that matches wins over any allow; a bridge
 * no rule allows is refused. */
#ifndef QUOKKA_NET_BRIDGE_CONF_H
#define QUOKKA_NET_BRIDGE_CONF_H

#include <stdbool.h>
#include "util/error.h"

#define BRIDGE_CONF_PATH "/etc/quokka/bridge.conf"

struct bridge_acl {
    bool allowed, denied;
};

/* Apply the rules of file `path` (and its includes) for bridge `br` to
 * *acl. Returns 0, or -errno with err naming file and line. */
int bridge_conf_check(const char *path, const char *br, struct bridge_acl *acl,
                      struct error *err);
/* The same for a buffer (name is used in messages; includes are read from disk). */
int bridge_conf_parse(const char *text, const char *name, const char *br,
                      struct bridge_acl *acl, struct error *err);

#endif
