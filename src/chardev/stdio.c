/* stdio backend: input from fd 0, output to fd 1. On a terminal, raw mode
 * (the guest does its own echo and line editing), restored on every way
 * out: normal exit (atexit), and fatal signals, whose handler restores the
 * terminal and then lets the signal's previous action run. */
#include "chardev/chardev_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

struct stdio_chr {
    struct chardev chr;
};

static bool in_use;
static bool have_saved;
static struct termios saved_tty;
static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGQUIT };
static struct sigaction old_actions[sizeof(fatal_signals) / sizeof(fatal_signals[0])];

static void stdio_restore_tty(void)
{
    if (have_saved)
        tcsetattr(0, TCSANOW, &saved_tty);     /* async-signal-safe */
}

static void fatal_handler(int sig, siginfo_t *si, void *ctx)
{
    stdio_restore_tty();
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
        if (fatal_signals[i] != sig)
            continue;
        sigaction(sig, &old_actions[i], NULL);
        /* A fault re-executes the instruction on return and meets the old
         * action (ASan's report, or a core dump); a sent signal is re-raised. */
        if (si->si_code <= 0)
            raise(sig);
        return;
    }
}

static void stdio_set_raw(bool allow_signals)
{
    struct termios t;
    if (tcgetattr(0, &saved_tty) < 0)
        return;
    have_saved = true;
    atexit(stdio_restore_tty);
    struct sigaction sa = { .sa_sigaction = fatal_handler, .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
        sigaction(fatal_signals[i], &sa, &old_actions[i]);
    t = saved_tty;
    t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag |= OPOST;         /* keep "\n" -> "\r\n" for our own messages */
    t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    if (!allow_signals)
        t.c_lflag &= ~ISIG;
    t.c_cflag &= ~(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    tcsetattr(0, TCSANOW, &t);
}

static int stdio_write(struct chardev *chr, const uint8_t *buf, int len)
{
    return chardev_write_fd(1, buf, len);
}

static void stdio_free(struct chardev *chr)
{
    stdio_restore_tty();
    in_use = false;
    free(chr);
}

static const struct chardev_ops stdio_ops = {
    .write = stdio_write,
    .free = stdio_free,
};

struct chardev *chardev_stdio_open(struct mainloop *ml, struct opts *o, struct error *err)
{
    bool sig;
    if (opts_get_bool(o, "signal", true, &sig, err) < 0)
        return NULL;
    if (in_use)
        return error_set(err, -EBUSY, "cannot use stdio by multiple character devices"), NULL;
    struct stdio_chr *s = calloc(1, sizeof(*s));
    if (!s)
        return error_set(err, -ENOMEM, "out of memory"), NULL;
    chardev_init(&s->chr, &stdio_ops, ml, "stdio");
    in_use = true;
    if (isatty(0))
        stdio_set_raw(sig);
    /* stdin may be /dev/null or a file (not pollable): then no input. */
    chardev_watch_input(&s->chr, 0, NULL);
    return &s->chr;
}
