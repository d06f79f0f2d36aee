# Helpers for the quokka-img interop tests: qemu-img / qemu-io 7.2 are the
# reference. Sourced after tests/lib.sh.
QEMU_IMG=${QEMU_IMG:-qemu-img}
QEMU_IO=${QEMU_IO:-qemu-io}
Q=$QUOKKA_IMG
command -v "$QEMU_IMG" >/dev/null || { echo "Bail out! qemu-img not installed (scripts/setup.sh)"; exit 1; }
[ -x "$Q" ] || { echo "Bail out! $Q not built"; exit 1; }
cd "$T" || exit 1

# json_same NAME A_FILE B_FILE [IGNORED_KEY...]: the two JSON documents are
# equal as values (objects compared member by member, any order), minus
# the named keys at any depth.
json_same() {
    local name=$1 a=$2 b=$3; shift 3
    if python3 - "$a" "$b" "$@" >"$T/.jdiff" 2>&1 <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
drop = set(sys.argv[3:])
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in drop}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
if strip(a) != strip(b):
    print(json.dumps(strip(a), sort_keys=True))
    print(json.dumps(strip(b), sort_keys=True))
    sys.exit(1)
PY
    then ok "$name"; else not_ok "$name"; sed 's/^/#   /' "$T/.jdiff" | cut -c1-400; fi
}

# same_output NAME CMD_A -- CMD_B: both commands print the same and exit
# alike (qemu-img's name in its messages read as ours; $SAME_SED, if set,
# is applied to the second command's output too).
same_output() {
    local name=$1; shift
    local a=() b=()
    while [ "$1" != "--" ]; do a+=("$1"); shift; done; shift
    b=("$@")
    "${a[@]}" >"$T/.oa" 2>&1; local ra=$?
    "${b[@]}" 2>&1 | sed -e 's/qemu-img/quokka-img/g' ${SAME_SED:+-e "$SAME_SED"} >"$T/.ob"
    local rb=${PIPESTATUS[0]}
    if [ $ra = $rb ] && cmp -s "$T/.oa" "$T/.ob"; then ok "$name"; else
        not_ok "$name"; echo "#   status $ra vs $rb"; diff "$T/.oa" "$T/.ob" | head -20 | sed 's/^/#   /'; fi
}

# same_content NAME IMG_A IMG_B: qemu-img reads both as the same disk.
same_content() {
    check "$1" "$QEMU_IMG" compare -q "$2" "$3"
}

# qemu_clean NAME IMG: qemu-img check finds nothing wrong.
qemu_clean() {
    check "$1" "$QEMU_IMG" check -q "$2"
}

# fill IMG FMT: scattered data, a zeroed range and an unaligned tail write.
fill() {
    "$QEMU_IO" -f "$2" -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 192k' \
        -c 'write -P 0x33 3000k 5k' -c 'write -z 2M 128k' -c 'write -P 0x44 5M 4k' \
        "$1" >/dev/null
}
