# Helpers for shell tests. Each test prints TAP lines ("ok - name" or
# "not ok - name"); tests/run counts them.
#   . "$(dirname "$0")/../lib.sh"
#   check "create 1G qcow2" "$QUOKKA_IMG" create -f qcow2 "$T/a.qcow2" 1G
#   check_eq "virtual size" "$expected" "$actual"
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
QUOKKA=${QUOKKA:-$BUILD/quokka}
QUOKKA_IMG=${QUOKKA_IMG:-$BUILD/quokka-img}
T=$(mktemp -d "${TMPDIR:-/tmp}/quokka-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
FAILS=0

ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }

# check NAME CMD...: passes when CMD exits 0; shows its output when it fails.
check() {
    local name=$1; shift
    if "$@" >"$T/.out" 2>&1; then ok "$name"; else
        not_ok "$name"; sed 's/^/#   /' "$T/.out" | tail -20; fi
}
# check_fail NAME CMD...: passes when CMD exits non-zero.
check_fail() {
    local name=$1; shift
    if "$@" >"$T/.out" 2>&1; then not_ok "$name (expected failure)"; else ok "$name"; fi
}
# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else
        not_ok "$1"; echo "#   expected: $2"; echo "#   actual:   $3"; fi
}
# check_status NAME EXPECTED_STATUS CMD...
check_status() {
    local name=$1 want=$2; shift 2
    "$@" >"$T/.out" 2>&1; local got=$?
    check_eq "$name (exit status)" "$want" "$got"
}
done_testing() { exit $((FAILS > 0)); }
