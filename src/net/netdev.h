/* The command line's view of networking: backends are described while
 * options are read and opened when the board builds its devices. */
#ifndef QUOKKA_NET_NETDEV_H
#define QUOKKA_NET_NETDEV_H

#include <stdbool.h>
#include <stdint.h>
#include "util/error.h"

struct mainloop;

bool net_type_known(const char *type);
/* Record -netdev TYPE,id=ID,... (hub_id >= 0: -net TYPE joined to that hub). */
int net_config_netdev(const char *spec, int hub_id, struct error *err);
/* Open every recorded backend (once; later calls do nothing). */
int net_open_all(struct mainloop *ml, struct error *err);
/* Where the VM's -name will be (read when MACs are made). */
void net_set_vm_name(const char *const *name);
/* The next NIC's index and its default MAC. */
int net_nic_next(uint8_t mac[6]);

#endif
