/* Glue inside src/block/: what block.c, file.c, raw.c and aio.c need from
 * each other beyond the driver table. Nothing outside src/block/ (and its
 * unit tests) includes this. */
#ifndef QUOKKA_BLOCK_AIO_H
#define QUOKKA_BLOCK_AIO_H

#include <stdbool.h>
#include <stdint.h>
#include "block/block_int.h"

/* block.c: the checks every request passes before it reaches a driver
 * (read-only node, range inside the virtual size for format nodes). */
int bdev_check_request(struct bdev *bs, uint64_t offset, uint64_t bytes, bool write);

/* block.c: the format driver whose probe scores highest on buf (raw, the
 * last resort, when nothing else claims it). */
const struct block_driver *block_probe(const uint8_t *buf, int len, const char *filename);

/* file.c: the host fd of a "file" node. */
int file_host_fd(struct bdev *bs);
/* file.c: OFD image locks for an fd opened with BDEV_O_* flags; 0 or -errno
 * with a message naming the permission another opener holds. */
int file_lock_apply(int fd, int flags, const char *filename, struct error *err);

/* raw.c: true if a write to [offset, offset+bytes) of a raw node may go
 * straight to the host file (false when a probed raw image must first vet
 * what lands in its first sector). */
bool raw_write_is_passthrough(struct bdev *bs, uint64_t offset);

/* qcow2-cluster.c: can [offset, offset+bytes) of a qcow2 node bypass the
 * driver? QCOW2_AIO_HOST: all of it is the host file's bytes from *host on
 * (for a write, clusters ours alone), and the clusters stay allocated until
 * qcow2_aio_unpin; QCOW2_AIO_ZERO: a read that is all zeroes; SLOW: call the
 * driver. Never blocks on I/O or on the driver's lock. */
enum { QCOW2_AIO_SLOW, QCOW2_AIO_HOST, QCOW2_AIO_ZERO };
int qcow2_aio_map(struct bdev *bs, uint64_t offset, uint64_t bytes, bool write, uint64_t *host);
void qcow2_aio_unpin(struct bdev *bs);

/* aio.c: stop a node's engine; waits for requests in flight. */
void bdev_aio_shutdown(struct bdev *bs);
/* aio.c: largest number of requests this node had accepted and not yet
 * completed at one time (for tests and stats). */
int bdev_aio_max_inflight(struct bdev *bs);
/* aio.c: requests of a qcow2 node that went to io_uring through
 * qcow2_aio_map (data or zeroes) rather than to the pool (for tests). */
int bdev_aio_mapped_count(struct bdev *bs);

#endif
