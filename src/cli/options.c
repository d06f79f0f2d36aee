/* Option table and parsers: each option is one row (name, whether it takes
 * an argument, handler). Options of features that do not exist yet have a
 * row with no handler, so they fail with "not supported yet" rather than
 * "invalid option" (and are never silently accepted). */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "accel/emu/cpu.h"
#include "cli/drive.h"
#include "cli/netdev.h"
#include "util/opts.h"
#include "util/version.h"

#define MAX_CPUS 255            /* xAPIC IDs; no x2APIC yet */

struct cli_option {
    const char *name;
    bool has_arg;
    int (*parse)(struct cli *c, const char *arg, struct error *err);
};

static int opt_m(struct cli *c, const char *arg, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, arg, "size", err) < 0)
        return -EINVAL;
    const char *v = opts_get(&o, "size");
    int r = 0;
    uint64_t size = 0;
    if (opts_get(&o, "slots") || opts_get(&o, "maxmem"))
        r = error_set(err, -ENOTSUP, "memory hotplug (slots, maxmem) is not supported yet");
    else if (!r)
        r = opts_check_unused(&o, err);
    if (!r && (!v || parse_size(v, 1 << 20, &size) < 0))
        r = error_set(err, -EINVAL, "invalid RAM size '%s' (try 512M or 2G)", v ? v : "");
    if (!r && size < (1 << 20))
        r = error_set(err, -EINVAL, "RAM size must be at least 1 MiB");
    if (!r && size > (1ULL << 46))
        r = error_set(err, -ERANGE, "RAM size is too large (at most 64 TiB)");
    opts_free(&o);
    if (r)
        return r;
    c->cfg.ram_size = (size + 4095) & ~4095ULL;
    return 0;
}

/* -smp N[,cpus=N][,sockets=S][,cores=C][,threads=T][,maxcpus=N]. Missing
 * topology counts are derived as QEMU does: sockets first, then cores. */
static int opt_smp(struct cli *c, const char *arg, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, arg, "cpus", err) < 0)
        return -EINVAL;
    const uint64_t unset = UINT64_MAX;
    uint64_t cpus, sockets, cores, threads, maxcpus;
    int r = opts_get_u64(&o, "cpus", unset, &cpus, err);
    if (!r) r = opts_get_u64(&o, "sockets", unset, &sockets, err);
    if (!r) r = opts_get_u64(&o, "cores", unset, &cores, err);
    if (!r) r = opts_get_u64(&o, "threads", unset, &threads, err);
    if (!r) r = opts_get_u64(&o, "maxcpus", unset, &maxcpus, err);
    if (!r) r = opts_check_unused(&o, err);
    opts_free(&o);
    if (r)
        return r;
    if (!cpus || !sockets || !cores || !threads || !maxcpus)
        return error_set(err, -EINVAL, "Invalid CPU topology: CPU topology parameters must "
                         "be greater than zero");
    if (threads == unset)
        threads = 1;
    if (cpus == unset)
        cpus = maxcpus != unset ? maxcpus : (sockets != unset ? sockets : 1) *
               (cores != unset ? cores : 1) * threads;
    if (cores == unset && sockets != unset)
        cores = cpus / (sockets * threads) ? cpus / (sockets * threads) : 1;
    if (cores == unset)
        cores = 1;
    if (sockets == unset)
        sockets = cpus / (cores * threads) ? cpus / (cores * threads) : 1;
    if (maxcpus == unset)
        maxcpus = cpus;
    if (cpus < 1 || cpus > MAX_CPUS)
        return error_set(err, -EINVAL, "Invalid SMP CPUs %llu: must be 1..%d",
                         (unsigned long long)cpus, MAX_CPUS);
    if (sockets * cores * threads != maxcpus)
        return error_set(err, -EINVAL, "Invalid CPU topology: product of the hierarchy "
                         "must match maxcpus: sockets (%llu) * cores (%llu) * threads (%llu) "
                         "!= maxcpus (%llu)", (unsigned long long)sockets,
                         (unsigned long long)cores, (unsigned long long)threads,
                         (unsigned long long)maxcpus);
    if (maxcpus != cpus)
        return error_set(err, -ENOTSUP, "CPU hotplug (maxcpus > cpus) is not supported yet");
    c->cfg.smp = cpus;
    return 0;
}

