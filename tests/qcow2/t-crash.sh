#!/usr/bin/env bash
# Crash safety: a writer (quokka-io) is killed with SIGKILL at random moments,
# 40 times. After each kill `qemu-img check` must find no corruption (leaks
# are allowed) and every write completed before a finished flush must read
# back. Writes are partial-cluster, compressed, zeroes and discards, on two
# images: default clusters; 512-byte clusters with 64-bit refcounts so
# refcount blocks and the refcount table grow all the time; and extended L2
# entries (sub-cluster allocation) with zstd.
. "$(dirname "$0")/../lib.sh"
QIO=${QUOKKA_IO:-$BUILD/quokka-io}
for b in "$QUOKKA_IMG" "$QIO"; do [ -x "$b" ] || { echo "Bail out! $b not built"; exit 1; }; done
command -v qemu-img >/dev/null || { echo "Bail out! qemu-img not installed"; exit 1; }
cd "$T" || exit 1
"$QUOKKA_IMG" create -q -f qcow2 a.qcow2 1G || { echo "Bail out! create"; exit 1; }
"$QUOKKA_IMG" create -q -f qcow2 -o cluster_size=512,refcount_bits=64 b.qcow2 1G ||
    { echo "Bail out! create"; exit 1; }
"$QUOKKA_IMG" create -q -f qcow2 -o extended_l2=on,compression_type=zstd c.qcow2 1G ||
    { echo "Bail out! create"; exit 1; }

QIO="$QIO" KILLS=${CRASH_KILLS:-40} python3 - <<'PY'
import os, random, signal, subprocess, sys, time
qio, kills = os.environ['QIO'], int(os.environ['KILLS'])
random.seed(int(os.environ.get('CRASH_SEED', '12345')))
fails = 0
def tap(ok, name):
    global fails
    print(('ok - ' if ok else 'not ok - ') + name, flush=True)
    fails += 0 if ok else 1

N = 48                       # writes per run
imgs = ['a.qcow2', 'b.qcow2', 'c.qcow2']
est = {i: 0.05 for i in imgs}
durable = {i: [] for i in imgs}   # (off, len, pattern) known on disk
for run in range(kills):
    img = imgs[run % 3]
    base = (run // 3) * N * 160 * 1024
    cmds, plan = [], []
    for j in range(N):
        off = base + j * 160 * 1024 + random.choice([0, 512, 1536, 7 * 1024])
        ln = random.choice([4096, 40 * 1024, 65536, 70 * 1024])
        pat = random.randint(1, 255)
        if j % 11 == 5:
            off = (base + j * 160 * 1024 + 65535) // 65536 * 65536
            ln = 65536
            cmds.append('write -c -P %d %d %d' % (pat, off, ln))
        else:
            cmds.append('write -P %d %d %d' % (pat, off, ln))
        plan.append((off, ln, pat))
        if j % 9 == 4 and durable[img]:
            # Zero or discard an older durable write: it leaves the checked set.
            k = random.randrange(len(durable[img]))
            o, l, _ = durable[img].pop(k)
            cmds.append(random.choice(['discard %d %d', 'write -z %d %d', 'write -z -u %d %d']) % (o, l))
        if j % 6 == 5:
            cmds.append('flush')
            cmds.append('echo F %d' % j)
    p = subprocess.Popen([qio] + sum((['-c', c] for c in cmds), []) + [img],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Aim the kill inside the run: learn each image's run time as we go.
    t0 = time.time()
    deadline = t0 + random.uniform(0.002, est[img])
    while time.time() < deadline and p.poll() is None:
        time.sleep(0.001)
    if p.poll() is not None:
        est[img] = max(est[img], (time.time() - t0) * 0.9)
    else:
        p.send_signal(signal.SIGKILL)
    out, _ = p.communicate()
    done = -1
    for line in out.splitlines():
        if line.startswith('F '):
            done = int(line.split()[1])
    if done + 1 < N // 2:
        est[img] = min(est[img] * 1.6, 3.0)
    r = subprocess.run(['qemu-img', 'check', img], capture_output=True, text=True)
    tap(r.returncode in (0, 3), 'kill %d (%s, %d writes flushed): check finds no corruption'
        % (run, img, done + 1))
    if r.returncode not in (0, 3):
        print('#   ' + (r.stdout + r.stderr).replace('\n', '\n#   ')[:2000])
        break
    # Regions touched by unflushed commands are not checked; flushed ones are.
    durable[img] += [w for w in plan[:done + 1]]
    last = {}
    for o, l, pat in durable[img]:
        last[(o, l)] = pat
    overlapping = set()
    for o, l, pat in plan[done + 1:]:
        for (o2, l2) in list(last):
            if o < o2 + l2 and o2 < o + l:
                overlapping.add((o2, l2))
    reads = ['read -P %d %d %d' % (pat, o, l) for (o, l), pat in last.items()
             if (o, l) not in overlapping]
    durable[img] = [(o, l, pat) for (o, l), pat in last.items() if (o, l) not in overlapping]
    if reads:
        r = subprocess.run(['qemu-io', '-r'] + sum((['-c', c] for c in reads), []) + [img],
                           capture_output=True, text=True)
        bad = [x for x in r.stdout.splitlines() if 'verification failed' in x]
        tap(not bad and r.returncode == 0, 'kill %d: %d flushed writes read back' % (run, len(reads)))
        for x in bad[:5]:
            print('#   ' + x)
sys.exit(1 if fails else 0)
PY
rc=$?
[ $rc -eq 0 ] || FAILS=$((FAILS + 1))
for img in a.qcow2 b.qcow2 c.qcow2; do
    check "$img: our writer reopens it after the crashes" "$QIO" -c "write -P 1 0 64k" -c "read -P 1 0 64k" $img
    qemu-img check $img >check.txt 2>&1; rc=$?
    check_eq "$img: final check has no corruption (0 or 3)" yes "$([ $rc = 0 ] || [ $rc = 3 ] && echo yes || echo no)"
done
done_testing
