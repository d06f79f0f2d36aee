#!/usr/bin/env bash
# The freestanding test guest (testguest/) under KVM, Quokka against QEMU
# with -enable-kvm: process start -> the guest's first instruction (its
# entry writes one byte to COM1 first) and -> exit after ACPI power-off;
# and memory overhead, the process RSS minus the RSS of the guest RAM
# mapping (what the guest touched), read while the guest holds still
# ("hold" on its command line). Best and median of KVM_RUNS runs: the
# best shows the cost itself, the median what a loaded host adds.
#
# QEMU runs with kernel_irqchip=split: with its in-kernel 8259 on PVM
# hosts the guest receives IRQ0 at the BIOS's vector and never finishes.
#
#   bench/kvm.sh        (BUILD=build; KVM_RUNS=9; KVM_MEM=64)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
Q=${QUOKKA:-$BUILD/quokka}
QEMU=${QEMU:-qemu-system-x86_64}
RUNS=${KVM_RUNS:-9}
MEM=${KVM_MEM:-64}
[ -x "$Q" ] || { echo "build quokka first ($Q)"; exit 1; }
command -v "$QEMU" >/dev/null || { echo "no $QEMU (apt-get install qemu-system-x86)"; exit 1; }
make -s -C "$TOP/testguest" OUT="$BUILD/testguest" || exit 1
G=$BUILD/testguest/testguest.bin

python3 - "$RUNS" "$MEM" "$G" "$Q" "$QEMU" <<'PY'
import os, signal, statistics, subprocess, sys, time
runs, mem, guest, quokka, qemu = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
common = ["-m", str(mem), "-kernel", guest, "-display", "none", "-serial", "stdio",
          "-monitor", "none", "-no-reboot"]
cmds = {"quokka": [quokka, "-accel", "kvm"] + common,
        "qemu": [qemu, "-enable-kvm", "-machine", "kernel_irqchip=split"] + common}

def timed(cmd):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    first = None
    out = b""
    for chunk in iter(lambda: p.stdout.read1(4096), b""):
        if first is None:
            first = time.monotonic() - t0
        out += chunk
    p.wait()
    ok = p.returncode == 0 and b"testguest: all passed" in out
    return first, time.monotonic() - t0, ok

def rss_kib(pid, lo, hi):
    total = ram = 0
    size = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                a, b = (int(x, 16) for x in parts[0].split("-"))
                size = (b - a) // 1024
            elif parts[0] == "Rss:":
                total += int(parts[1])
                if lo <= size <= hi:
                    ram += int(parts[1])
    return total, ram

def overhead(cmd):
    p = subprocess.Popen(cmd + ["-append", "hold"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = b""
    for chunk in iter(lambda: p.stdout.read1(4096), b""):
        out += chunk
        if b"testguest: holding" in out:
            break
    time.sleep(0.05)
    total, ram = rss_kib(p.pid, mem * 1024, mem * 1024 + 4096)
    p.kill()
    p.wait()
    return total, ram

res = {}
for name, cmd in cmds.items():
    firsts, exits = [], []
    for _ in range(runs):
        f, e, ok = timed(cmd)
        if not ok:
            print("%s: the guest did not pass" % name)
            sys.exit(1)
        firsts.append(f)
        exits.append(e)
    total, ram = overhead(cmd)
    res[name] = (min(firsts) * 1e3, statistics.median(firsts) * 1e3,
                 min(exits) * 1e3, statistics.median(exits) * 1e3, total, ram)
print("%-7s %22s %22s %9s %9s %9s" % ("", "first insn ms best/med", "exit ms best/med",
                                     "RSS KiB", "guest KiB", "overhead"))
for name, (fb, fm, eb, em, total, ram) in res.items():
    print("%-7s %10.2f / %9.2f %10.2f / %9.2f %9d %9d %9d" % (name, fb, fm, eb, em, total, ram,
                                                            total - ram))
q, r = res["quokka"], res["qemu"]
print("qemu/quokka (best): first insn %.0fx, exit %.0fx; overhead %.0fx" %
      (r[0] / q[0], r[2] / q[2], (r[4] - r[5]) / max(1, q[4] - q[5])))
PY
