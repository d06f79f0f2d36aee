/* -netdev/-net backends: specs collected while the command line is read,
 * opened once the main loop exists (net_open_all), by type. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "net/net_int.h"
#include "net/netdev.h"

#define NET_MAX_PENDING 32

struct pending {
    char *spec;
    int hub_id;                  /* -net TYPE: the backend joins this hub; else -1 */
};

static struct pending pending[NET_MAX_PENDING];
static int n_pending;
static bool opened;
static const char *const *vm_name_ref;
static int nic_count;

static const struct { const char *type; net_backend_fn *fn; } backends[] = {
    { "user", net_user_create }, { "tap", net_tap_create }, { "bridge", net_bridge_create },
    { "socket", net_socket_create },
};

static net_backend_fn *find_backend(const char *type)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (!strcmp(backends[i].type, type))
            return backends[i].fn;
    return NULL;
}

bool net_type_known(const char *type)
{
    return find_backend(type) || !strcmp(type, "hubport");
}

static bool id_taken(const char *id)
{
    for (int i = 0; i < n_pending; i++) {
        struct opts o;
        if (opts_parse(&o, pending[i].spec, "type", NULL) < 0)
            continue;
        const char *pid = opts_get(&o, "id");
        bool same = pid && !strcmp(pid, id);
        opts_free(&o);
        if (same)
            return true;
    }
    return false;
}

int net_config_netdev(const char *spec, int hub_id, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, spec, "type", err) < 0)
        return -EINVAL;
    const char *type = opts_get(&o, "type"), *id = opts_get(&o, "id");
    int r = 0;
    if (!type)
        r = error_set(err, -EINVAL, "Parameter 'type' is missing");
    else if (!net_type_known(type))
        r = error_set(err, -EINVAL, "Parameter 'type' expects a netdev backend type "
                      "(user, tap, bridge, socket, hubport)");
    else if (!id)
        r = error_set(err, -EINVAL, "Parameter 'id' is missing");
    else if (id_taken(id))
        r = error_set(err, -EEXIST, "Duplicate ID '%s' for netdev", id);
    else if (n_pending == NET_MAX_PENDING)
        r = error_set(err, -ENOSPC, "too many network backends");
    opts_free(&o);
    if (r)
        return r;
    if (!(pending[n_pending].spec = strdup(spec)))
        return error_set(err, -ENOMEM, "out of memory");
    pending[n_pending++].hub_id = hub_id;
    return 0;
}

int net_backend_create(struct mainloop *ml, const char *spec, int hub_id, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, spec, "type", err) < 0)
        return -EINVAL;
    const char *type = opts_get(&o, "type"), *id = opts_get(&o, "id");
    struct net_client *nc = NULL;
    int r;
    if (!strcmp(type, "hubport")) {
        uint64_t hub;
        r = opts_get_u64(&o, "hubid", 0, &hub, err);
        if (!r)
            r = opts_check_unused(&o, err);
        if (!r && !net_hub_port_new((int)hub, id, err))
            r = -ENOMEM;
    } else {
        r = find_backend(type)(ml, &o, id, &nc, err);
    }
    if (!r && hub_id >= 0 && nc) {
        struct net_client *port = net_hub_port_new(hub_id, NULL, err);
        r = port ? net_client_connect(port, nc, err) : -ENOMEM;
    }
    opts_free(&o);
    return r;
}

int net_open_all(struct mainloop *ml, struct error *err)
{
    if (opened)
        return 0;
    opened = true;
    /* downscript= and the like run when the VM exits, however it exits
     * normally (power-off, quit, -no-reboot). */
    if (n_pending)
        atexit(net_cleanup_all);
    for (int i = 0; i < n_pending; i++) {
        int r = net_backend_create(ml, pending[i].spec, pending[i].hub_id, err);
        if (r < 0) {
            error_prepend(err, "-netdev %s: ", pending[i].spec);
            return r;
        }
    }
    return 0;
}

void net_set_vm_name(const char *const *name) { vm_name_ref = name; }

int net_nic_next(uint8_t mac[6])
{
    int idx = nic_count++;
    net_derive_mac(vm_name_ref ? *vm_name_ref : NULL, (int)getpid(), idx, mac);
    return idx;
}
