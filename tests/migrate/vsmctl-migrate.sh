#!/bin/bash
# vsmctl migrate end to end on two file datastores: the data (qemu-img
# compare against copies taken before), the checkpoints, the changed
# extents between them (vsmctl changes), --json output,
# the refusals, and a revert on the target.
# usage: vsmctl-migrate.sh VSMCTL
set -euo pipefail
V=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VSM_STATE_DIR=$T/state
mkdir -p "$T/ds" "$T/ds2" "$T/ref"
fail() { echo "FAIL: $*" >&2; exit 1; }
jget() { # a field of the JSON on stdin (a document, or the last of JSON lines)
	python3 -c '
import json, sys
t = sys.stdin.read().strip()
try:
    j = json.loads(t)
except ValueError:
    j = json.loads(t.splitlines()[-1])
print(eval("j" + sys.argv[1]))' "$1"
}
# What device $2 of container $1 reads, through libvsm, as a raw file $3
# (the JSON of container show names no backend keys; qemu-img compares).
dump() {
	ds=$($V --json container show "$1" | jget '["datastore"]')
	$V image read "$ds/$1:$2" 0 8388608 >"$3"
}
same() { # container device reference
	dump "$1" "$2" "$T/now"
	qemu-img compare -q -f raw -F raw "$T/now" "$3" || fail "$1/$2 differs from $3"
}

$V datastore add ds1 "file://$T/ds" >/dev/null
$V datastore add ds2 "file://$T/ds2" >/dev/null
$V container create vm --datastore ds1 --disk d0:8M --disk d1:8M:qcow2 --thin >/dev/null
head -c 300000 /dev/urandom | $V image write ds1/vm:d0 65536 >/dev/null
head -c 200000 /dev/urandom | $V image write ds1/vm:d1 1048576 >/dev/null
$V checkpoint create vm c1 >/dev/null
dump vm d0 "$T/ref/c1.d0"; dump vm d1 "$T/ref/c1.d1"
head -c 100000 /dev/urandom | $V image write ds1/vm:d1 3000000 >/dev/null
$V checkpoint create vm c2 >/dev/null
head -c 100000 /dev/urandom | $V image write ds1/vm:d0 5000000 >/dev/null
dump vm d0 "$T/ref/top.d0"; dump vm d1 "$T/ref/top.d1"
uuid=$($V --json container show vm | jget '["uuid"]')

# Refusals change nothing.
before=$(ls "$T/ds" | sort | md5sum)
$V migrate vm --datastore ds1 2>"$T/err" && fail "same datastore accepted"
grep -q "already" "$T/err" || fail "same datastore message: $(cat "$T/err")"
$V migrate vm --datastore nope 2>"$T/err" && fail "unknown datastore accepted"
grep -q "nope" "$T/err" || fail "unknown datastore message: $(cat "$T/err")"
$V migrate vm 2>/dev/null && fail "missing --datastore accepted"
$V container create vm --datastore ds2 --disk x:1M --thin >/dev/null
$V migrate ds1/vm --datastore ds2 2>"$T/err" && fail "name clash accepted"
grep -q "already exists" "$T/err" || fail "name clash message: $(cat "$T/err")"
$V container destroy ds2/vm >/dev/null
$V host add h1 >/dev/null
$V host link h1 ds1 >/dev/null
$V attach vm h1 >/dev/null
$V migrate vm --datastore ds2 2>"$T/err" && fail "attached container accepted"
grep -q "attached" "$T/err" || fail "attached message: $(cat "$T/err")"
$V detach vm >/dev/null
[ "$(ls "$T/ds" | sort | md5sum)" = "$before" ] || fail "a refusal changed ds1"

# Changed-block answers before the move, compared after it.
for d in d0 d1; do
	$V --json changes vm "$d" --since c1 >"$T/chg.$d.c1"
	$V --json changes vm "$d" --since c1 --until c2 >"$T/chg.$d.c1c2"
done

