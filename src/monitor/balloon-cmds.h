/* HMP balloon commands (handlers in balloon-cmds.c; rows in commands.c's
 * table): balloon TARGET, info balloon. */
#ifndef QUOKKA_MONITOR_BALLOON_CMDS_H
#define QUOKKA_MONITOR_BALLOON_CMDS_H

#include "monitor/monitor_int.h"

void cmd_balloon(struct monitor *mon, const struct mon_args *a);
void cmd_info_balloon(struct monitor *mon, const struct mon_args *a);

#endif
