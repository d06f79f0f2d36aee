/* User networking controls for the monitor (hostfwd_add, info usernet). */
#ifndef QUOKKA_NET_USER_H
#define QUOKKA_NET_USER_H

#include <stdbool.h>
#include "util/error.h"

/* netdev NULL: the first user netdev. rule as hostfwd=; remove takes
 * [tcp|udp]:[haddr]:hport. */
int net_user_hostfwd(const char *netdev, const char *rule, bool add, struct error *err);
int net_user_info(char *buf, int len);

#endif
