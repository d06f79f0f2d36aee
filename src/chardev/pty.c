/* pty backend: a new pseudo-terminal whose slave name is printed, as in
 * QEMU ("char device redirected to /dev/pts/N (label serial0)"). We keep
 * the slave open ourselves so the master never reports a hang-up while no
 * one is attached; output beyond the pty's buffer is then dropped, like a
 * line with nobody on it. */
#include "chardev/chardev_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>
#include "util/error.h"

struct pty_chr {
    struct chardev chr;
    int master, slave;
};

static int pty_write(struct chardev *chr, const uint8_t *buf, int len)
{
    struct pty_chr *p = (struct pty_chr *)chr;
    int done = 0;
    while (done < len) {
        ssize_t n = write(p->master, buf + done, len - done);
        if (n > 0)
            done += n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break;          /* EAGAIN: nobody is reading */
    }
    return len;
}

static void pty_free(struct chardev *chr)
{
    struct pty_chr *p = (struct pty_chr *)chr;
    close(p->master);
    close(p->slave);
    free(p);
}

static const struct chardev_ops pty_ops = { .write = pty_write, .free = pty_free };

struct chardev *chardev_pty_open(struct mainloop *ml, struct opts *o, struct error *err)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
        error_set_errno(err, -errno, "Failed to create PTY");
        if (m >= 0)
            close(m);
        return NULL;
    }
    char name[256];
    if (ptsname_r(m, name, sizeof(name)) != 0) {
        error_set_errno(err, -errno, "Failed to create PTY");
        close(m);
        return NULL;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct termios t;
    if (s >= 0 && tcgetattr(s, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(s, TCSANOW, &t);
    }
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    struct pty_chr *p = calloc(1, sizeof(*p));
    if (!p) {
        close(m);
        if (s >= 0)
            close(s);
        return error_set(err, -ENOMEM, "out of memory"), NULL;
    }
    p->master = m;
    p->slave = s;
    char fname[300];
    snprintf(fname, sizeof(fname), "pty:%s", name);
    chardev_init(&p->chr, &pty_ops, ml, fname);
    chardev_watch_input(&p->chr, m, NULL);
    return &p->chr;
}

/* The label is known only once registered; the registry prints this. */
void chardev_pty_announce(struct chardev *chr)
{
    if (chr->ops == &pty_ops)
        error_report("char device redirected to %s (label %s)", chr->filename + 4, chr->id);
}
