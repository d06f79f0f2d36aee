/* Backend constructors, called by netdev.c with the -netdev options (type
 * and id already consumed). Each registers its client under name. */
#ifndef QUOKKA_NET_NET_INT_H
#define QUOKKA_NET_NET_INT_H

#include "net/net.h"
#include "util/opts.h"

struct mainloop;

typedef int net_backend_fn(struct mainloop *ml, struct opts *o, const char *name,
                           struct net_client **out, struct error *err);

net_backend_fn net_user_create, net_tap_create, net_bridge_create, net_socket_create;

/* A tap backend around an open /dev/net/tun fd (tap.c; bridge.c uses it). */
int net_tap_from_fd(struct mainloop *ml, int fd, bool vnet_hdr, const char *name,
                    const char *ifname, const char *downscript, struct net_client **out,
                    struct error *err);

/* Open a TAP device (ifname may be a pattern "tap%d"); the name it got
 * goes in actual[IFNAMSIZ]. Returns the fd or -errno. */
int net_tap_open(const char *ifname, bool vnet_hdr, char *actual, struct error *err);

/* Run HELPER --br=BR --fd=N; the tap fd it passes back, or -errno. */
int net_bridge_run_helper(const char *helper, const char *br, struct error *err);

/* "host:port" -> sockaddr_in ("" host: any / loopback as given by def). */
struct sockaddr_in;
int net_parse_inet(const char *s, struct sockaddr_in *sa, struct error *err);

#endif