static int set_accel(struct cli *c, const char *name, struct error *err)
{
    enum accel_kind k;
    if (!strcmp(name, "emu") || !strcmp(name, "tcg"))
        k = ACCEL_EMU;
    else if (!strcmp(name, "kvm"))
        k = ACCEL_KVM;
    else if (!strcmp(name, "kvm:emu") || !strcmp(name, "kvm:tcg"))
        k = ACCEL_KVM_OR_EMU;
    else
        return error_set(err, -EINVAL, "invalid accelerator %s (use emu, kvm or kvm:emu)", name);
    /* A second -accel is a fallback, as in QEMU: "-accel kvm -accel tcg". */
    if (c->accel_given && c->cfg.accel == ACCEL_KVM && k == ACCEL_EMU)
        k = ACCEL_KVM_OR_EMU;
    c->cfg.accel = k;
    c->accel_given = true;
    return 0;
}

/* kernel-irqchip=split|off (kvm's; "on" is refused there, naming why). */
static int set_kernel_irqchip(struct cli *c, const char *v, struct error *err)
{
    static const char *const modes[] = { "on", "off", "split" };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (!strcmp(v, modes[i])) {
            c->cfg.kernel_irqchip = modes[i];    /* a constant: the option string goes */
            return 0;
        }
    }
    return error_set(err, -EINVAL, "kernel-irqchip=%s: use on, off or split", v);
}

static int opt_accel(struct cli *c, const char *arg, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, arg, "accel", err) < 0)
        return -EINVAL;
    const char *a = opts_get(&o, "accel"), *irqchip = opts_get(&o, "kernel-irqchip");
    int r = opts_check_unused(&o, err);
    if (!r && irqchip)
        r = set_kernel_irqchip(c, irqchip, err);
    if (!r)
        r = a ? set_accel(c, a, err) : error_set(err, -EINVAL, "no accelerator given");
    opts_free(&o);
    return r;
}

static int opt_enable_kvm(struct cli *c, const char *arg, struct error *err)
{
    return set_accel(c, "kvm", err);
}

static int opt_machine(struct cli *c, const char *arg, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, arg, "type", err) < 0)
        return -EINVAL;
    const char *type = opts_get(&o, "type"), *accel = opts_get(&o, "accel");
    const char *irqchip = opts_get(&o, "kernel_irqchip");
    int r = opts_check_unused(&o, err);
    if (!r && irqchip)
        r = set_kernel_irqchip(c, irqchip, err);
    if (!r && type && !strcmp(type, "help")) {
        printf("Supported machines are:\n"
               "pc                   Standard PC (i440FX + PIIX, 1996) (default)\n");
        r = 1;
    } else if (!r && type && strcmp(type, "pc"))
        r = error_set(err, -EINVAL, "unsupported machine type '%s' (only 'pc'; use -machine help)",
                      type);
    if (!r && accel)
        r = set_accel(c, accel, err);
    opts_free(&o);
    return r;
}

static int opt_kernel(struct cli *c, const char *arg, struct error *err) { c->cfg.kernel = arg; return 0; }
static int opt_initrd(struct cli *c, const char *arg, struct error *err) { c->cfg.initrd = arg; return 0; }
static int opt_append(struct cli *c, const char *arg, struct error *err) { c->cfg.append = arg; return 0; }
static int opt_no_reboot(struct cli *c, const char *arg, struct error *err) { c->cfg.no_reboot = true; return 0; }
static int opt_no_shutdown(struct cli *c, const char *arg, struct error *err) { c->cfg.no_shutdown = true; return 0; }
static int opt_S(struct cli *c, const char *arg, struct error *err) { c->cfg.start_paused = true; return 0; }
static int opt_pidfile(struct cli *c, const char *arg, struct error *err) { c->pidfile = arg; return 0; }
static int opt_daemonize(struct cli *c, const char *arg, struct error *err) { c->daemonize = true; return 0; }
static int opt_D(struct cli *c, const char *arg, struct error *err) { c->logfile = arg; return 0; }
static int opt_nographic(struct cli *c, const char *arg, struct error *err) { c->nographic = true; return 0; }

/* Keep a copy of an option value beyond the opts it came from. */
static const char *cli_keep(struct cli *c, const char *s)
{
    if (!s || c->n_owned >= (int)(sizeof(c->owned) / sizeof(c->owned[0])))
        return NULL;
    return c->owned[c->n_owned++] = strdup(s);
}

void cli_free(struct cli *c)
{
    for (int i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    c->n_owned = 0;
}

static int opt_name(struct cli *c, const char *arg, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, arg, "guest", err) < 0)
        return -EINVAL;
    const char *g = opts_get(&o, "guest"), *p = opts_get(&o, "process");
    int r = opts_check_unused(&o, err);
    if (!r) {
        c->cfg.name = cli_keep(c, g);
        c->process_name = cli_keep(c, p);
    }
    opts_free(&o);
    return r;
}

