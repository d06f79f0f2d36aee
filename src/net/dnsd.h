/* The local half of quokka-net's DNS forwarder (RFC 1035), no sockets:
 * a query for a name the bridge knows (the host's own name, a guest's DHCP
 * host name) is answered here; anything else is for the upstream resolver,
 * with its ID swapped so replies from upstream find their client. */
#ifndef QUOKKA_NET_DNSD_H
#define QUOKKA_NET_DNSD_H

#include <stddef.h>
#include <stdint.h>

#define DNSD_PACKET_MAX 512           /* plain UDP DNS */

/* IPv4 address (host order) of a local name, or 0 if it is not one. */
typedef uint32_t dnsd_lookup_fn(void *opaque, const char *name);

/* Answer query q if its name is local: the reply's length in out, 0 if
 * the query should be forwarded, -EINVAL if it is not a well-formed query
 * (drop it). Local names have A records only: other types get an empty
 * answer. */
int dnsd_answer(const uint8_t *q, size_t len, dnsd_lookup_fn *lookup, void *opaque,
                uint8_t *out, size_t out_max);

/* The query's name as dotted text (for logs and lookups); -EINVAL if bad. */
int dnsd_qname(const uint8_t *q, size_t len, char *name, size_t name_max, size_t *end);

#endif
