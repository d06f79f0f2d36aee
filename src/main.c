/* quokka: parse the command line, build the machine, run it, exit.
 * Exit status: 0 when the guest powers off, or on quit (monitor, Ctrl-A x,
 * SIGINT/SIGTERM, -no-reboot reset); 1 for any error, before or after the
 * guest starts. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include "chardev/chardev.h"
#include "cli/cli.h"
#include "doctor/doctor.h"
#include "machine/machine.h"
#include "monitor/monitor.h"
#include "util/mainloop.h"

struct quokka {
    struct machine *m;
    int sigfd;
    int signals;                /* termination signals seen */
};

static void quit_machine(void *opaque)
{
    struct quokka *q = opaque;
    machine_request_quit(q->m);
}

/* SIGINT/SIGTERM/SIGHUP arrive here (blocked in every thread), so the
 * machine shuts down in order and the terminal is restored at exit. */
static void on_signal(void *opaque, uint32_t events)
{
    struct quokka *q = opaque;
    struct signalfd_siginfo si;
    if (read(q->sigfd, &si, sizeof(si)) != sizeof(si))
        return;
    if (++q->signals > 1)
        exit(1);                /* quitting did not work: leave now (atexit restores) */
    error_report("terminating on signal %d from pid %d", (int)si.ssi_signo, (int)si.ssi_pid);
    machine_request_quit(q->m);
}

static int setup_signals(struct quokka *q, struct mainloop *ml)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    q->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (q->sigfd < 0)
        return -errno;
    return ml_add_fd(ml, q->sigfd, EPOLLIN, on_signal, q);
}

static int redirect_log(const char *path, struct error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return error_set_errno(err, -errno, "-D: cannot open log file '%s'", path);
    dup2(fd, 2);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "doctor"))
        return doctor_run(stdout);
    struct cli c;
    struct error err = {0};
    int r = cli_parse(&c, argc, argv, &err);
    if (r != 0) {
        if (r < 0)
            error_report_err(&err);
        return r < 0 ? 1 : 0;
    }
    if (cli_check_host(&c, &err) < 0) {
        error_report_err(&err);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (c.daemonize && cli_daemon_start(&err) < 0) {
        error_report_err(&err);
        return 1;
    }
    if (c.pidfile && cli_write_pidfile(c.pidfile, &err) < 0) {
        error_report_err(&err);
        return 1;
    }
    if (c.process_name)
        prctl(PR_SET_NAME, c.process_name);

    struct quokka q = { .sigfd = -1 };
    struct mainloop *ml = ml_new();
    struct chardev *mon_chr[CLI_MAX_MONITOR];
    struct monitor *mons[CLI_MAX_MONITOR] = {0};
    if (!ml) {
        error_report("cannot create the event loop");
        return 1;
    }
    if (setup_signals(&q, ml) < 0 || cli_open_chardevs(&c, ml, mon_chr, &err) < 0) {
        error_report_err(&err);
        chardev_free_all();
        return 1;
    }
    q.m = machine_create(&c.cfg, ml, &err);
    if (!q.m) {
        error_report_err(&err);
        chardev_free_all();
        return 1;
    }
    for (int i = 0; mon_chr[i]; i++) {
        mons[i] = monitor_new(q.m, mon_chr[i], &err);
        if (!mons[i]) {
            error_report("-monitor: %s", err.msg);
            machine_free(q.m);
            chardev_free_all();
            return 1;
        }
    }
    chardev_set_quit_handler(quit_machine, &q);
    if (c.logfile && redirect_log(c.logfile, &err) < 0) {
        error_report_err(&err);
        machine_free(q.m);
        chardev_free_all();
        return 1;
    }
    cli_daemon_ready();

    enum machine_exit how = machine_run(q.m);

    for (int i = 0; i < CLI_MAX_MONITOR; i++)
        monitor_free(mons[i]);
    machine_free(q.m);
    chardev_free_all();
    ml_free(ml);
    cli_free(&c);
    return how == MACHINE_EXIT_ERROR ? 1 : 0;
}
