#!/usr/bin/env bash
# Backing chains: commit (-d, -b) and rebase (safe and -u) leave images
# that qemu-img checks clean and reads as qemu-img's own commit/rebase do.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

# mkchain DIR: base <- mid <- top, each layer writing its own pattern
mkchain() {
    mkdir -p "$1"
    (cd "$1" &&
     "$QEMU_IMG" create -q -f qcow2 base.qcow2 4M &&
     "$QEMU_IO" -c 'write -P 1 0 1M' -c 'write -P 4 3M 1M' base.qcow2 &&
     "$QEMU_IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 &&
     "$QEMU_IO" -c 'write -P 2 512k 1M' -c 'write -z 3M 64k' mid.qcow2 &&
     "$QEMU_IMG" create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 &&
     "$QEMU_IO" -c 'write -P 3 1M 64k' -c 'write -P 5 2M 4k' top.qcow2) >/dev/null
}

# commit top into mid (the default), then check against qemu-img's commit
mkchain q; mkchain r
"$QEMU_IMG" convert -O raw q/top.qcow2 before.raw
same_output "commit" "$Q" commit q/top.qcow2 -- "$QEMU_IMG" commit r/top.qcow2
for f in base mid top; do qemu_clean "commit: $f clean" q/$f.qcow2; done
same_content "commit: top still reads the same" before.raw q/top.qcow2
same_content "commit: mid equals qemu-img's mid" r/mid.qcow2 q/mid.qcow2
same_content "commit: top equals qemu-img's top" r/top.qcow2 q/top.qcow2
check_eq "commit emptied top" "$("$QEMU_IMG" map --output=json r/top.qcow2 | grep -c '"depth": 0')" \
    "$("$QEMU_IMG" map --output=json q/top.qcow2 | grep -c '"depth": 0')"

# commit -d keeps top; -b commits through mid into base
rm -rf q r; mkchain q; mkchain r
same_output "commit -d" "$Q" commit -d q/top.qcow2 -- "$QEMU_IMG" commit -d r/top.qcow2
check "commit -d keeps top's data" "$QEMU_IMG" compare -q r/top.qcow2 q/top.qcow2
same_content "commit -d: mid as qemu-img's" r/mid.qcow2 q/mid.qcow2
rm -rf q r; mkchain q; mkchain r
same_output "commit -b base" "$Q" commit -b base.qcow2 q/top.qcow2 -- \
    "$QEMU_IMG" commit -b base.qcow2 r/top.qcow2
SAME_SED="s|r/|q/|g" same_output "commit -b names a file relative to the image" "$Q" commit -b q/base.qcow2 q/top.qcow2 -- \
    "$QEMU_IMG" commit -b r/base.qcow2 r/top.qcow2
same_content "commit -b: base as qemu-img's" r/base.qcow2 q/base.qcow2
same_content "commit -b: top still reads the same" before.raw q/top.qcow2
qemu_clean "commit -b: base clean" q/base.qcow2
same_output "commit without backing" "$Q" commit q/base.qcow2 -- "$QEMU_IMG" commit r/base.qcow2

# safe rebase of top onto base (dropping mid) keeps top's contents
rm -rf q r; mkchain q
check "rebase onto base" "$Q" rebase -b base.qcow2 -F qcow2 q/top.qcow2
qemu_clean "rebase: top clean" q/top.qcow2
same_content "rebase: top reads the same" before.raw q/top.qcow2
check_eq "rebase: new backing recorded" "base.qcow2 qcow2" \
    "$("$QEMU_IMG" info --output=json q/top.qcow2 | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["backing-filename"], j["backing-filename-format"])')"
# safe rebase onto nothing, with the format probed for a new backing file
rm -rf q; mkchain q
check "rebase -b '' (standalone)" "$Q" rebase -b '' q/top.qcow2
same_content "rebase -b '': top reads the same" before.raw q/top.qcow2
check "rebase -b '': no backing left" bash -c "! '$QEMU_IMG' info q/top.qcow2 | grep -q 'backing file'"
rm -rf q; mkchain q
check "rebase without -F probes the format" "$Q" rebase -b base.qcow2 q/top.qcow2
check_eq "probed format recorded" "qcow2" \
    "$("$QEMU_IMG" info --output=json q/top.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["backing-filename-format"])')"
same_content "rebase (probed): top reads the same" before.raw q/top.qcow2

# unsafe rebase only rewrites the header
rm -rf q r; mkchain q; mkchain r
cp q/mid.qcow2 q/renamed.qcow2; cp r/mid.qcow2 r/renamed.qcow2
check "rebase -u" "$Q" rebase -u -b renamed.qcow2 -F qcow2 q/top.qcow2
"$QEMU_IMG" rebase -u -b renamed.qcow2 -F qcow2 r/top.qcow2
check "rebase -u: same file as qemu-img's" cmp q/top.qcow2 r/top.qcow2
same_output "rebase -u without -F" "$Q" rebase -u -b x.qcow2 q/top.qcow2 -- \
    "$QEMU_IMG" rebase -u -b x.qcow2 r/top.qcow2
SAME_SED='s|r/|q/|g' same_output "info --backing-chain after rebase" "$Q" info --backing-chain q/top.qcow2 -- \
    "$QEMU_IMG" info --backing-chain r/top.qcow2

# a backing file that is gone: info still works, the chain and check fail alike
"$QEMU_IMG" create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 1G
same_output "info on an orphan" "$Q" info orphan.qcow2 -- "$QEMU_IMG" info orphan.qcow2
same_output "info --backing-chain names the missing file" "$Q" info --backing-chain orphan.qcow2 -- \
    "$QEMU_IMG" info --backing-chain orphan.qcow2
same_output "check on an orphan" "$Q" check orphan.qcow2 -- "$QEMU_IMG" check orphan.qcow2
done_testing
