#!/usr/bin/env bash
# The Debian test guest with virtio disks, entropy and a serial port, in one boot:
# five ext4 disks (raw, qcow2, qcow2 over a raw backing file, raw with
# cache=none, raw with snapshot=on) each mounted, a host file read, files
# written, synced and unmounted before power-off. Then the host finds exactly
# those files with debugfs, qemu-img check is clean, the backing file and the
# snapshot=on image are untouched. Meanwhile a second VM opening the raw image
# read-write is refused. /dev/hwrng gives data; a named virtserialport shows
# its name. (The virtconsole round trip is t-console.sh.)
. "$(dirname "$0")/../lib.sh"
G=$("$TOP/scripts/guest.sh") || { not_ok "build the test guest"; done_testing; }

mkdir -p "$T/seed"
head -c 200000 /dev/urandom > "$T/seed/host.bin"
host_sha=$(sha256sum < "$T/seed/host.bin" | cut -c1-64)
mkfs() { mkfs.ext4 -q -F -d "$T/seed" -L "$2" "$1" 32M >/dev/null; }
mkfs "$T/raw.img" raw
mkfs "$T/q.raw" qcow2 && qemu-img convert -f raw -O qcow2 "$T/q.raw" "$T/q.qcow2" && rm "$T/q.raw"
mkfs "$T/base.raw" backed && qemu-img create -q -f qcow2 -b "$T/base.raw" -F raw "$T/top.qcow2"
mkfs "$T/direct.img" direct
mkfs "$T/snap.img" snap
base_sum=$(sha256sum < "$T/base.raw")
snap_sum=$(sha256sum < "$T/snap.img")

GCMD='for d in vda vdb vdc vdd vde; do
  mkdir -p /mnt/$d && mount -t ext4 /dev/$d /mnt/$d || echo MOUNTFAIL $d
  echo HOST $d $(sha256sum < /mnt/$d/host.bin | cut -c1-64)
  echo "written by the guest on $d" > /mnt/$d/guest-$d.txt
  dd if=/dev/urandom of=/mnt/$d/blob bs=4096 count=50 2>/dev/null
  echo BLOB $d $(sha256sum < /mnt/$d/blob | cut -c1-64)
done
sync
for d in vda vdb vdc vdd vde; do umount /mnt/$d || echo UMOUNTFAIL $d; done
echo RNG $(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | od -An -tx1 | tr -d " \n")
echo PORTNAME $(cat /sys/class/virtio-ports/vport*p1/name 2>/dev/null)
'

timeout 900 "$QUOKKA" -m 256M -kernel "$G/vmlinuz" -initrd "$G/initrd.gz" -display none \
    -monitor none -serial stdio -no-reboot \
    -append "console=ttyS0 quiet panic=-1 $("$TOP/scripts/guest-cmd.sh" "$GCMD")" \
    -drive file="$T/raw.img",format=raw,if=virtio \
    -drive file="$T/q.qcow2",if=none,id=d1,cache=writeback \
    -device virtio-blk-pci,drive=d1,serial=QCOW2DISK \
    -drive file="$T/top.qcow2",format=qcow2,if=virtio,discard=unmap \
    -drive file="$T/direct.img",format=raw,if=virtio,cache=none,aio=io_uring \
    -drive file="$T/snap.img",format=raw,if=virtio,snapshot=on \
    -device virtio-rng-pci \
    -chardev null,id=ga \
    -device virtio-serial-pci,id=vser \
    -device virtserialport,chardev=ga,name=org.qemu.guest_agent.0 \
    </dev/null >"$T/out" 2>"$T/err" &
vm=$!

# While it runs: the image is locked against a second writer.
# (Only once the first VM has the image open, so it cannot lose the race.)
# ($vm is timeout's pid; quokka is its child.)
for _ in $(seq 100); do
    ls -l /proc/$vm/fd $(pgrep -P $vm | sed 's|.*|/proc/&/fd|') 2>/dev/null | grep -q raw.img && break
    sleep 0.2