# The move.
$V --json migrate vm --datastore ds2 >"$T/out" || fail "migrate: $(cat "$T/out")"
grep -q '"event":"progress"' "$T/out" || fail "no progress lines"
[ "$(jget '["to"]' <"$T/out")" = ds2 ] || fail "json: to"
[ "$(jget '["uuid"]' <"$T/out")" = "$uuid" ] || fail "json: uuid"
[ "$(jget '["layers"]' <"$T/out")" -ge 4 ] || fail "json: layers"
[ "$($V --json container show vm | jget '["datastore"]')" = ds2 ] || fail "not on ds2"
[ "$($V --json container show vm | jget '["uuid"]')" = "$uuid" ] || fail "uuid changed"
[ -z "$(ls "$T/ds")" ] || fail "source files left: $(ls "$T/ds")"
same vm d0 "$T/ref/top.d0"; same vm d1 "$T/ref/top.d1"
[ "$($V --json checkpoint list vm | grep -c '"name"')" = 2 ] || fail "checkpoints"
for f in "$T"/ds2/*.qcow2; do qemu-img check -q "$f" || fail "qemu-img check $f"; done
for d in d0 d1; do
	[ "$($V --json changes vm "$d" --since c1)" = "$(cat "$T/chg.$d.c1")" ] ||
		fail "changes of $d since c1 differ after the move"
	[ "$($V --json changes vm "$d" --since c1 --until c2)" = "$(cat "$T/chg.$d.c1c2")" ] ||
		fail "changes of $d c1..c2 differ after the move"
done
grep -q '"offset"' "$T/chg.d0.c1" || fail "no change of d0 since c1 to compare"
$V checkpoint revert vm c1 >/dev/null
same vm d0 "$T/ref/c1.d0"; same vm d1 "$T/ref/c1.d1"
$V datastore check ds2 --grace 0 >/dev/null || fail "orphans on ds2"
# And back, plain output.
$V migrate vm --datastore ds1 | grep -q "migrated from 'ds2' to 'ds1'" || fail "migrate back"
same vm d0 "$T/ref/c1.d0"; same vm d1 "$T/ref/c1.d1"
[ -z "$(ls "$T/ds2")" ] || fail "ds2 files left"

# Live, attached. A vsmctl process hosts no writer: the passes find the
# devices as they are, and the switch moves the attachment and lease.
$V migrate vm --datastore ds2 --downtime-ms 50 2>/dev/null && fail "--downtime-ms without --live"
$V migrate vm --datastore ds2 --live --on-no-converge maybe 2>/dev/null &&
	fail "bad --on-no-converge accepted"
$V migrate vm --datastore ds2 --live --deadline -1 2>/dev/null && fail "bad --deadline accepted"
$V host link h1 ds2 >/dev/null
$V attach vm h1 >/dev/null
$V --json migrate vm --datastore ds2 --live --downtime-ms 50 --deadline 10 \
	--on-no-converge abort >"$T/out" || fail "live migrate: $(cat "$T/out")"
[ "$(jget '["passes"]' <"$T/out")" -ge 2 ] || fail "json: passes"
echo "live migration: writes paused $(jget '["pause_us"]' <"$T/out") us"
[ "$($V --json container show vm | jget '["datastore"]')" = ds2 ] || fail "live: not on ds2"
[ "$($V --json container show vm | jget '["attached_host"]')" = h1 ] || fail "live: not attached"
same vm d0 "$T/ref/c1.d0"; same vm d1 "$T/ref/c1.d1"
[ -z "$(ls "$T/ds")" ] || fail "ds1 files left after the live move: $(ls "$T/ds")"
$V datastore check ds2 --grace 0 >/dev/null || fail "orphans on ds2 after the live move"
$V detach vm >/dev/null

# A device added after the last checkpoint has no layer in it: the
# container still moves (offline), and its bundle still imports.
$V container create late --datastore ds1 --disk d0:8M:qcow2 --thin >/dev/null
$V checkpoint create late k1 >/dev/null
$V device add late extra:8M:qcow2 >/dev/null
head -c 70000 /dev/urandom | $V image write ds1/late:extra 0 >/dev/null
dump late extra "$T/ref/late.extra"
$V migrate late --datastore ds2 >/dev/null || fail "migrate of a container with a device added after its checkpoint"
same late extra "$T/ref/late.extra"
$V checkpoint list late | grep -q k1 || fail "k1 lost in the move"
$V export late "$T/late.vsmb" >/dev/null
$V import "$T/late.vsmb" --datastore ds1 --name late2 >/dev/null || fail "import of that bundle"
same late2 extra "$T/ref/late.extra"
$V checkpoint list late2 | grep -q k1 || fail "k1 lost in the import"
echo "ok: vsmctl migrate"
