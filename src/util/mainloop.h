/* The event loop thread: host fds (chardevs, sockets, the monitor), timers
 * on the host's monotonic clock, and the device lock.
 *
 * Devices are single-threaded by design: every call into device code — a
 * vCPU's port or MMIO access, a timer, an fd becoming readable — happens with
 * the device lock held (memory dispatch and the loop take it for the device),
 * so device files need no locks of their own. */
#ifndef QUOKKA_UTIL_MAINLOOP_H
#define QUOKKA_UTIL_MAINLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct mainloop;
struct timer;

typedef void ml_fd_handler(void *opaque, uint32_t events);   /* EPOLLIN/EPOLLOUT/EPOLLHUP... */
typedef void ml_timer_cb(void *opaque);
typedef void ml_call_fn(void *opaque);

struct mainloop *ml_new(void);
void ml_free(struct mainloop *ml);
/* Runs in the calling thread until ml_quit(). Handlers run with the device lock held. */
void ml_run(struct mainloop *ml);
void ml_quit(struct mainloop *ml);          /* any thread */

int ml_add_fd(struct mainloop *ml, int fd, uint32_t events, ml_fd_handler *h, void *opaque);
int ml_mod_fd(struct mainloop *ml, int fd, uint32_t events);
void ml_del_fd(struct mainloop *ml, int fd);
/* Run fn(opaque) in the loop thread soon (any thread; wakes the loop). */
void ml_call(struct mainloop *ml, ml_call_fn *fn, void *opaque);

/* Nanoseconds of CLOCK_MONOTONIC: the time base of all guest timers. */
int64_t clock_ns(void);

struct timer *timer_new(struct mainloop *ml, ml_timer_cb *cb, void *opaque);
void timer_mod(struct timer *t, int64_t expire_ns);   /* absolute clock_ns(); any thread */
void timer_del(struct timer *t);
bool timer_pending(const struct timer *t);
void timer_free(struct timer *t);

/* The device lock (recursive-safe is not promised: don't nest). */
void ml_lock(struct mainloop *ml);
void ml_unlock(struct mainloop *ml);

#endif
