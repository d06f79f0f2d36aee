/* The host checklist behind `quokka doctor`: virtualization (CPU flags,
 * /dev/kvm, the KVM module and whether guest kernel code runs natively,
 * the kvm group) and networking (tun, the bridge helper and its
 * configuration, IP forwarding), then memory. Read-only: it changes
 * nothing on the host. */
#include "doctor/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "accel/kvm/kvm.h"
#include "net/net.h"

#define BRIDGE_CONF "/etc/quokka/bridge.conf"

enum level { OK, WARN, FAIL };

struct doctor {
    FILE *out;
    int fails;
};

static void say(struct doctor *d, enum level l, const char *what, const char *fmt, ...)
{
    static const char *const tag[] = { "OK  ", "WARN", "FAIL" };
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(d->out, "%s %-14s %s\n", tag[l], what, msg);
    d->fails += l == FAIL;
}

static void check_kvm(struct doctor *d)
{
    struct kvm_host h;
    kvm_host_probe(&h);
    kvm_host_probe_vm(&h);
    bool pvm = h.module && !strcmp(h.module, "kvm_pvm");
    if (h.cpu_vmx || h.cpu_svm)
        say(d, OK, "cpu", "%s flag present", h.cpu_vmx ? "vmx (Intel VT-x)" : "svm (AMD-V)");
    else
        say(d, pvm ? WARN : FAIL, "cpu", "no vmx/svm flag: no hardware virtualization%s",
            pvm ? " (PVM stands in for it)" : "; enable VT-x/AMD-V in the firmware setup "
            "(in a VM: enable nested virtualization on its host)");
    if (!h.module)
        say(d, FAIL, "kvm module", "none loaded; modprobe %s",
            h.cpu_svm ? "kvm_amd" : "kvm_intel");
    else
        say(d, pvm ? WARN : OK, "kvm module", "%s: %s", h.module, kvm_module_meaning(h.module));
    struct stat st;
    if (stat("/dev/kvm", &st) < 0)
        say(d, FAIL, "/dev/kvm", "missing; load the KVM module (modprobe %s)",
            h.cpu_svm ? "kvm_amd" : "kvm_intel");
    else if (h.open_errno)
        say(d, FAIL, "/dev/kvm", "cannot open: %s; join the kvm group "
            "(usermod -aG kvm $USER, then log in again)", strerror(h.open_errno));
    else if (h.vm_errno)
        say(d, FAIL, "/dev/kvm", "opens, but no VM can be created (%s): another hypervisor "
            "may hold the CPU's virtualization; close it, or see dmesg", strerror(h.vm_errno));
    else
        say(d, OK, "/dev/kvm", "present and openable (API version %d)", h.api_version);
    if (!h.open_errno && !h.vm_errno) {
        long long ns = kvm_probe_cpl0_ns();
        if (ns < 0)
            say(d, FAIL, "guest kernel", "a test VM could not run: %s", strerror((int)-ns));
        else if (ns > 5000000 || pvm)
            say(d, WARN, "guest kernel", "CPL0 code is emulated (%.1f ms for a 40k-instruction "
                "loop): kernels will not boot on -accel kvm; use -accel emu or kvm:emu", ns / 1e6);
        else
            say(d, OK, "guest kernel", "CPL0 code runs natively (%.2f ms for a 40k-instruction "
                "loop)", ns / 1e6);
    }
}

static void check_group(struct doctor *d)
{
    struct group *g = getgrnam("kvm");
    if (geteuid() == 0) {
        say(d, OK, "kvm group", "running as root");
        return;
    }
    if (!g) {
        say(d, WARN, "kvm group", "no kvm group on this host; /dev/kvm access is by its mode");
        return;
    }
    gid_t gs[256];
    int n = getgroups(256, gs);
    for (int i = 0; i < n; i++)
        if (gs[i] == g->gr_gid) {
            say(d, OK, "kvm group", "member");
            return;
        }
    say(d, FAIL, "kvm group", "not a member; usermod -aG kvm $USER, then log in again");
}

static void check_tun(struct doctor *d)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        say(d, OK, "/dev/net/tun", "present and openable");
    } else if (errno == ENOENT) {
        say(d, WARN, "/dev/net/tun", "missing; modprobe tun (needed for -netdev tap/bridge)");
    } else {
        say(d, WARN, "/dev/net/tun", "cannot open: %s; tap networking needs root or "
            "CAP_NET_ADMIN (or use -netdev bridge with the helper)", strerror(errno));
    }
}

static void check_bridge(struct doctor *d)
{
    char path[PATH_MAX + 32];
    struct stat st;
    if (!net_find_bridge_helper(path, sizeof(path)) || stat(path, &st) < 0) {
        say(d, WARN, "bridge helper", "quokka-bridge-helper not found next to quokka or in PATH "
            "(needed only for -netdev bridge)");
    } else if ((st.st_mode & S_ISUID) && st.st_uid == 0) {
        say(d, OK, "bridge helper", "%s is setuid root", path);
    } else if (getxattr(path, "security.capability", NULL, 0) > 0) {
        say(d, OK, "bridge helper", "%s has file capabilities", path);
    } else {
        say(d, geteuid() == 0 ? OK : WARN, "bridge helper", "%s is neither setuid root nor "
            "given cap_net_admin%s", path, geteuid() == 0 ? " (fine as root)" :
            "; setcap cap_net_admin+ep on it, or chmod u+s as root");
    }
    FILE *f = fopen(BRIDGE_CONF, "r");
    if (!f) {
        say(d, WARN, "bridge.conf", "%s missing; create it with a line 'allow br0' to let "
            "users attach guests to br0", BRIDGE_CONF);
        return;
    }
    char line[256];
    int allows = 0;
    while (fgets(line, sizeof(line), f))
        allows += !strncmp(line, "allow ", 6);
    fclose(f);
    say(d, allows ? OK : WARN, "bridge.conf", allows ? "%s allows %d bridge(s)" :
        "%s allows no bridge; add a line 'allow br0'", BRIDGE_CONF, allows);
}

static long read_long(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[256];
    long v = -1;
    size_t kl = key ? strlen(key) : 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (!key || !strncmp(line, key, kl)) {
            v = strtol(line + kl, NULL, 10);
            break;
        }
    }
    if (f)
        fclose(f);
    return v;
}

static void check_host(struct doctor *d)
{
    long fwd = read_long("/proc/sys/net/ipv4/ip_forward", NULL);
    say(d, fwd == 1 ? OK : WARN, "ip forwarding", fwd == 1 ? "enabled" :
        "disabled; sysctl -w net.ipv4.ip_forward=1 for routed tap/bridge networking "
        "(-netdev user needs nothing)");
    long kib = read_long("/proc/meminfo", "MemAvailable:");
    if (kib < 0)
        say(d, WARN, "memory", "cannot read /proc/meminfo");
    else
        say(d, kib >= (1L << 20) ? OK : WARN, "memory", "%ld MiB available%s", kib >> 10,
            kib >= (1L << 20) ? "" : "; guests with -m larger than this will swap");
}

int doctor_run(FILE *out)
{
    struct doctor d = { .out = out };
    check_kvm(&d);
    check_group(&d);
    check_tun(&d);
    check_bridge(&d);
    check_host(&d);
    return d.fails ? 1 : 0;
}
