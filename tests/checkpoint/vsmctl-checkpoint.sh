#!/bin/bash
# vsmctl's checkpoint commands end to end: create/list/revert/delete,
# clone (linked and full), export/import; qemu-img reads every chain.
# usage: vsmctl-checkpoint.sh VSMCTL
set -euo pipefail
V=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VSM_STATE_DIR=$T/state
mkdir -p "$T/ds" "$T/ds2"
fail() { echo "FAIL: $*" >&2; exit 1; }

$V datastore add ds1 "file://$T/ds" >/dev/null
$V datastore add ds2 "file://$T/ds2" >/dev/null
$V container create vm --datastore ds1 --disk d0:8M --disk d1:8M:qcow2 --thin >/dev/null
head -c 123457 /dev/urandom >"$T/state.bin"
$V checkpoint create vm c1 --state-file "$T/state.bin" | grep -q "checkpoint 'c1'" || fail create
$V checkpoint create vm c2 >/dev/null
$V checkpoint revert vm c1 --state-file "$T/back.bin" >/dev/null
cmp -s "$T/state.bin" "$T/back.bin" || fail "state blob did not round-trip"
$V checkpoint create vm c3 >/dev/null
$V checkpoint list vm | grep -q -- "- c3 .*<- current" || fail "tree listing"
[ "$($V --json checkpoint list vm | grep -c '"name"')" = 3 ] || fail "json listing"
$V checkpoint create vm c1 2>"$T/err" && fail "duplicate name accepted"
grep -q "already exists" "$T/err" || fail "duplicate name message"
$V container clone vm k --checkpoint c2 | grep -q "linked clone" || fail clone
$V container clone vm kf --checkpoint c3 --full | grep -q "full clone" || fail "full clone"
$V export vm "$T/vm.bundle" | grep -q "layers" || fail export
$V import "$T/vm.bundle" --datastore ds2 --name vm2 | grep -q "0 already there" || fail import
$V export vm "$T/c3.bundle" --checkpoint c3 >/dev/null
$V import "$T/c3.bundle" --datastore ds2 --name vm3 | grep -q "(4 already there)" || fail dedup
$V checkpoint delete vm c1 >/dev/null
$V checkpoint delete vm c2 >/dev/null
[ "$($V --json checkpoint list vm | grep -c '"name"')" = 1 ] || fail "delete"
for f in "$T"/ds/*.qcow2 "$T"/ds2/*.qcow2; do
	qemu-img check -q "$f" || fail "qemu-img check $f"
	qemu-img info --backing-chain "$f" >/dev/null || fail "chain of $f"
done
head -c 1000 "$T/vm.bundle" >"$T/cut.bundle"
$V import "$T/cut.bundle" --datastore ds2 --name bad 2>"$T/err" && fail "truncated bundle accepted"
grep -q "truncated" "$T/err" || fail "truncated bundle message: $(cat "$T/err")"
echo "ok: vsmctl checkpoint commands"
