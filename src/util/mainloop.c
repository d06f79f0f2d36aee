/* The event loop: epoll over host fds, one timerfd armed at the earliest
 * guest timer, one eventfd for wakeups (ml_call, ml_quit).
 *
 * Locks: `dev` is the device lock (recursive, so DMA from a handler that
 * lands on MMIO does not deadlock); `tm` guards the timer list and the call
 * queue, and is never held while a callback runs, so timers can be armed
 * from any thread, with or without the device lock. */
#include "util/mainloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct ml_fd {
    int fd;
    ml_fd_handler *h;
    void *opaque;
    struct ml_fd *next;           /* registered list, or the deferred-free list */
};

struct timer {
    struct mainloop *ml;
    ml_timer_cb *cb;
    void *opaque;
    int64_t expire;               /* valid while pending */
    bool pending;
    struct timer *next;           /* sorted pending list */
};

struct ml_callq {
    ml_call_fn *fn;
    void *opaque;
    struct ml_callq *next;
};

struct mainloop {
    int epfd, evfd, tfd;
    pthread_mutex_t dev;
    pthread_mutex_t tm;
    struct timer *timers;         /* pending, sorted by expire */
    int64_t armed;                /* deadline the timerfd holds, INT64_MAX if none */
    struct ml_callq *calls, **calls_tail;
    struct ml_fd *fds, *dead;
    atomic_bool quit;
};

int64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void ml_wake(struct mainloop *ml)
{
    uint64_t one = 1;
    ssize_t r = write(ml->evfd, &one, sizeof(one));
    (void)r;
}

struct mainloop *ml_new(void)
{
    struct mainloop *ml = calloc(1, sizeof(*ml));
    if (!ml)
        return NULL;
    ml->epfd = epoll_create1(EPOLL_CLOEXEC);
    ml->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ml->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ml->epfd < 0 || ml->evfd < 0 || ml->tfd < 0) {
        ml_free(ml);
        return NULL;
    }
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&ml->dev, &a);
    pthread_mutexattr_destroy(&a);
    pthread_mutex_init(&ml->tm, NULL);
    ml->armed = INT64_MAX;
    ml->calls_tail = &ml->calls;
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.u64 = (uint64_t)ml->evfd;
    epoll_ctl(ml->epfd, EPOLL_CTL_ADD, ml->evfd, &ev);
    ev.data.u64 = (uint64_t)ml->tfd;
    epoll_ctl(ml->epfd, EPOLL_CTL_ADD, ml->tfd, &ev);
    return ml;
}

