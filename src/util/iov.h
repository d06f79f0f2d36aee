/* Scatter/gather helpers for struct iovec lists. */
#ifndef QUOKKA_UTIL_IOV_H
#define QUOKKA_UTIL_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

size_t iov_size(const struct iovec *iov, int cnt);
/* Copy between an iovec list (starting `offset` bytes into it) and a flat
 * buffer; return the bytes copied (less than len if the list is shorter). */
size_t iov_to_buf(const struct iovec *iov, int cnt, size_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, int cnt, size_t offset, const void *buf, size_t len);
size_t iov_memset(const struct iovec *iov, int cnt, size_t offset, int c, size_t len);
/* Describe bytes [offset, offset+len) of iov in out (at most out_max entries);
 * returns the entry count, or -1 if out_max was too small. */
int iov_slice(const struct iovec *iov, int cnt, size_t offset, size_t len,
              struct iovec *out, int out_max);
/* True if every byte of buf is zero (fast path for detect-zeroes / convert -S). */
int buffer_is_zero(const void *buf, size_t len);

#endif
