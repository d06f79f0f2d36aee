/* -daemonize and -pidfile. The parent stays until the child reports that
 * the machine is built, so errors during setup still reach the user's
 * terminal and the parent's exit status says whether the VM started. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1;
static char *pidfile_path;

int cli_daemon_start(struct error *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return error_set_errno(err, -errno, "-daemonize: pipe");
    pid_t pid = fork();
    if (pid < 0)
        return error_set_errno(err, -errno, "-daemonize: fork");
    if (pid > 0) {
        close(p[1]);
        char ok = 0;
        ssize_t n = read(p[0], &ok, 1);
        _exit(n == 1 && ok == 1 ? 0 : 1);
    }
    close(p[0]);
    ready_fd = p[1];
    setsid();
    /* Not a session leader any more: never reacquire a terminal. */
    if (fork() > 0)
        _exit(0);
    return 0;
}

void cli_daemon_ready(void)
{
    if (ready_fd < 0)
        return;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        if (fcntl(2, F_GETFD) >= 0 && isatty(2))
            dup2(null, 2);
        if (null > 2)
            close(null);
    }
    char ok = 1;
    if (write(ready_fd, &ok, 1) < 0)
        return;
    close(ready_fd);
    ready_fd = -1;
}

static void remove_pidfile(void)
{
    if (pidfile_path)
        unlink(pidfile_path);
}

int cli_write_pidfile(const char *path, struct error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return error_set_errno(err, -errno, "-pidfile: cannot open pid file '%s'", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return error_set(err, -EBUSY, "-pidfile: '%s' is locked: another instance runs", path);
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, n) != n) {
        close(fd);
        return error_set_errno(err, -errno, "-pidfile: cannot write '%s'", path);
    }
    /* fd stays open (and locked) for the life of the process. */
    pidfile_path = realpath(path, NULL);
    atexit(remove_pidfile);
    return 0;
}