static const struct { const char *name; unsigned bit; const char *help; } log_items[] = {
    { "int", X86_LOG_INT, "show interrupts/exceptions in short format" },
    { "cpu_reset", X86_LOG_CPU_RESET, "show CPU state before CPU resets" },
    { "unimp", X86_LOG_UNIMP, "log unimplemented functionality" },
    { "guest_errors", X86_LOG_GUEST_ERRORS,
      "log when the guest OS does something invalid (eg accessing a non-existent register)" },
};

static int opt_d(struct cli *c, const char *arg, struct error *err)
{
    if (!strcmp(arg, "help")) {
        printf("Log items (comma separated):\n");
        for (size_t i = 0; i < sizeof(log_items) / sizeof(log_items[0]); i++)
            printf("%-15s %s\n", log_items[i].name, log_items[i].help);
        return 1;
    }
    char *s = strdup(arg), *save = NULL;
    int r = 0;
    for (char *t = strtok_r(s, ",", &save); t && !r; t = strtok_r(NULL, ",", &save)) {
        size_t i;
        for (i = 0; i < sizeof(log_items) / sizeof(log_items[0]); i++)
            if (!strcmp(t, log_items[i].name))
                break;
        if (i == sizeof(log_items) / sizeof(log_items[0]))
            r = error_set(err, -EINVAL, "unknown or unsupported log item '%s' (see -d help)", t);
        else
            c->cfg.log_mask |= log_items[i].bit;
    }
    free(s);
    return r;
}

static int opt_display(struct cli *c, const char *arg, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, arg, "type", err) < 0)
        return -EINVAL;
    const char *t = opts_get(&o, "type");
    int r = opts_check_unused(&o, err);
    if (!r && t && !strcmp(t, "none"))
        c->display_none = true;
    else if (!r)
        r = error_set(err, -ENOTSUP, "display '%s' is not supported yet (only 'none')",
                      t ? t : "");
    opts_free(&o);
    return r;
}

static int opt_serial(struct cli *c, const char *arg, struct error *err)
{
    if (c->n_serial >= CLI_MAX_SERIAL)
        return error_set(err, -EINVAL, "too many serial ports (at most %d)", CLI_MAX_SERIAL);
    c->serial[c->n_serial++] = arg;
    return 0;
}

static int add_monitor(struct cli *c, const char *spec, struct error *err)
{
    if (c->n_monitor >= CLI_MAX_MONITOR)
        return error_set(err, -EINVAL, "too many monitors (at most %d)", CLI_MAX_MONITOR);
    c->monitor[c->n_monitor++] = spec;
    return 0;
}

static int opt_monitor(struct cli *c, const char *arg, struct error *err)
{
    return add_monitor(c, arg, err);
}

/* -mon chardev=ID[,mode=readline]: QMP (mode=control) comes later. */
static int opt_mon(struct cli *c, const char *arg, struct error *err)
{
    struct opts o;
    if (opts_parse(&o, arg, "chardev", err) < 0)
        return -EINVAL;
    const char *id = opts_get(&o, "chardev"), *mode = opts_get(&o, "mode");
    int r = opts_check_unused(&o, err);
    if (!r && !id)
        r = error_set(err, -EINVAL, "Parameter 'chardev' is missing");
    if (!r && mode && strcmp(mode, "readline"))
        r = error_set(err, -ENOTSUP, "monitor mode '%s' is not supported yet (only readline)",
                      mode);
    if (!r) {
        char spec[300];
        snprintf(spec, sizeof(spec), "chardev:%s", id);
        const char *kept = cli_keep(c, spec);
        r = kept ? add_monitor(c, kept, err) : error_set(err, -E2BIG, "too many -mon options");
    }
    opts_free(&o);
    return r;
}

static int opt_chardev(struct cli *c, const char *arg, struct error *err)
{
    if (c->n_chardev >= CLI_MAX_CHARDEV)
        return error_set(err, -EINVAL, "too many -chardev options");
    c->chardev[c->n_chardev++] = arg;
    return 0;
}

static int opt_help(struct cli *c, const char *arg, struct error *err)
{
    cli_usage();
    return 1;
}

/* -cpu MODEL[,+feat,-feat,feat=on|off]: the accelerator checks the model
 * and its flags (kvm: host, max, qemu64 and named models). */
