/* HMP networking commands (the handlers live in net-cmds.c; rows in
 * commands.c's table). */
#ifndef QUOKKA_MONITOR_NET_CMDS_H
#define QUOKKA_MONITOR_NET_CMDS_H

#include "monitor/monitor_int.h"

void cmd_hostfwd_add(struct monitor *mon, const struct mon_args *a);
void cmd_hostfwd_remove(struct monitor *mon, const struct mon_args *a);
void cmd_info_network(struct monitor *mon, const struct mon_args *a);
void cmd_info_usernet(struct monitor *mon, const struct mon_args *a);
void cmd_set_link(struct monitor *mon, const struct mon_args *a);

#endif