void ml_free(struct mainloop *ml)
{
    if (!ml)
        return;
    if (ml->epfd >= 0)
        close(ml->epfd);
    if (ml->evfd >= 0)
        close(ml->evfd);
    if (ml->tfd >= 0)
        close(ml->tfd);
    for (struct ml_fd *f = ml->fds, *n; f; f = n) {
        n = f->next;
        free(f);
    }
    for (struct ml_fd *f = ml->dead, *n; f; f = n) {
        n = f->next;
        free(f);
    }
    for (struct ml_callq *c = ml->calls, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(ml);
}

void ml_lock(struct mainloop *ml) { pthread_mutex_lock(&ml->dev); }
void ml_unlock(struct mainloop *ml) { pthread_mutex_unlock(&ml->dev); }

void ml_quit(struct mainloop *ml)
{
    atomic_store(&ml->quit, true);
    ml_wake(ml);
}

/* Registered fds carry their heap entry in data.ptr; the loop's own two fds
 * carry the fd number in data.u64, which no heap pointer equals. */
static bool ml_is_internal(const struct epoll_event *ev)
{
    return ev->data.u64 < (1u << 20);
}

int ml_add_fd(struct mainloop *ml, int fd, uint32_t events, ml_fd_handler *h, void *opaque)
{
    struct ml_fd *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->fd = fd;
    f->h = h;
    f->opaque = opaque;
    struct epoll_event ev = { .events = events, .data.ptr = f };
    if (epoll_ctl(ml->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = -errno;
        free(f);
        return e;
    }
    pthread_mutex_lock(&ml->tm);
    f->next = ml->fds;
    ml->fds = f;
    pthread_mutex_unlock(&ml->tm);
    return 0;
}

static struct ml_fd *ml_find_fd(struct mainloop *ml, int fd)
{
    for (struct ml_fd *f = ml->fds; f; f = f->next)
        if (f->fd == fd)
            return f;
    return NULL;
}

int ml_mod_fd(struct mainloop *ml, int fd, uint32_t events)
{
    pthread_mutex_lock(&ml->tm);
    struct ml_fd *f = ml_find_fd(ml, fd);
    pthread_mutex_unlock(&ml->tm);
    if (!f)
        return -ENOENT;
    struct epoll_event ev = { .events = events, .data.ptr = f };
    return epoll_ctl(ml->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

/* The entry may still be in the current epoll batch: it is kept (with no
 * handler) until the batch is done. */
void ml_del_fd(struct mainloop *ml, int fd)
{
    pthread_mutex_lock(&ml->tm);
    struct ml_fd **pp = &ml->fds;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    struct ml_fd *f = *pp;
    if (f) {
        *pp = f->next;
        f->h = NULL;
        f->next = ml->dead;
        ml->dead = f;
    }
    pthread_mutex_unlock(&ml->tm);
    if (f)
        epoll_ctl(ml->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void ml_call(struct mainloop *ml, ml_call_fn *fn, void *opaque)
{
    struct ml_callq *c = malloc(sizeof(*c));
    if (!c)
        abort();
    c->fn = fn;
    c->opaque = opaque;
    c->next = NULL;
    pthread_mutex_lock(&ml->tm);
    *ml->calls_tail = c;
    ml->calls_tail = &c->next;
    pthread_mutex_unlock(&ml->tm);
    ml_wake(ml);
}

/* ---- timers ---- */

/* Re-arm the timerfd if the earliest deadline changed. tm held. */
static void ml_rearm(struct mainloop *ml)
{
    int64_t next = ml->timers ? ml->timers->expire : INT64_MAX;
    if (next == ml->armed)
        return;
    ml->armed = next;
    struct itimerspec its = {0};
    if (next != INT64_MAX) {
        if (next <= 0)
            next = 1;     /* 0 would disarm */
        its.it_value.tv_sec = next / 1000000000LL;
        its.it_value.tv_nsec = next % 1000000000LL;
    }
    timerfd_settime(ml->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

struct timer *timer_new(struct mainloop *ml, ml_timer_cb *cb, void *opaque)
{
    struct timer *t = calloc(1, sizeof(*t));
    if (!t)
        abort();
    t->ml = ml;
    t->cb = cb;
    t->opaque = opaque;
    return t;
}

static void timer_unlink(struct timer *t)
{
    struct timer **pp = &t->ml->timers;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    t->pending = false;
    t->next = NULL;
}

void timer_mod(struct timer *t, int64_t expire_ns)
{
    struct mainloop *ml = t->ml;
    pthread_mutex_lock(&ml->tm);
    if (t->pending)
        timer_unlink(t);
    t->expire = expire_ns;
    t->pending = true;
    struct timer **pp = &ml->timers;
    while (*pp && (*pp)->expire <= expire_ns)
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
    ml_rearm(ml);
    pthread_mutex_unlock(&ml->tm);
}

void timer_del(struct timer *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->ml->tm);
    if (t->pending) {
        timer_unlink(t);
        ml_rearm(t->ml);
    }
    pthread_mutex_unlock(&t->ml->tm);
}

bool timer_pending(const struct timer *t)
{
    return t && __atomic_load_n(&t->pending, __ATOMIC_RELAXED);
}

void timer_free(struct timer *t)
{
    if (!t)
        return;
    timer_del(t);
    free(t);
}

/* Fire expired timers one at a time: a callback may re-arm or delete any
 * timer, so the list is re-read after each. Device lock held. */
static void ml_run_timers(struct mainloop *ml)
{
    int64_t now = clock_ns();
    for (;;) {
        pthread_mutex_lock(&ml->tm);
        struct timer *t = ml->timers;
        if (!t || t->expire > now) {
            ml->armed = INT64_MAX - 1;    /* force a re-arm */
            ml_rearm(ml);
            pthread_mutex_unlock(&ml->tm);
            return;
        }
        ml->timers = t->next;
        t->next = NULL;
        t->pending = false;
        pthread_mutex_unlock(&ml->tm);
        t->cb(t->opaque);
    }
}

static void ml_run_calls(struct mainloop *ml)
{
    pthread_mutex_lock(&ml->tm);
    struct ml_callq *c = ml->calls;
    ml->calls = NULL;
    ml->calls_tail = &ml->calls;
    pthread_mutex_unlock(&ml->tm);
    while (c) {
        struct ml_callq *n = c->next;
        c->fn(c->opaque);
        free(c);
        c = n;
    }
}

static void ml_drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) == sizeof(v))
        ;
}

void ml_run(struct mainloop *ml)
{
    struct epoll_event evs[32];
    while (!atomic_load(&ml->quit)) {
        int n = epoll_wait(ml->epfd, evs, 32, -1);
        if (n < 0 && errno != EINTR)
            break;
        pthread_mutex_lock(&ml->dev);
        for (int i = 0; i < n; i++) {
            if (ml_is_internal(&evs[i])) {
                ml_drain((int)evs[i].data.u64);
                continue;
            }
            struct ml_fd *f = evs[i].data.ptr;
            if (f->h)
                f->h(f->opaque, evs[i].events);
        }
        ml_run_calls(ml);
        ml_run_timers(ml);
        pthread_mutex_lock(&ml->tm);
        struct ml_fd *dead = ml->dead;
        ml->dead = NULL;
        pthread_mutex_unlock(&ml->tm);
        pthread_mutex_unlock(&ml->dev);
        while (dead) {
            struct ml_fd *nx = dead->next;
            free(dead);
            dead = nx;
        }
    }
    /* Let a later ml_run() work again (tests run several). */
    atomic_store(&ml->quit, false);
}
