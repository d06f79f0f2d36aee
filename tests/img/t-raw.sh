#!/usr/bin/env bash
# quokka-img on raw images against qemu-img: create, info, map, convert,
# compare, resize, dd, check and bench.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/img-lib.sh"

same_output "create raw prints qemu-img's line" \
    "$Q" create -f raw a.raw 8M -- "$QEMU_IMG" create -f raw a.raw 8M
check_eq "create raw size" "8388608" "$(stat -c %s a.raw)"
same_output "create size suffix error" "$Q" create -f raw x.raw 1x -- "$QEMU_IMG" create -f raw x.raw 1x
same_output "create needs a size" "$Q" create -f raw x.raw -- "$QEMU_IMG" create -f raw x.raw
fill a.raw raw
same_output "info raw" "$Q" info -f raw a.raw -- "$QEMU_IMG" info -f raw a.raw
"$Q" info -f raw --output=json a.raw >q.json; "$QEMU_IMG" info -f raw --output=json a.raw >r.json
json_same "info --output=json raw" q.json r.json
check "info json is byte-identical" cmp q.json r.json
same_output "map raw" "$Q" map -f raw a.raw -- "$QEMU_IMG" map -f raw a.raw
same_output "map --output=json raw" "$Q" map -f raw --output=json a.raw -- \
    "$QEMU_IMG" map -f raw --output=json a.raw

check "convert raw->raw" "$Q" convert -f raw -O raw a.raw c.raw
check "convert raw->raw identical bytes" cmp a.raw c.raw
"$QEMU_IMG" convert -f raw -O raw a.raw c2.raw
SAME_SED=s/c2.raw/c.raw/ same_output "converted map keeps holes as qemu-img's" \
    "$Q" map -f raw c.raw -- "$QEMU_IMG" map -f raw c2.raw
check "convert -S 0 -m 1" "$Q" convert -S 0 -m 1 -f raw -O raw a.raw d.raw
check "convert -S 0 bytes" cmp a.raw d.raw
same_output "compare identical" "$Q" compare -f raw -F raw a.raw c.raw -- \
    "$QEMU_IMG" compare -f raw -F raw a.raw c.raw
"$QEMU_IO" -f raw -c 'write -P 0x55 3001k 512' c.raw >/dev/null
same_output "compare mismatch offset and status" "$Q" compare -f raw -F raw a.raw c.raw -- \
    "$QEMU_IMG" compare -f raw -F raw a.raw c.raw
"$QEMU_IMG" create -q -f raw e.raw 9M
"$QEMU_IMG" convert -n -f raw -O raw a.raw e.raw
same_output "compare size mismatch" "$Q" compare -f raw -F raw a.raw e.raw -- \
    "$QEMU_IMG" compare -f raw -F raw a.raw e.raw
same_output "compare -s size mismatch" "$Q" compare -s -f raw -F raw a.raw e.raw -- \
    "$QEMU_IMG" compare -s -f raw -F raw a.raw e.raw
check_status "compare missing file" 2 "$Q" compare a.raw nonexistent.raw

cp a.raw g.raw; cp a.raw h.raw
same_output "resize +1M" "$Q" resize -f raw g.raw +1M -- "$QEMU_IMG" resize -f raw h.raw +1M
same_output "resize shrink needs --shrink" "$Q" resize -f raw g.raw 1M -- "$QEMU_IMG" resize -f raw h.raw 1M
same_output "resize --shrink" "$Q" resize -f raw --shrink g.raw 6M -- "$QEMU_IMG" resize -f raw --shrink h.raw 6M
check "resized raw identical" cmp g.raw h.raw
same_output "resize relative shrink" "$Q" resize -f raw --shrink g.raw -1M -- \
    "$QEMU_IMG" resize -f raw --shrink h.raw -1M
check_eq "resize -1M size" "$(stat -c %s h.raw)" "$(stat -c %s g.raw)"

check "dd bs count skip" "$Q" dd -f raw -O raw if=a.raw of=dd1.raw bs=64k count=40 skip=3
"$QEMU_IMG" dd -f raw -O raw if=a.raw of=dd2.raw bs=64k count=40 skip=3
check "dd output equals qemu-img dd" cmp dd1.raw dd2.raw

check_status "check on raw is unsupported (63)" 63 "$Q" check -f raw a.raw
same_output "check raw message" "$Q" check -f raw a.raw -- "$QEMU_IMG" check -f raw a.raw

"$Q" bench -f raw -c 2000 -d 8 a.raw >bench.out 2>&1
check_eq "bench header" "Sending 2000 read requests, 4096 bytes each, 8 in parallel (starting at offset 0, step size 4096)" "$(head -1 bench.out)"
check "bench completes" grep -q "^Run completed in [0-9.]* seconds.$" bench.out
cp a.raw w.raw
check "bench -w with pattern" "$Q" bench -f raw -w -c 64 -d 4 -s 4k -S 8k -o 1M --pattern=0x5a w.raw
check_eq "bench wrote the pattern" "$(printf 'Z%.0s' $(seq 4096))" \
    "$(dd if=w.raw bs=4096 skip=258 count=1 2>/dev/null)"
check_eq "bench skipped the step gap" "$(dd if=a.raw bs=4096 skip=257 count=1 2>/dev/null | md5sum)" \
    "$(dd if=w.raw bs=4096 skip=257 count=1 2>/dev/null | md5sum)"

same_output "unknown command" "$Q" frobnicate -- "$QEMU_IMG" frobnicate
check_status "open error status" 1 "$Q" info nonexistent.img
check_eq "open error text" "quokka-img: Could not open 'nonexistent.img': Could not open 'nonexistent.img': No such file or directory" \
    "$("$Q" info nonexistent.img 2>&1)"
done_testing
