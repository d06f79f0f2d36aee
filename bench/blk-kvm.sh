#!/usr/bin/env bash
# virtio-blk under KVM against the host itself (issue: the device path
# should reach 80% of what the host gets from the same file). The test
# guest (testguest/, blkbench=MIB) reads then writes the first MIB MiB of
# a raw image sequentially through virtio-blk with cache=none, polling
# the used ring at CPL3; the host does the same I/O on the same file with
# O_DIRECT: fio with io_uring (what Quokka's block layer uses) at the
# guest's depth, or dd (one in flight) without fio. 1 MiB requests. The
# guest's phases are timed as their marker lines arrive on the serial
# port. Host and guest runs alternate, BLKK_RUNS rounds; best and median
# MB/s of each, and guest/host of both.
#
#   bench/blk-kvm.sh    (BUILD=build; BLKK_MIB=256; BLKK_RUNS=5; BLKK_DEPTH=1)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
Q=${QUOKKA:-$BUILD/quokka}
MIB=${BLKK_MIB:-256}
RUNS=${BLKK_RUNS:-5}
DEPTH=${BLKK_DEPTH:-1}
[ -x "$Q" ] || { echo "build quokka first ($Q)"; exit 1; }
[ -w /dev/kvm ] || { echo "no usable /dev/kvm"; exit 1; }
make -s -C "$TOP/testguest" OUT="$BUILD/testguest" || exit 1
G=$BUILD/testguest/testguest.bin
# On the build's file system, not a tmpfs: O_DIRECT needs a real one.
W=$(mktemp -d "$BUILD/blk-kvm.XXXXXX")
trap 'rm -rf "$W"' EXIT
dd if=/dev/urandom of="$W/disk.raw" bs=1M count="$MIB" status=none || exit 1

python3 - "$RUNS" "$MIB" "$DEPTH" "$G" "$Q" "$W/disk.raw" <<'PY'
import json, shutil, statistics, subprocess, sys, time
runs, mib, depth, guest, quokka, disk = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                         sys.argv[4], sys.argv[5], sys.argv[6])
size = mib << 20

fio = shutil.which("fio")

def host(kind):
    if fio:
        out = subprocess.run([fio, "--name=h", "--filename=" + disk, "--rw=" + kind, "--bs=1M",
                              "--size=%dM" % mib, "--direct=1", "--ioengine=io_uring",
                              "--iodepth=%d" % depth, "--output-format=json"],
                             check=True, capture_output=True).stdout
        return json.loads(out)["jobs"][0][kind]["bw_bytes"] / 1e6
    io = (["if=" + disk, "of=/dev/null", "iflag=direct"] if kind == "read" else
          ["if=/dev/zero", "of=" + disk, "oflag=direct", "conv=notrunc"])
    t0 = time.monotonic()
    subprocess.run(["dd", "bs=1M", "count=%d" % mib, "status=none"] + io, check=True)
    return size / (time.monotonic() - t0) / 1e6

def quokka_run():
    cmd = [quokka, "-accel", "kvm", "-m", "%d" % (64 + 32 * depth), "-kernel", guest,
           "-append", "blkbench=%d blkreq=1024 blkdepth=%d" % (mib, depth),
           "-drive", "file=%s,if=virtio,format=raw,cache=none" % disk,
           "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    marks, buf = {}, b""
    for line in iter(p.stdout.readline, b""):
        line = line.strip()
        if line.startswith(b"blkbench: "):
            marks[line[10:].decode()] = time.monotonic()
    p.wait()
    if p.returncode != 0 or "read done" not in marks or "write done" not in marks:
        print("quokka: the benchmark guest failed (%s)" % sorted(marks))
        sys.exit(1)
    return (size / (marks["read done"] - marks["read"]) / 1e6,
            size / (marks["write done"] - marks["write"]) / 1e6)

res = {"host read": [], "host write": [], "guest read": [], "guest write": []}
for _ in range(runs):
    res["host read"].append(host("read"))
    r, w = quokka_run()
    res["guest read"].append(r)
    res["guest write"].append(w)
    res["host write"].append(host("write"))
print("%d MiB sequential, 1 MiB requests, depth %d, %d rounds; host: %s" %
      (mib, depth, runs, "fio io_uring" if fio else "dd"))
print("%-12s %10s %10s" % ("MB/s", "best", "median"))
for k, v in res.items():
    print("%-12s %10.0f %10.0f" % (k, max(v), statistics.median(v)))
for k in ("read", "write"):
    g, h = res["guest " + k], res["host " + k]
    print("guest/host %-5s best %.0f%%, median %.0f%%" %
          (k, 100 * max(g) / max(h), 100 * statistics.median(g) / statistics.median(h)))
PY
