/* -netdev, -net and -nic: backends go to net/netdev.h, NICs become
 * virtio-net-pci entries of the board's device list (via -device). */
#ifndef QUOKKA_CLI_NETDEV_H
#define QUOKKA_CLI_NETDEV_H

#include "util/error.h"

struct cli;

int cli_opt_netdev(struct cli *c, const char *arg, struct error *err);
int cli_opt_net(struct cli *c, const char *arg, struct error *err);
int cli_opt_nic(struct cli *c, const char *arg, struct error *err);

#endif
