/* hostfwd_add [netdev] RULE, hostfwd_remove [netdev] RULE, set_link,
 * info network, info usernet. */
#include "monitor/net-cmds.h"

#include <stdlib.h>
#include <string.h>
#include "net/net.h"
#include "net/user.h"

/* "hostfwd_add RULE" or "hostfwd_add NETDEV RULE". */
static void hostfwd(struct monitor *mon, const struct mon_args *a, bool add)
{
    const struct mon_arg *x = mon_arg(a, "a"), *y = mon_arg(a, "b");
    const char *netdev = y && y->present ? x->str : NULL;
    const char *rule = y && y->present ? y->str : x->str;
    struct error err = {0};
    if (net_user_hostfwd(netdev, rule, add, &err) < 0)
        mon_printf(mon, "%s\n", err.msg);
}

void cmd_hostfwd_add(struct monitor *mon, const struct mon_args *a) { hostfwd(mon, a, true); }
void cmd_hostfwd_remove(struct monitor *mon, const struct mon_args *a) { hostfwd(mon, a, false); }

void cmd_info_network(struct monitor *mon, const struct mon_args *a)
{
    char *buf = malloc(16384);
    if (!buf)
        return;
    net_format_info(buf, 16384);
    mon_printf(mon, "%s", buf);
    free(buf);
}

void cmd_info_usernet(struct monitor *mon, const struct mon_args *a)
{
    char *buf = malloc(65536);
    if (!buf)
        return;
    net_user_info(buf, 65536);
    mon_printf(mon, "%s", buf);
    free(buf);
}

void cmd_set_link(struct monitor *mon, const struct mon_args *a)
{
    const char *name = mon_arg(a, "name")->str, *state = mon_arg(a, "state")->str;
    bool up = !strcmp(state, "on");
    if (!up && strcmp(state, "off")) {
        mon_printf(mon, "Parameter 'up' expects on or off\n");
        return;
    }
    struct net_client *hit = NULL;
    for (struct net_client *c = net_client_first(); c; c = c->next)
        if (!strcmp(c->name, name))
            hit = c;
    if (!hit) {
        mon_printf(mon, "Device '%s' not found\n", name);
        return;
    }
    /* like QEMU: the NIC and its peer go down together */
    struct net_client *both[2] = { hit, hit->peer };
    for (int i = 0; i < 2; i++)
        if (both[i]) {
            both[i]->link_down = !up;
            if (both[i]->ops->link_changed)
                both[i]->ops->link_changed(both[i]);
        }
}
