/* Event loop: timer order and re-arming, ml_call from another thread,
 * fd readiness, the device lock being held in handlers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "util/mainloop.h"

struct rec {
    struct mainloop *ml;
    int order[8];
    int n;
};

static struct rec *g;

static void cb1(void *o) { g->order[g->n++] = 1; }
static void cb2(void *o) { g->order[g->n++] = 2; }
static void cb3(void *o) { g->order[g->n++] = 3; ml_quit(g->ml); }

static void test_timer_order(void **state)
{
    struct rec r = { .ml = ml_new() };
    g = &r;
    struct timer *t1 = timer_new(r.ml, cb1, NULL), *t2 = timer_new(r.ml, cb2, NULL);
    struct timer *t3 = timer_new(r.ml, cb3, NULL), *t4 = timer_new(r.ml, cb1, NULL);
    int64_t now = clock_ns();
    timer_mod(t3, now + 30000000);
    timer_mod(t2, now + 20000000);
    timer_mod(t1, now + 10000000);
    timer_mod(t4, now + 5000000);
    timer_del(t4);                               /* never fires */
    assert_false(timer_pending(t4));
    assert_true(timer_pending(t1));
    ml_run(r.ml);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 2);
    assert_int_equal(r.order[2], 3);
    assert_true(clock_ns() - now >= 30000000);
    timer_free(t1); timer_free(t2); timer_free(t3); timer_free(t4);
    ml_free(r.ml);
}

struct callarg {
    struct mainloop *ml;
    int hits;
};

static void called(void *o)
{
    struct callarg *c = o;
    /* The device lock is held: a trylock from another thread would fail;
     * here we just check that nested locking works (it is recursive). */
    ml_lock(c->ml);
    c->hits++;
    ml_unlock(c->ml);
    ml_quit(c->ml);
}

static void *caller(void *o)
{
    struct callarg *c = o;
    usleep(10000);
    ml_call(c->ml, called, c);
    return NULL;
}

static void test_call_from_thread(void **state)
{
    struct callarg c = { .ml = ml_new() };
    pthread_t th;
    pthread_create(&th, NULL, caller, &c);
    ml_run(c.ml);
    pthread_join(th, NULL);
    assert_int_equal(c.hits, 1);
    ml_free(c.ml);
}

struct fdarg {
    struct mainloop *ml;
    int fd;
    char got;
};

static void on_read(void *o, uint32_t ev)
{
    struct fdarg *f = o;
    assert_true(ev & EPOLLIN);
    assert_int_equal(read(f->fd, &f->got, 1), 1);
    ml_del_fd(f->ml, f->fd);
    ml_quit(f->ml);
}

static void test_fd(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct fdarg f = { .ml = ml_new(), .fd = p[0] };
    assert_int_equal(ml_add_fd(f.ml, p[0], EPOLLIN, on_read, &f), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    ml_run(f.ml);
    assert_int_equal(f.got, 'x');
    close(p[0]);
    close(p[1]);
    ml_free(f.ml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_call_from_thread),
        cmocka_unit_test(test_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