done
sleep 1
timeout 20 "$QUOKKA" -S -display none -monitor none -serial none \
    -drive file="$T/raw.img",format=raw,if=virtio </dev/null >"$T/out2" 2>"$T/err2"
rc2=$?
check_eq "second VM on the same image exits 1" 1 "$rc2"
grep -q 'Failed to get "write" lock' "$T/err2" && ok "second VM: write lock refused" ||
    { not_ok "second VM: write lock refused"; sed 's/^/#   /' "$T/err2" | head -5; }

wait $vm
rc=$?
out=$(tr -d '\r' < "$T/out")
check_eq "guest powers off with status 0" 0 "$rc"
echo "$out" | grep -q "quokka: exit status 0" && ok "guest command ran" ||
    { not_ok "guest command ran"; echo "$out" | tail -20 | sed 's/^/#   /'; sed 's/^/#   /' "$T/err" | tail -5; }
echo "$out" | grep -q "MOUNTFAIL\|UMOUNTFAIL" && not_ok "mount and umount every disk" ||
    ok "mount and umount every disk"
for d in vda vdb vdc vdd vde; do
    check_eq "$d: host file read back" "$host_sha" "$(echo "$out" | awk -v d=$d '$1 == "HOST" && $2 == d { print $3 }')"
done

# The host's view: exactly the guest's files, with the guest's bytes.
files() {   # files RAWIMAGE -> sorted names in /
    debugfs -R "ls -p /" "$1" 2>/dev/null | awk -F/ 'NF > 5 && $6 != "." && $6 != ".." { print $6 }' | sort | tr '\n' ' '
}
verify() {  # verify NAME DEV IMAGE_AS_RAW
    local name=$1 d=$2 img=$3
    check_eq "$name: the files the guest left" "blob guest-$d.txt host.bin lost+found " "$(files "$img")"
    check_eq "$name: the guest's text" "written by the guest on $d" "$(debugfs -R "cat /guest-$d.txt" "$img" 2>/dev/null)"
    check_eq "$name: the guest's blob" "$(echo "$out" | awk -v d=$d '$1 == "BLOB" && $2 == d { print $3 }')" \
        "$(debugfs -R "cat /blob" "$img" 2>/dev/null | sha256sum | cut -c1-64)"
    check "$name: e2fsck clean" e2fsck -fn "$img"
}
verify raw vda "$T/raw.img"
check "qcow2: qemu-img check clean" qemu-img check -q "$T/q.qcow2"
qemu-img convert -O raw "$T/q.qcow2" "$T/q.conv"
verify qcow2 vdb "$T/q.conv"
check "qcow2 over backing: qemu-img check clean" qemu-img check -q "$T/top.qcow2"
qemu-img convert -O raw "$T/top.qcow2" "$T/top.conv"
verify "qcow2 over backing" vdc "$T/top.conv"
check_eq "backing file untouched" "$base_sum" "$(sha256sum < "$T/base.raw")"
verify "cache=none" vdd "$T/direct.img"
check_eq "snapshot=on: image untouched" "$snap_sum" "$(sha256sum < "$T/snap.img")"
check_eq "snapshot=on: no guest files on the host" "host.bin lost+found " "$(files "$T/snap.img")"
left=$(ls "${TMPDIR:-/var/tmp}"/vl.* 2>/dev/null | wc -l)
check_eq "snapshot=on: no overlay left behind" 0 "$left"

rng=$(echo "$out" | awk '$1 == "RNG" { print $2 }')
[ ${#rng} -eq 128 ] && [ "$rng" != "$(printf '0%.0s' $(seq 128))" ] && ok "/dev/hwrng gives 64 bytes" ||
    not_ok "/dev/hwrng gives 64 bytes (got '$rng')"
check_eq "virtserialport carries its name" "org.qemu.guest_agent.0" \
    "$(echo "$out" | awk '$1 == "PORTNAME" { print $2 }')"
done_testing
