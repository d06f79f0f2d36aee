/* -netdev TYPE,id=ID,...   a backend for -device virtio-net-pci,netdev=ID
 * -net nic[,macaddr=][,model=virtio][,vlan=N][,name=]  a NIC on hub N (0)
 * -net TYPE[,vlan=N],...   a backend on hub N
 * -nic TYPE[,mac=][,model=],...  backend and NIC in one option */
#include "cli/netdev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "cli/drive.h"
#include "net/netdev.h"
#include "util/opts.h"

static int auto_ids;

static void print_help(void)
{
    printf("Available netdev backend types:\nsocket\nhubport\nbridge\ntap\nuser\n");
}

static bool is_help(const char *arg) { return !strcmp(arg, "help") || !strcmp(arg, "?"); }

int cli_opt_netdev(struct cli *c, const char *arg, struct error *err)
{
    if (is_help(arg)) {
        print_help();
        return 1;
    }
    net_set_vm_name(&c->cfg.name);
    return net_config_netdev(arg, -1, err);
}

static int check_model(const char *model, struct error *err)
{
    if (!model || !strcmp(model, "virtio") || !strcmp(model, "virtio-net-pci"))
        return 0;
    if (!strcmp(model, "help") || !strcmp(model, "?")) {
        printf("Supported NIC models:\nvirtio-net-pci\n");
        return 1;
    }
    return error_set(err, -EINVAL, "Unsupported NIC model: %s (only virtio is emulated)", model);
}

/* Add "virtio-net-pci,netdev=ID[,mac=MAC]" to the board's devices. */
static int add_nic(struct cli *c, const char *id, const char *mac, struct error *err)
{
    char spec[160];
    snprintf(spec, sizeof(spec), "virtio-net-pci,netdev=%s%s%s", id, mac ? ",mac=" : "",
             mac ? mac : "");
    if (mac && strchr(mac, ','))
        return error_set(err, -EINVAL, "invalid MAC address '%s'", mac);
    return cli_opt_device(c, spec, err);
}

/* Remove key from an option string (it was ours, not the backend's). */
static char *rebuild_without(struct opts *o, const char *const *skip)
{
    size_t cap = 1;
    for (int i = 0; i < o->n; i++)
        cap += 2 * (strlen(o->v[i].key) + (o->v[i].value ? strlen(o->v[i].value) : 0)) + 3;
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    *p = 0;
    for (int i = 0; i < o->n; i++) {
        bool drop = false;
        for (const char *const *k = skip; *k; k++)
            drop |= !strcmp(o->v[i].key, *k);
        if (drop)
            continue;
        if (p != s)
            *p++ = ',';
        p += sprintf(p, "%s", o->v[i].key);
        if (o->v[i].value) {
            *p++ = '=';
            for (const char *v = o->v[i].value; *v; v++) {
                *p++ = *v;
                if (*v == ',')
                    *p++ = ',';
            }
        }
        *p = 0;
    }
    return s;
}

int cli_opt_net(struct cli *c, const char *arg, struct error *err)
{
    if (is_help(arg)) {
        print_help();
        return 1;
    }
    net_set_vm_name(&c->cfg.name);
    struct opts o;
    if (opts_parse(&o, arg, "type", err) < 0)
        return -EINVAL;
    const char *type = opts_get(&o, "type");
    uint64_t vlan = 0;
    int r = opts_get_u64(&o, "vlan", 0, &vlan, err);
    if (!r && vlan > 4095)
        r = error_set(err, -EINVAL, "vlan=%llu is out of range", (unsigned long long)vlan);
    if (!r && !type)
        r = error_set(err, -EINVAL, "Parameter 'type' is missing");
    if (r || !strcmp(type, "none")) {
        opts_free(&o);
        return r;
    }
    char id[64];
    const char *name = opts_get(&o, "name") ? opts_get(&o, "name") : opts_get(&o, "id");
    if (name)
        snprintf(id, sizeof(id), "%s", name);
    else
        snprintf(id, sizeof(id), "__net%d", auto_ids++);
    if (!strcmp(type, "nic")) {
        const char *mac = opts_get(&o, "macaddr");
        r = check_model(opts_get(&o, "model"), err);
        if (!r)
            r = opts_check_unused(&o, err);
        char spec[96];
        snprintf(spec, sizeof(spec), "hubport,id=%s,hubid=%d", id, (int)vlan);
        if (!r)
            r = net_config_netdev(spec, -1, err);
        if (!r)
            r = add_nic(c, id, mac, err);
    } else {
        static const char *const skip[] = { "type", "vlan", "name", "id", NULL };
        char *rest = rebuild_without(&o, skip), *spec = NULL;
        if (!rest || asprintf(&spec, "%s,id=%s%s%s", type, id, *rest ? "," : "", rest) < 0)
            spec = NULL;
        r = spec ? net_config_netdev(spec, (int)vlan, err) : -ENOMEM;
        free(rest);
        free(spec);
    }
    opts_free(&o);
    return r;
}

int cli_opt_nic(struct cli *c, const char *arg, struct error *err)
{
    if (is_help(arg)) {
        print_help();
        return 1;
    }
    net_set_vm_name(&c->cfg.name);
    struct opts o;
    if (opts_parse(&o, arg, "type", err) < 0)
        return -EINVAL;
    const char *type = opts_get(&o, "type"), *mac = opts_get(&o, "mac");
    int r = check_model(opts_get(&o, "model"), err);
    if (!r && !type)
        r = error_set(err, -EINVAL, "Parameter 'type' is missing");
    if (r || !strcmp(type, "none")) {
        opts_free(&o);
        return r;
    }
    char id[64];
    snprintf(id, sizeof(id), "__nic%d", auto_ids++);
    static const char *const skip[] = { "type", "mac", "model", "id", NULL };
    char *rest = rebuild_without(&o, skip), *spec = NULL;
    if (!rest || asprintf(&spec, "%s,id=%s%s%s", type, id, *rest ? "," : "", rest) < 0)
        spec = NULL;
    r = spec ? net_config_netdev(spec, -1, err) : -ENOMEM;
    if (!r)
        r = add_nic(c, id, mac, err);
    free(rest);
    free(spec);
    opts_free(&o);
    return r;
}
