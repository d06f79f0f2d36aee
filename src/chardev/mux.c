/* mux: one host terminal shared by several frontends (mon:stdio,
 * -nographic). Output of every frontend goes out; input goes to the one in
 * focus. Ctrl-A is the escape key, as in QEMU:
 *   C-a h help   C-a x quit   C-a c next frontend (console <-> monitor)
 *   C-a s sync disks   C-a b send break   C-a t timestamps   C-a C-a one C-a */
#include "chardev/chardev_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util/mainloop.h"

#define MUX_MAX 4
#define MUX_BUF 64
#define ESC 0x01            /* Ctrl-A */

struct mux_chr {
    struct chardev chr;
    struct chardev *be;
    struct chardev_frontend fes[MUX_MAX];
    int n_fes, focus;
    bool escape;            /* last byte was Ctrl-A */
    bool timestamps, line_start;
    int64_t start_ns;
    /* Input the focused frontend could not take yet. */
    uint8_t buf[MUX_MAX][MUX_BUF];
    int prod[MUX_MAX], cons[MUX_MAX];
};

static void mux_send_event(struct mux_chr *m, int i, int event)
{
    if (i >= 0 && i < m->n_fes && m->fes[i].event)
        m->fes[i].event(m->fes[i].opaque, event);
}

static void mux_print(struct mux_chr *m, const char *s)
{
    chardev_write(m->be, (const uint8_t *)s, strlen(s));
}

static void mux_help(struct mux_chr *m)
{
    mux_print(m, "\r\n"
        "C-a h    print this help\r\n"
        "C-a x    exit emulator\r\n"
        "C-a s    save disk data back to file (if -snapshot)\r\n"
        "C-a t    toggle console timestamps\r\n"
        "C-a b    send break (magic sysrq)\r\n"
        "C-a c    switch between console and monitor\r\n"
        "C-a C-a  sends C-a\r\n");
}

static void mux_flush(struct mux_chr *m)
{
    int i = m->focus;
    const struct chardev_frontend *fe = &m->fes[i];
    while (m->cons[i] != m->prod[i]) {
        int room = fe->can_receive ? fe->can_receive(fe->opaque) : MUX_BUF;
        if (room <= 0)
            return;
        uint8_t c = m->buf[i][m->cons[i]++ % MUX_BUF];
        fe->receive(fe->opaque, &c, 1);
    }
}

static void mux_focus(struct mux_chr *m, int next)
{
    mux_send_event(m, m->focus, CHARDEV_FOCUS_OUT);
    m->focus = next;
    mux_send_event(m, m->focus, CHARDEV_FOCUS_IN);
    mux_flush(m);
}

/* Handle the byte after Ctrl-A; true if it was a command. */
static bool mux_command(struct mux_chr *m, uint8_t c)
{
    switch (c) {
    case 'h': case '?':
        mux_help(m);
        return true;
    case 'x':
        mux_print(m, "QEMU: Terminated\r\n");
        chardev_quit();
        return true;
    case 's':
        return true;        /* no -snapshot drives yet: nothing to write back */
    case 'b':
        mux_send_event(m, m->focus, CHARDEV_BREAK);
        return true;
    case 'c':
        if (m->n_fes > 0)
            mux_focus(m, (m->focus + 1) % m->n_fes);
        return true;
    case 't':
        m->timestamps = !m->timestamps;
        m->start_ns = clock_ns();
        m->line_start = true;
        return true;
    }
    return false;           /* C-a C-a and unknown keys pass through */
}

static int mux_can_receive(void *opaque)
{
    struct mux_chr *m = opaque;
    if (m->n_fes == 0)
        return 1;
    int i = m->focus;
    return MUX_BUF - (m->prod[i] - m->cons[i]);
}

static void mux_receive(void *opaque, const uint8_t *buf, int len)
{
    struct mux_chr *m = opaque;
    for (int k = 0; k < len; k++) {
        uint8_t c = buf[k];
        if (m->escape) {
            m->escape = false;
            if (mux_command(m, c))
                continue;
        } else if (c == ESC) {
            m->escape = true;
            continue;
        }
        int i = m->focus;
        if (m->n_fes == 0 || m->prod[i] - m->cons[i] >= MUX_BUF)
            continue;       /* can_receive said no room: cannot happen */
        m->buf[i][m->prod[i]++ % MUX_BUF] = c;
        mux_flush(m);           /* before a later C-a c moves the focus */
    }
}

static void mux_event(void *opaque, int event)
{
    struct mux_chr *m = opaque;
    for (int i = 0; i < m->n_fes; i++)
        mux_send_event(m, i, event);
}

static int mux_write(struct chardev *chr, const uint8_t *buf, int len)
{
    struct mux_chr *m = (struct mux_chr *)chr;
    if (!m->timestamps)
        return chardev_write(m->be, buf, len);
    int done = 0;
    while (done < len) {
        if (m->line_start) {
            int64_t ms = (clock_ns() - m->start_ns) / 1000000;
            char ts[48];
            int n = snprintf(ts, sizeof(ts), "[%02d:%02d:%02d.%03d] ", (int)(ms / 3600000),
                             (int)(ms / 60000 % 60), (int)(ms / 1000 % 60), (int)(ms % 1000));
            chardev_write(m->be, (const uint8_t *)ts, n);
            m->line_start = false;
        }
        const uint8_t *nl = memchr(buf + done, '\n', len - done);
        int n = nl ? (int)(nl - (buf + done)) + 1 : len - done;
        chardev_write(m->be, buf + done, n);
        done += n;
        m->line_start = nl != NULL;
    }
    return len;
}

static void mux_accept_input(struct chardev *chr)
{
    struct mux_chr *m = (struct mux_chr *)chr;
    if (m->n_fes)
        mux_flush(m);
    chardev_accept_input(m->be);
}

static int mux_attach(struct chardev *chr, const struct chardev_frontend *fe, struct error *err)
{
    struct mux_chr *m = (struct mux_chr *)chr;
    if (m->n_fes >= MUX_MAX)
        return error_set(err, -EBUSY, "too many uses of multiplexed chardev '%s'", chr->id);
    int i = m->n_fes++;
    m->fes[i] = *fe;
    /* Focus first (the first frontend has it), then the backend's state,
     * so a monitor knows whether to print its banner now or on C-a c. */
    mux_send_event(m, i, i == m->focus ? CHARDEV_FOCUS_IN : CHARDEV_FOCUS_OUT);
    if (m->be->connected)
        mux_send_event(m, i, CHARDEV_OPENED);
    chardev_accept_input(m->be);
    return 0;
}

static void mux_free(struct chardev *chr)
{
    free(chr);
}

static const struct chardev_ops mux_ops = {
    .write = mux_write,
    .accept_input = mux_accept_input,
    .attach = mux_attach,
    .free = mux_free,
};

struct chardev *chardev_mux_new(struct mainloop *ml, struct chardev *be, struct error *err)
{
    struct mux_chr *m = calloc(1, sizeof(*m));
    if (!m)
        return error_set(err, -ENOMEM, "out of memory"), NULL;
    char name[1024];
    snprintf(name, sizeof(name), "mux:%s", be->filename);
    chardev_init(&m->chr, &mux_ops, ml, name);
    m->be = be;
    m->line_start = true;
    struct chardev_frontend fe = {
        .can_receive = mux_can_receive,
        .receive = mux_receive,
        .event = mux_event,
        .opaque = m,
    };
    if (chardev_attach(be, &fe, err) < 0) {
        free(m->chr.filename);
        free(m);
        return NULL;
    }
    return &m->chr;
}
