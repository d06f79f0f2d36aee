#!/usr/bin/env bash
# Builds the test guest into build/guest/ (cached): Debian's Linux 6.1
# kernel and busybox-static, packed as
#   build/guest/vmlinuz        the kernel (bzImage)
#   build/guest/initrd.gz      cpio (newc, gzip) initramfs
# The initramfs /init mounts proc, sys and dev, loads the virtio modules
# (block, net, console, rng, and ext4 for the disk tests: they are modules in
# Debian's kernel), then
# runs the command given on the kernel command line and powers off:
#   quokka.cmd=<base64 of a shell command>    run it with sh -c, print
#                                             "quokka: exit status N", poweroff -f
#   (no quokka.cmd)                           an interactive shell on the console
# scripts/guest-cmd.sh turns a command into that parameter.
# Fails loudly (exit 1) if the packages cannot be downloaded.
#
#   scripts/guest.sh            build or reuse; prints the directory
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${GUEST_DIR:-$TOP/build/guest}
MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio_rng virtio_scsi virtio_balloon ext4 crc32c_generic"

die() { echo "guest.sh: $*" >&2; exit 1; }

# The Debian package holding the current 6.1 kernel (linux-image-amd64's target).
kernel_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.1[^ ]*-amd64\)$/\1/p' | head -1
}

KPKG=$(kernel_pkg || true)
if [ -z "$KPKG" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    KPKG=$(kernel_pkg || true)
fi
[ -n "$KPKG" ] || die "cannot find Debian's linux-image-6.1 package (apt-cache depends linux-image-amd64)"

# Cache key: the kernel package and this script.
KEY="$KPKG $(sha256sum "$0" | cut -c1-16)"
if [ -f "$OUT/key" ] && [ "$(cat "$OUT/key")" = "$KEY" ] &&
   [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.gz" ]; then
    echo "$OUT"
    exit 0
fi

# Build beside the cache and swap it in at the end, so tests running from
# the old one (or a second builder) never see a half-made directory.
FINAL=$OUT
OUT=$FINAL.new.$$
trap 'rm -rf "$OUT"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT/dl"
cd "$OUT/dl"
download() {
    apt-get download "$@" >/dev/null 2>&1 && return 0
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get download "$@" >&2 || die "cannot download $* with apt-get download"
}
download "$KPKG" busybox-static
for deb in ./*.deb; do dpkg -x "$deb" "$OUT/x" || die "dpkg -x $deb failed"; done

KVER=${KPKG#linux-image-}
cp "$OUT/x/boot/vmlinuz-$KVER" "$OUT/vmlinuz" || die "no vmlinuz-$KVER in $KPKG"
MODDIR=lib/modules/$KVER

R=$OUT/root
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,root,"$MODDIR"}
cp "$OUT/x/bin/busybox" "$R/bin/busybox" || die "no busybox in busybox-static"

# The requested modules and everything they depend on, in load order. The
# package has no modules.dep (depmod makes it on install): read each
# module's "depends=" from its .modinfo strings instead.
declare -A KO
while IFS= read -r f; do
    n=$(basename "$f"); n=${n%%.ko*}; KO[${n//-/_}]=$f
done < <(find "$OUT/x/$MODDIR/kernel" -name '*.ko*')
order=()
add_module() {     # dependencies first, each once; built-in ones are skipped
    local name=${1//-/_} f d
    f=${KO[$name]:-}
    [ -n "$f" ] || return 0
    for d in "${order[@]:-}"; do [ "$d" = "$f" ] && return 0; done
    for d in $(ko_cat "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$d"
    done
    order+=("$f")
}
ko_cat() {
    case $1 in *.xz) xz -dc "$1" ;; *.zst) zstd -qdc "$1" ;; *) cat "$1" ;; esac
}
for m in $MODULES; do add_module "$m"; done
: > "$R/etc/modules"
for f in "${order[@]:-}"; do
    [ -n "$f" ] || continue
    n=$(basename "$f"); n=${n%%.ko*}.ko
    ko_cat "$f" > "$R/$MODDIR/$n"
    echo "/$MODDIR/$n" >> "$R/etc/modules"
done

cat > "$R/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
while read -r m; do insmod "$m" 2>/dev/null; done < /etc/modules
cmd=
for arg in $(cat /proc/cmdline); do
    case $arg in quokka.cmd=*) cmd=$(echo "${arg#quokka.cmd=}" | base64 -d) ;; esac
done
cd /root
if [ -n "$cmd" ]; then
    sh -c "$cmd"
    echo "quokka: exit status $?"
else
    echo "quokka guest: busybox shell; 'poweroff -f' to leave"
    setsid cttyhack sh
fi
poweroff -f
INIT
chmod 755 "$R/init"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) > "$OUT/initrd.gz"
rm -rf "$OUT/x" "$OUT/dl"
echo "$KEY" > "$OUT/key"
rm -rf "$FINAL.old.$$"
if [ -e "$FINAL" ]; then mv -T "$FINAL" "$FINAL.old.$$"; fi
mv -T "$OUT" "$FINAL" || die "cannot move the new guest into $FINAL"
rm -rf "$FINAL.old.$$"
echo "$FINAL"
