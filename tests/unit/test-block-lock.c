/* Unit tests for image locking: OFD locks conflict between two opens in one
 * process exactly as between two processes, so both are checked here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include "block/block_int.h"
#include "block-test.h"

static const char *img;

static int setup(void **state)
{
    if (bt_setup(state))
        return -1;
    img = bt_path("locked.img");
    bt_write_file(img, NULL, 0, 1 << 20);
    return 0;
}

static struct bdev *open_ok(int flags)
{
    struct bdev *bs;
    struct error err = {0};
    if (bdev_open_simple(&bs, img, "raw", flags, &err))
        fail_msg("open: %s", err.msg);
    return bs;
}

/* Opening must fail; returns the message. */
static const char *open_refused(int flags)
{
    static struct error err;
    struct bdev *bs = NULL;
    memset(&err, 0, sizeof(err));
    int ret = bdev_open_simple(&bs, img, "raw", flags, &err);
    if (ret == 0) {
        bdev_close(bs);
        fail_msg("open with flags %#x was not refused", flags);
    }
    assert_int_equal(ret, -EAGAIN);
    assert_null(bs);
    assert_non_null(strstr(err.msg, "Is another process using the image"));
    assert_non_null(strstr(err.msg, img));
    return err.msg;
}

static void test_second_writer_refused(void **state)
{
    struct bdev *a = open_ok(BDEV_O_RDWR);
    const char *msg = open_refused(BDEV_O_RDWR);
    assert_non_null(strstr(msg, "Failed to get \"write\" lock"));
    /* A plain reader is refused too: the writer does not share "write". */
    msg = open_refused(0);
    assert_non_null(strstr(msg, "Failed to get shared \"write\" lock"));
    /* The refused opens left no locks behind: closing the writer frees all. */
    bdev_close(a);
    a = open_ok(BDEV_O_RDWR);
    bdev_close(a);
}

static void test_readers_share_and_block_writers(void **state)
{
    struct bdev *r1 = open_ok(0), *r2 = open_ok(0);
    const char *msg = open_refused(BDEV_O_RDWR);
    assert_non_null(strstr(msg, "Failed to get \"write\" lock"));
    bdev_close(r1);
    open_refused(BDEV_O_RDWR);
    bdev_close(r2);
    bdev_close(open_ok(BDEV_O_RDWR));
}

static void test_ways_out(void **state)
{
    struct bdev *w = open_ok(BDEV_O_RDWR);
    /* -U: read an image someone writes. */
    struct bdev *u = open_ok(BDEV_O_FORCE_SHARE);
    bdev_close(u);
    /* locking=off: nothing checked, nothing taken. */
    struct bdev *n = open_ok(BDEV_O_RDWR | BDEV_O_NO_LOCK);
    bdev_close(n);
    bdev_close(w);

    /* share-rw: writers that all agree to share. */
    struct bdev *s1 = open_ok(BDEV_O_RDWR | BDEV_O_SHARE_RW);
    struct bdev *s2 = open_ok(BDEV_O_RDWR | BDEV_O_SHARE_RW);
    open_refused(BDEV_O_RDWR);          /* one that does not share is still refused */
    bdev_close(s1);
    bdev_close(s2);

    /* force-share is for readers only. */
    struct bdev *bs = NULL;
    struct error err = {0};
    assert_int_equal(bdev_open_simple(&bs, img, "raw", BDEV_O_RDWR | BDEV_O_FORCE_SHARE, &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "read-only"));
}

/* Another process holding the image read-write keeps us out. */
static void test_other_process(void **state)
{
    int ready[2], done[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct bdev *bs;
        struct error err = {0};
        char c = bdev_open_simple(&bs, img, "raw", BDEV_O_RDWR, &err) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1)
            _exit(1);
        _exit(0);                 /* exiting drops the locks */
    }
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    open_refused(0);
    assert_int_equal(write(done[1], &c, 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    bdev_close(open_ok(BDEV_O_RDWR));
    close(ready[0]), close(ready[1]), close(done[0]), close(done[1]);
}

/* The lock bytes are QEMU's: qemu-io holding the image keeps us out, and
 * qemu-io is kept out while we hold it. */
static void test_qemu_interop(void **state)
{
    int in[2];
    assert_int_equal(pipe(in), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[1]);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("qemu-io", "qemu-io", "-f", "raw", img, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    /* Wait (up to 10 s) for qemu-io to lock the image. Only look: an open
     * of ours at the wrong moment would make qemu-io's fail. */
    int fd = open(img, O_RDONLY);
    bool locked = false;
    for (int i = 0; i < 1000 && !locked; i++) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1 };
        locked = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        if (!locked)
            usleep(10000);
    }
    close(fd);
    assert_true(locked);
    struct bdev *bs = NULL;
    struct error err = {0};
    assert_int_equal(bdev_open_simple(&bs, img, "raw", BDEV_O_RDWR, &err), -EAGAIN);
    assert_non_null(strstr(err.msg, "\"write\" lock"));
    open_refused(0);
    bdev_close(open_ok(BDEV_O_FORCE_SHARE));
    close(in[1]);                 /* EOF on stdin: qemu-io quits */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    struct bdev *w = open_ok(BDEV_O_RDWR);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "qemu-io -f raw -c 'read 0 512' '%s' 2>&1 | "
             "grep -q 'Failed to get'", img);
    assert_int_equal(system(cmd), 0);
    bdev_close(w);
    snprintf(cmd, sizeof(cmd), "qemu-io -f raw -c 'read 0 512' '%s' >/dev/null 2>&1", img);
    assert_int_equal(system(cmd), 0);
}

/* Creating over an image in use must fail rather than empty it. */
static void test_create_over_open_image(void **state)
{
    struct bdev *w = open_ok(BDEV_O_RDWR);
    uint8_t data[512];
    memset(data, 0x77, sizeof(data));
    assert_int_equal(bdev_pwrite(w, 0, data, sizeof(data), 0), 0);
    struct error err = {0};
    assert_int_equal(bdrv_raw.create(img, 4096, NULL, &err), -EAGAIN);
    assert_non_null(strstr(err.msg, "lock"));
    assert_true(bdev_getlength(bdev_file(w)) == 1 << 20);
    memset(data, 0, sizeof(data));
    assert_int_equal(bdev_pread(w, 0, data, sizeof(data)), 0);
    assert_int_equal(data[511], 0x77);
    bdev_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_writer_refused),
        cmocka_unit_test(test_readers_share_and_block_writers),
        cmocka_unit_test(test_ways_out),
        cmocka_unit_test(test_other_process),
        cmocka_unit_test(test_create_over_open_image),
        cmocka_unit_test(test_qemu_interop),
    };
    return cmocka_run_group_tests(tests, setup, bt_teardown);
}