static int opt_cpu(struct cli *c, const char *arg, struct error *err)
{
    c->cfg.cpu_model = arg;
    return 0;
}

static int opt_version(struct cli *c, const char *arg, struct error *err)
{
    printf("Quokka emulator version %s\n", QUOKKA_VERSION);
    return 1;
}

static const struct cli_option options[] = {
    { "m", true, opt_m },
    { "smp", true, opt_smp },
    { "kernel", true, opt_kernel },
    { "initrd", true, opt_initrd },
    { "append", true, opt_append },
    { "name", true, opt_name },
    { "no-reboot", false, opt_no_reboot },
    { "no-shutdown", false, opt_no_shutdown },
    { "S", false, opt_S },
    { "pidfile", true, opt_pidfile },
    { "daemonize", false, opt_daemonize },
    { "D", true, opt_D },
    { "d", true, opt_d },
    { "accel", true, opt_accel },
    { "enable-kvm", false, opt_enable_kvm },
    { "cpu", true, opt_cpu },
    { "machine", true, opt_machine },
    { "M", true, opt_machine },
    { "nographic", false, opt_nographic },
    { "display", true, opt_display },
    { "serial", true, opt_serial },
    { "chardev", true, opt_chardev },
    { "monitor", true, opt_monitor },
    { "mon", true, opt_mon },
    { "version", false, opt_version },
    { "h", false, opt_help },
    { "help", false, opt_help },
    /* Drives and devices (drive.c, device.c) and networks (net/). */
    { "drive", true, cli_opt_drive }, { "hda", true, cli_opt_hda }, { "hdb", true, cli_opt_hdb },
    { "blockdev", true, cli_opt_blockdev }, { "snapshot", false, cli_opt_snapshot },
    { "device", true, cli_opt_device },
    /* Later features (rows without a handler): "not supported yet". */
    { "hdc", true, NULL }, { "hdd", true, NULL }, { "cdrom", true, NULL },
    { "fda", true, NULL }, { "fdb", true, NULL },
    { "boot", true, NULL }, { "bios", true, NULL }, { "global", true, NULL }, { "object", true, NULL },
    { "netdev", true, cli_opt_netdev }, { "net", true, cli_opt_net }, { "nic", true, cli_opt_nic },
    { "vnc", true, NULL }, { "vga", true, NULL }, { "sdl", false, NULL },
    { "spice", true, NULL }, { "full-screen", false, NULL }, { "k", true, NULL },
    { "usb", false, NULL }, { "usbdevice", true, NULL }, { "audiodev", true, NULL },
    { "qmp", true, NULL }, { "qmp-pretty", true, NULL },
    { "numa", true, NULL }, { "mem-path", true, NULL }, { "mem-prealloc", false, NULL },
    { "rtc", true, NULL }, { "parallel", true, NULL }, { "virtfs", true, NULL },
    { "fsdev", true, NULL }, { "incoming", true, NULL }, { "loadvm", true, NULL },
    { "gdb", true, NULL }, { "s", false, NULL }, { "smbios", true, NULL },
    { "fw_cfg", true, NULL }, { "uuid", true, NULL }, { "watchdog", true, NULL },
    { "icount", true, NULL }, { "overcommit", true, NULL }, { "trace", true, NULL },
    { "sandbox", true, NULL }, { "runas", true, NULL }, { "chroot", true, NULL },
    { "pflash", true, NULL }, { "option-rom", true, NULL }, { "L", true, NULL },
    { "add-fd", true, NULL }, { "msg", true, NULL }, { "semihosting", false, NULL },
    { "action", true, NULL }, { "iscsi", true, NULL }, { "tpmdev", true, NULL },
    { "plugin", true, NULL }, { "rtc-td-hack", false, NULL }, { "win2k-hack", false, NULL },
    { "no-hpet", false, NULL }, { "no-acpi", false, NULL }, { "no-user-config", false, NULL },
    { "nodefaults", false, NULL }, { "preconfig", false, NULL }, { "dtb", true, NULL },
};

static const struct cli_option *find_option(const char *name)
{
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
        if (!strcmp(options[i].name, name))
            return &options[i];
    return NULL;
}

