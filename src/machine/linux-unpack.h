/* Unpacking a bzImage's compressed payload on the host: the format is told
 * by its magic; the last four bytes of every kernel payload give the
 * uncompressed size (gzip's ISIZE, the kernel build's size_append for the
 * others). XZ, gzip and zstd are decoded here; LZMA, LZ4, bzip2 and LZO
 * are recognised but left to the kernel's own decompressor. */
#ifndef QUOKKA_MACHINE_LINUX_UNPACK_H
#define QUOKKA_MACHINE_LINUX_UNPACK_H

#include <stddef.h>
#include <stdint.h>
#include "util/error.h"

#define LINUX_UNPACK_MAX (1024u << 20)  /* refuse claims of a bigger kernel */

/* Name of the compression format in p (by magic), "unknown" if none. */
const char *linux_unpack_format(const uint8_t *p, size_t len);
/* Decompress payload p into a malloc'd *out of *out_len bytes. -ENOTSUP
 * for formats not decoded here, -EINVAL for corrupt or truncated data. */
int linux_unpack(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len,
                 struct error *err);

#endif
