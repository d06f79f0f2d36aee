/* Checks before the machine is built, so that a mistake on the command
 * line is one clear sentence and exit status 1, not a failed guest:
 * guest RAM within what the host can back, kernel and initrd readable,
 * the kernel a bzImage (or ELF) and the initrd no larger than RAM. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/opts.h"

/* kB value of a /proc/meminfo field, or -1. */
static long long meminfo(const char *field)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = atoll(line + fl + 1);
    fclose(f);
    return v;
}

static int overcommit_mode(void)
{
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = 0;
    if (f) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = 0;
        fclose(f);
    }
    return mode;
}

/* Guest RAM is an anonymous mapping touched as the guest uses it; the host
 * can back at most its RAM plus swap (or the commit limit in strict mode). */
static int check_ram(uint64_t ram, struct error *err)
{
    long long total = meminfo("MemTotal"), swap = meminfo("SwapTotal");
    if (total < 0)
        return 0;               /* no /proc: let the mapping decide */
    uint64_t limit = (uint64_t)(total + (swap > 0 ? swap : 0)) * 1024;
    if (overcommit_mode() == 2) {
        long long cl = meminfo("CommitLimit"), used = meminfo("Committed_AS");
        if (cl > 0 && used >= 0)
            limit = cl > used ? (uint64_t)(cl - used) * 1024 : 0;
    }
    if (ram <= limit)
        return 0;
    char want[32], have[32], sw[32];
    format_size(ram, want, sizeof(want));
    format_size((uint64_t)total * 1024, have, sizeof(have));
    format_size((uint64_t)(swap > 0 ? swap : 0) * 1024, sw, sizeof(sw));
    return error_set(err, -ENOMEM, "-m: cannot allocate %s of guest RAM: the host has %s of "
                     "RAM and %s of swap", want, have, sw);
}

static int check_kernel(const char *path, struct error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(err, -errno, "-kernel: could not open kernel file '%s'", path);
    uint8_t hdr[0x210] = {0};
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
    close(fd);
    if (n >= 4 && !memcmp(hdr, "\177ELF", 4))
        return 0;
    if (n < (ssize_t)sizeof(hdr) || memcmp(hdr + 0x202, "HdrS", 4) || hdr[0x1FE] != 0x55 ||
        hdr[0x1FF] != 0xAA)
        return error_set(err, -ENOEXEC, "-kernel: '%s' is not a Linux kernel image "
                         "(no bzImage boot header)", path);
    return 0;
}

static int check_initrd(const char *path, uint64_t ram, struct error *err)
{
    struct stat st;
    if (stat(path, &st) < 0 || access(path, R_OK) < 0)
        return error_set_errno(err, -errno, "-initrd: could not open initrd file '%s'", path);
    if ((uint64_t)st.st_size >= ram) {
        char a[32], b[32];
        format_size(st.st_size, a, sizeof(a));
        format_size(ram, b, sizeof(b));
        return error_set(err, -EFBIG, "-initrd: '%s' (%s) does not fit in guest RAM (%s)",
                         path, a, b);
    }
    return 0;
}

int cli_check_host(const struct cli *c, struct error *err)
{
    int r = check_ram(c->cfg.ram_size, err);
    if (!r && c->cfg.kernel)
        r = check_kernel(c->cfg.kernel, err);
    if (!r && c->cfg.initrd)
        r = check_initrd(c->cfg.initrd, c->cfg.ram_size, err);
    return r;
}
