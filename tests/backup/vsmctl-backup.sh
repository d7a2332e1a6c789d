#!/bin/bash
# vsmctl's backup commands end to end: changes (text and --json), a full
# backup and two incrementals, restore of the chain (qemu-img compare with
# the source), a chain with a gap refused with nothing left behind.
# usage: vsmctl-backup.sh VSMCTL
set -uo pipefail
V=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export VSM_STATE_DIR=$T/state
mkdir -p "$T/ds"
checks=0
failures=0
check() { # check NAME COMMAND...: the command must succeed
	local name=$1
	shift
	checks=$((checks + 1))
	if "$@"; then echo "ok: $name"; else failures=$((failures + 1)); echo "FAIL: $name"; fi
}
key() { # key CONTAINER DEVICE: the device's file in the datastore
	$V --json container show "$1" >/dev/null # the container exists
	ls -t "$T"/ds/*-"$2".qcow2 2>/dev/null | head -1
}

$V datastore add ds "file://$T/ds" >/dev/null
$V container create vm --datastore ds --disk root:16M:qcow2 --thin >/dev/null
head -c 3M /dev/urandom >"$T/a"
$V image write ds/vm:root 0 <"$T/a"
check "full backup" bash -c "$V backup vm '$T/full.bk' --checkpoint b0 | grep -q \"full backup of 'vm' at checkpoint 'b0'\""
head -c 100K /dev/urandom | $V image write ds/vm:root 8388608
check "changes lists the write" bash -c "$V changes vm root --since b0 | grep -q '^8388608 *131072'"
check "changes --json" bash -c "$V changes vm root --since b0 --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"bytes\"] == 131072 and d[\"extents\"][0][\"offset\"] == 8388608'"
check "incremental backup" bash -c "$V backup vm '$T/inc1.bk' --incremental-from b0 --checkpoint b1 | grep -q 'incremental backup'"
check "incremental is small" bash -c "[ \$(stat -c %s '$T/inc1.bk') -lt 200000 ]"
head -c 5000 /dev/urandom | $V image write ds/vm:root 1000
check "second incremental" bash -c "$V --json backup vm '$T/inc2.bk' --incremental-from b1 | grep -q '\"type\":\"incremental\"'"
check "changes between checkpoints" bash -c "$V changes vm root --since b0 --until b1 | grep -q '1 extents'"
check "restore the chain" bash -c "$V restore '$T/full.bk' '$T/inc1.bk' '$T/inc2.bk' --datastore ds --name copy | grep -q \"restored container 'copy'\""
src=$(ls "$T"/ds/$($V --json container show vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')-root.qcow2)
dst=$(ls "$T"/ds/$($V --json container show copy | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')-root.qcow2)
check "restored data is identical (qemu-img compare)" qemu-img compare -q "$src" "$dst"
check "qemu-img check of the restored chain" qemu-img check -q "$dst"
n=$(ls "$T/ds" | wc -l)
check "a gap is refused" bash -c "! $V restore '$T/full.bk' '$T/inc2.bk' --datastore ds --name gap 2>'$T/err' && grep -q 'missing or out of order' '$T/err'"
check "nothing left behind" bash -c "[ \$(ls '$T/ds' | wc -l) = $n ]"
check "usage error exits 2" bash -c "$V backup vm 2>/dev/null; [ \$? = 2 ]"
echo "$checks checks, $failures failures"
[ "$failures" = 0 ]