static int cli_finish(struct cli *c, struct error *err)
{
    if (!c->cfg.kernel && c->cfg.append)
        return error_set(err, -EINVAL, "-append only allowed with -kernel option");
    if (!c->cfg.kernel && c->cfg.initrd)
        return error_set(err, -EINVAL, "-initrd only allowed with -kernel option");
    if (c->daemonize && c->nographic)
        return error_set(err, -EINVAL, "-nographic cannot be used with -daemonize");
    for (int i = 0; c->daemonize && i < c->n_serial + c->n_monitor; i++) {
        const char *s = i < c->n_serial ? c->serial[i] : c->monitor[i - c->n_serial];
        if (strstr(s, "stdio"))
            return error_set(err, -EINVAL, "-daemonize cannot be used with stdio (%s)", s);
    }
    return 0;
}

int cli_parse(struct cli *c, int argc, char **argv, struct error *err)
{
    *c = (struct cli){ .cfg = { .ram_size = 128 << 20, .smp = 1, .accel = ACCEL_EMU } };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            int r = cli_add_image(c, a, err);    /* the bare argument form of -hda */
            if (r < 0)
                return r;
            continue;
        }
        const char *name = a + 1 + (a[1] == '-');     /* --opt is -opt, as in QEMU */
        const struct cli_option *o = find_option(name);
        if (!o)
            return error_set(err, -EINVAL, "%s: invalid option", a);
        if (!o->parse)
            return error_set(err, -ENOTSUP, "%s: not supported yet", a);
        const char *arg = NULL;
        if (o->has_arg) {
            if (i + 1 >= argc)
                return error_set(err, -EINVAL, "%s: requires an argument", a);
            arg = argv[++i];
        }
        int r = o->parse(c, arg, err);
        if (r > 0)
            return 1;
        if (r < 0) {
            error_prepend(err, arg ? "%s %s: " : "%s: ", a, arg);
            return r;
        }
    }
    return cli_finish(c, err);
}

void cli_usage(void)
{
    printf("Quokka emulator version %s\n"
"usage: quokka [options]\n"
"\n"
"Machine:\n"
"-machine|-M pc[,accel=A]  the PC board (the only one; also the default)\n"
"-accel A[,kernel-irqchip=split|off]\n"
"                          emu (our x86-64 CPU; 'tcg' is an alias), kvm, or kvm:emu\n"
"                          (KVM, falling back to emu); a second -accel is a fallback\n"
"-enable-kvm               same as -accel kvm\n"
"-m SIZE[,size=SIZE]       guest RAM, default unit MiB (512, 2G); default 128M\n"
"-smp N[,cpus=N][,sockets=S][,cores=C][,threads=T]  number of vCPUs\n"
"-name NAME[,process=P]    guest name (and host process name)\n"
"\n"
"Boot:\n"
"-kernel FILE              Linux kernel (bzImage)\n"
"-initrd FILE              initial ram disk\n"
"-append CMDLINE           kernel command line\n"
"-S                        do not start the CPUs (use the monitor's 'cont')\n"
"-no-reboot                exit instead of rebooting\n"
"-no-shutdown              stop (not exit) when the guest powers off\n"
"\n"
"Character devices and monitor:\n"
"-nographic                serial port and monitor on this terminal (Ctrl-A h: keys)\n"
"-display none             no display (the only one for now)\n"
"-serial DEV               stdio, mon:DEV, null, none, file:PATH, pty,\n"
"                          unix:PATH[,server][,nowait], tcp:HOST:PORT[,server][,nowait],\n"
"                          chardev:ID  (up to 4 times: COM1..COM4)\n"
"-chardev BACKEND,id=ID[,...]  stdio, null, file (path=), pty,\n"
"                          socket (path= | host=,port=; server=on, wait=off); mux=on\n"
"-monitor DEV              human monitor on DEV (stdio, unix:..., chardev:ID, none)\n"
"-mon chardev=ID[,mode=readline]\n"
"\n"
"Process:\n"
"-pidfile FILE             write the process id to FILE\n"
"-daemonize                detach once the machine is set up\n"
"-d ITEM,...               log items (-d help lists them)\n"
"-D FILE                   log to FILE instead of stderr\n"
"-version, -h, -help\n"
"\n"
"Drives, devices, network:\n"
"-drive file=F[,if=virtio][,format=F][,...]   -hda F, -hdb F, -blockdev ..., -snapshot\n"
"-device MODEL[,...]       PCI devices (-device help lists them)\n"
"-netdev TYPE,id=ID[,...]  user, tap, bridge, socket, hubport; also -net and -nic\n"
"-cpu MODEL[,+FLAG,-FLAG]  CPU model (qemu64 by default) and flags (kvm)\n"
"\n"
"Not supported yet: -cdrom, -boot, -bios, displays other than none, -vnc, -qmp,\n"
"and the other QEMU options without an entry above.\n", QUOKKA_VERSION);
}
